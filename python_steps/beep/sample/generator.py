"""Write a whole sample Slack export: users.json, channels.json, groups.json and every day file.

Deterministic: the same seed and sizes give byte-identical files, whether the channels are written
one after the other or in parallel processes (each channel has its own random stream).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import Manager
from pathlib import Path

from beep.sample.channel_sim import ChannelSimulator, ChannelStats
from beep.sample.workspace import DEFAULT_DAYS, Workspace, build_workspace, channels_json, users_json

#: The committed sample (sample_data/acme-slack-export) is exactly what these settings produce.
SAMPLE_SEED = 7
SAMPLE_MESSAGES = 5000
SAMPLE_PEOPLE = 10
SAMPLE_CHANNELS = 6
SAMPLE_DAYS = DEFAULT_DAYS


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


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=4) + "\n", encoding="utf-8", newline="\n")


def _run_channel(ws: Workspace, index: int, seed: int, budget: int, out_dir: Path,
                 progress_queue: "queue.Queue[int] | None") -> ChannelStats:
    """One channel, in whichever process runs it."""
    report = progress_queue.put if progress_queue is not None else None
    return ChannelSimulator(ws, ws.channels[index], seed, budget, out_dir, report).run()


def generate_export(out_dir: Path, messages: int = SAMPLE_MESSAGES, seed: int = SAMPLE_SEED,
                    people: int = SAMPLE_PEOPLE, channels: int = SAMPLE_CHANNELS, days: int = SAMPLE_DAYS,
                    force: bool = False, workers: int = 1,
                    progress: Callable[[int], None] | None = None) -> GenerationSummary:
    """Generate an export of exactly `messages` message objects into `out_dir`.

    `progress` is called with the number of messages written since the last call.
    """
    if messages < 1:
        raise ValueError(f"--messages must be at least 1 (got {messages}).")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1 (got {workers}).")
    started = time.perf_counter()
    ws = build_workspace(seed, n_people=people, n_channels=channels, days=days)
    prepare_output(out_dir, force)
    _write_json(out_dir / "users.json", users_json(ws))
    _write_json(out_dir / "channels.json", channels_json(ws, private=False))
    _write_json(out_dir / "groups.json", channels_json(ws, private=True))
    budgets = split_budget(messages, [c.share for c in ws.channels])
    # biggest channels first, so parallel workers finish together
    order = sorted(range(len(ws.channels)), key=lambda i: -budgets[i])
    stats: list[ChannelStats] = []
    if workers == 1 or len(order) == 1:
        for i in order:
            stats.append(ChannelSimulator(ws, ws.channels[i], seed, budgets[i], out_dir, progress).run())
    else:
        with Manager() as manager, ProcessPoolExecutor(max_workers=min(workers, len(order))) as pool:
            q = manager.Queue()
            futures = [pool.submit(_run_channel, ws, i, seed, budgets[i], out_dir, q) for i in order]
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
            stats = [f.result() for f in futures]
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
    )


#: The large profile's default sizes (`--profile large`).
LARGE_PEOPLE = 2000
LARGE_CHANNELS = 300
LARGE_MESSAGES = 500_000
LARGE_DAYS = 365
PROFILES = ("sample", "large")

_LARGE_WS = None  # the plan, in each worker process (set once by the pool's initializer)


def _init_large_worker(ws: object) -> None:
    global _LARGE_WS
    _LARGE_WS = ws


def _run_large_channel(index: int, seed: int, budget: int, out_dir: Path, truth_dir: Path | None,
                       progress_queue: "queue.Queue[int] | None") -> ChannelStats:
    from beep.sample.large_sim import LargeChannelSimulator

    report = progress_queue.put if progress_queue is not None else None
    return LargeChannelSimulator(_LARGE_WS, index, seed, budget, out_dir, truth_dir, report).run()  # type: ignore[arg-type]


def generate_large_export(out_dir: Path, messages: int = LARGE_MESSAGES, seed: int = SAMPLE_SEED,
                          people: int = LARGE_PEOPLE, channels: int = LARGE_CHANNELS, days: int = LARGE_DAYS,
                          force: bool = False, workers: int = 1, truth: bool = True,
                          progress: Callable[[int], None] | None = None) -> GenerationSummary:
    """The large profile: thousands of people, hundreds of channels (see large_workspace.py, large_sim.py).

    Writes users.json, channels.json, groups.json, every day file and, with `truth`, truth.csv
    (`ts,channel,conversation_id,reply_to_ts`: which earlier message each conversation message answers).
    Channels are written by `workers` processes; the bytes do not depend on it.
    """
    from beep.sample.large_sim import LargeChannelSimulator
    from beep.sample.large_workspace import build_large_workspace, large_channels_json, large_users_json

    if messages < 1:
        raise ValueError(f"--messages must be at least 1 (got {messages}).")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1 (got {workers}).")
    started = time.perf_counter()
    ws = build_large_workspace(seed, n_people=people, n_channels=channels, days=days)
    prepare_output(out_dir, force)
    _write_json(out_dir / "users.json", large_users_json(ws))
    _write_json(out_dir / "channels.json", large_channels_json(ws, private=False))
    _write_json(out_dir / "groups.json", large_channels_json(ws, private=True))
    truth_dir = out_dir / ".truth-parts" if truth else None
    if truth_dir is not None:
        truth_dir.mkdir()
    budgets = split_budget(messages, [c.share for c in ws.channels])
    order = sorted(range(len(ws.channels)), key=lambda i: (-budgets[i], i))
    order = [i for i in order if budgets[i] > 0]
    stats: list[ChannelStats] = []
    if workers == 1 or len(order) == 1:
        for i in order:
            stats.append(LargeChannelSimulator(ws, i, seed, budgets[i], out_dir, truth_dir, progress).run())
    else:
        with Manager() as manager, ProcessPoolExecutor(max_workers=min(workers, len(order)),
                                                       initializer=_init_large_worker, initargs=(ws,)) as pool:
            q = manager.Queue()
            futures = [pool.submit(_run_large_channel, i, seed, budgets[i], out_dir, truth_dir, q) for i in order]
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
            stats = [f.result() for f in futures]
    truth_rows = 0
    if truth_dir is not None:
        with open(out_dir / "truth.csv", "w", encoding="utf-8", newline="\n") as out:
            out.write("ts,channel,conversation_id,reply_to_ts\n")
            for part in sorted(truth_dir.iterdir()):  # channel order: the bytes do not depend on the workers
                with open(part, encoding="utf-8") as f:
                    for line in f:
                        out.write(line)
                        truth_rows += 1
        shutil.rmtree(truth_dir)
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


def default_workers() -> int:
    """One worker per CPU."""
    return max(1, os.cpu_count() or 1)
