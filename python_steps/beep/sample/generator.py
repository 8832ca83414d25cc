"""Write a whole Slack export for a profile: users.json, channels.json, groups.json, every day file
and, for the large profile, truth.csv.

Deterministic: the same profile, seed and sizes give byte-identical files, whether the channels are
written one after the other or in parallel processes (each channel has its own random stream, and
truth.csv is put together in channel order at the end).

`generate` reads as its phases: plan the workspace, prepare the folder, write the directory files,
split the message budget over the channels, simulate the channels (in `workers` processes), join
the truth rows.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import Manager
from pathlib import Path
from typing import Any

from beep.sample import large_workspace, workspace
from beep.sample.large_sim import LargeChannelSimulator
from beep.sample.profiles import DEFAULT_SEED, LARGE, PROFILES, SAMPLE, Profile
from beep.sample.sample_sim import SampleChannelSimulator
from beep.sample.simulator import ChannelSimulator, ChannelStats

#: The committed sample (sample_data/acme-slack-export) is exactly what these settings produce.
SAMPLE_SEED = DEFAULT_SEED
SAMPLE_MESSAGES = SAMPLE.defaults.messages
SAMPLE_PEOPLE = SAMPLE.defaults.people
SAMPLE_CHANNELS = SAMPLE.defaults.channels
SAMPLE_DAYS = SAMPLE.defaults.days
#: The large profile's default sizes (`--profile large`).
LARGE_PEOPLE = LARGE.defaults.people
LARGE_CHANNELS = LARGE.defaults.channels
LARGE_MESSAGES = LARGE.defaults.messages
LARGE_DAYS = LARGE.defaults.days


@dataclass(frozen=True)
class GenerationSummary:
    """What a generation wrote."""

    out_dir: Path
    messages: int
    people: int
    bots: int
    channels: int  # public + private
    threads: int
    replies: int
    day_files: int
    seconds: float
    truth_rows: int = 0  # rows of truth.csv (large profile), 0 when none was written


class OutputExistsError(Exception):
    """The output folder is not empty and --force was not given (or it does not look like an export)."""


@dataclass(frozen=True)
class _Parts:
    """How a profile's workspace is planned, listed and simulated."""

    plan: Callable[[int, int, int, int], Any]  # (seed, people, channels, days) -> the workspace plan
    users_json: Callable[[Any], list[dict[str, Any]]]
    channels_json: Callable[[Any, bool], list[dict[str, Any]]]
    simulator: type[ChannelSimulator]


_PARTS: dict[str, _Parts] = {
    SAMPLE.name: _Parts(workspace.build_workspace, workspace.users_json, workspace.channels_json,
                        SampleChannelSimulator),
    LARGE.name: _Parts(large_workspace.build_large_workspace, large_workspace.large_users_json,
                       large_workspace.large_channels_json, LargeChannelSimulator),
}


def split_budget(total: int, shares: list[float]) -> list[int]:
    """Split `total` messages over channels in proportion to `shares` (largest remainders)."""
    s = sum(shares)
    raw = [total * x / s for x in shares]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def prepare_output(out_dir: Path, force: bool) -> None:
    """Make `out_dir` empty, refusing to delete anything that is not a Slack export."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} exists and is not a folder: choose another --out.")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise OutputExistsError(f"{out_dir} is not empty: pass --force to replace it, or choose another --out.")
        if not ((out_dir / "users.json").exists() or (out_dir / "channels.json").exists()):
            raise OutputExistsError(
                f"{out_dir} is not empty and holds no users.json/channels.json, so it does not look like a "
                "Slack export; refusing to delete it even with --force. Choose an empty or new --out folder.")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def default_workers() -> int:
    """One worker per CPU."""
    return max(1, os.cpu_count() or 1)


def generate(out_dir: Path, profile: Profile = SAMPLE, *, messages: int | None = None, seed: int = DEFAULT_SEED,
             people: int | None = None, channels: int | None = None, days: int | None = None,
             force: bool = False, workers: int = 1, truth: bool = True,
             progress: Callable[[int], None] | None = None) -> GenerationSummary:
    """Generate an export of exactly `messages` message objects (the profile's defaults for what is None).

    `truth`: also write truth.csv where the profile records it (the large one). `progress` is called
    with the number of messages written since the last call; `workers` processes write the channels.
    """
    sizes = profile.defaults
    messages = sizes.messages if messages is None else messages
    if messages < 1:
        raise ValueError(f"--messages must be at least 1 (got {messages}).")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1 (got {workers}).")
    started = time.perf_counter()
    parts = _PARTS.get(profile.name)
    if parts is None:
        raise ValueError(f"no workspace planner for profile {profile.name!r}: use one of {', '.join(_PARTS)} "
                         "(dataclasses.replace(SAMPLE, …) keeps the name and changes settings).")
    ws = parts.plan(seed, sizes.people if people is None else people, sizes.channels if channels is None else channels,
                    sizes.days if days is None else days)
    prepare_output(out_dir, force)
    _write_json(out_dir / "users.json", parts.users_json(ws))
    _write_json(out_dir / "channels.json", parts.channels_json(ws, False))
    _write_json(out_dir / "groups.json", parts.channels_json(ws, True))
    truth_dir = out_dir / ".truth-parts" if truth and profile.truth else None
    if truth_dir is not None:
        truth_dir.mkdir()
    budgets = split_budget(messages, [c.share for c in ws.channels])
    stats = _simulate_channels(parts.simulator, profile, ws, seed, budgets, out_dir, truth_dir, workers, progress)
    truth_rows = _join_truth(truth_dir, out_dir / "truth.csv") if truth_dir is not None else 0
    return GenerationSummary(
        out_dir=out_dir,
        messages=sum(s.messages for s in stats),
        people=len(ws.people),
        bots=len(ws.bots),
        channels=len(ws.channels),
        threads=sum(s.threads for s in stats),
        replies=sum(s.replies for s in stats),
        day_files=sum(s.day_files for s in stats),
        seconds=time.perf_counter() - started,
        truth_rows=truth_rows,
    )


def generate_export(out_dir: Path, messages: int = SAMPLE_MESSAGES, seed: int = SAMPLE_SEED,
                    people: int = SAMPLE_PEOPLE, channels: int = SAMPLE_CHANNELS, days: int = SAMPLE_DAYS,
                    force: bool = False, workers: int = 1,
                    progress: Callable[[int], None] | None = None) -> GenerationSummary:
    """The sample profile (`generate(out_dir, SAMPLE, …)`)."""
    return generate(out_dir, SAMPLE, messages=messages, seed=seed, people=people, channels=channels, days=days,
                    force=force, workers=workers, progress=progress)


def generate_large_export(out_dir: Path, messages: int = LARGE_MESSAGES, seed: int = SAMPLE_SEED,
                          people: int = LARGE_PEOPLE, channels: int = LARGE_CHANNELS, days: int = LARGE_DAYS,
                          force: bool = False, workers: int = 1, truth: bool = True,
                          progress: Callable[[int], None] | None = None) -> GenerationSummary:
    """The large profile (`generate(out_dir, LARGE, …)`): thousands of people, hundreds of channels, and,
    with `truth`, truth.csv (`ts,channel,conversation_id,reply_to_ts`: which earlier message each
    conversation message answers)."""
    return generate(out_dir, LARGE, messages=messages, seed=seed, people=people, channels=channels, days=days,
                    force=force, workers=workers, truth=truth, progress=progress)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=4) + "\n", encoding="utf-8", newline="\n")


def _simulate_channels(simulator: type[ChannelSimulator], profile: Profile, ws: Any, seed: int, budgets: list[int],
                       out_dir: Path, truth_dir: Path | None, workers: int,
                       progress: Callable[[int], None] | None) -> list[ChannelStats]:
    """Run every channel with a budget, biggest first (so parallel workers finish together)."""
    order = [i for i in sorted(range(len(budgets)), key=lambda i: (-budgets[i], i)) if budgets[i] > 0]
    if workers == 1 or len(order) <= 1:
        return [simulator(ws, i, seed, budgets[i], out_dir, truth_dir, progress, profile).run() for i in order]
    with Manager() as manager, ProcessPoolExecutor(max_workers=min(workers, len(order)),
                                                   initializer=_init_worker, initargs=(simulator, profile, ws)) as pool:
        q = manager.Queue()
        futures = [pool.submit(_run_channel, i, seed, budgets[i], out_dir, truth_dir, q) for i in order]
        _relay_progress(q, futures, progress)
        return [f.result() for f in futures]


def _relay_progress(q: queue.Queue[int], futures: Sequence[Future[ChannelStats]],
                    progress: Callable[[int], None] | None) -> None:
    """Pass the workers' progress reports on until every channel is done."""
    while not all(f.done() for f in futures):
        try:
            n = q.get(timeout=0.2)
        except queue.Empty:
            continue
        if progress is not None:
            progress(n)
    while True:
        try:
            n = q.get_nowait()
        except queue.Empty:
            break
        if progress is not None:
            progress(n)


#: In each worker process: the simulator class, the profile and the workspace plan, set once by the pool's initializer
#: (the plan is a few MB for the large profile; sending it with every channel would cost more).
_WORKER: dict[str, Any] = {}


def _init_worker(simulator: type[ChannelSimulator], profile: Profile, ws: object) -> None:
    _WORKER["simulator"] = simulator
    _WORKER["profile"] = profile
    _WORKER["ws"] = ws


def _run_channel(index: int, seed: int, budget: int, out_dir: Path, truth_dir: Path | None,
                 progress_queue: queue.Queue[int] | None) -> ChannelStats:
    """One channel, in a worker process."""
    report = progress_queue.put if progress_queue is not None else None
    return _WORKER["simulator"](_WORKER["ws"], index, seed, budget, out_dir, truth_dir, report,
                                _WORKER["profile"]).run()


def _join_truth(truth_dir: Path, out: Path) -> int:
    """truth.csv from the channels' parts, in channel order (so the bytes do not depend on the workers); rows."""
    rows = 0
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("ts,channel,conversation_id,reply_to_ts\n")
        for part in sorted(truth_dir.iterdir()):
            with open(part, encoding="utf-8") as lines:
                for line in lines:
                    f.write(line)
                    rows += 1
    shutil.rmtree(truth_dir)
    return rows


__all__ = ["PROFILES", "GenerationSummary", "OutputExistsError", "default_workers", "generate", "generate_export",
           "generate_large_export", "prepare_output", "split_budget"]
