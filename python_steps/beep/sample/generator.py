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


def default_workers() -> int:
    """One worker per CPU."""
    return max(1, os.cpu_count() or 1)
