"""Run one command as a subprocess and measure its wall time and peak memory.

Peak memory is the larger of two views: the summed RSS of the whole process tree, polled with psutil
every `interval` seconds, and the kernel's ru_maxrss of the reaped child (os.wait4), which catches a
peak shorter than the polling interval. Shared by every bench script in this folder.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Measurement:
    """One measured command."""

    name: str
    seconds: float
    peak_rss_bytes: int
    returncode: int
    cpu_seconds: float  # user + system time of the process and the children it waited for
    log: Path

    @property
    def peak_mb(self) -> float:
        return self.peak_rss_bytes / 1024 / 1024


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(name: str, cmd: Sequence[str], log: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, interval: float = 0.05) -> Measurement:
    """Run `cmd` (output to `log`), polling its memory until it exits."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with open(log, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=cwd)
        proc = psutil.Process(child.pid)
        peak = 0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _tree_rss(proc))
            time.sleep(interval)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    peak = max(peak, usage.ru_maxrss * 1024)  # Linux reports KiB
    return Measurement(name=name, seconds=seconds, peak_rss_bytes=peak, returncode=child.returncode,
                       cpu_seconds=usage.ru_utime + usage.ru_stime, log=log)


def tail(path: Path, lines: int = 25) -> str:
    """The end of a log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def write_doc_section(doc: Path, section: str, begin: str, end: str) -> None:
    """Put ``section`` (which starts with the ``begin`` line and ends with the ``end`` line) into ``doc``:
    in place of the section between those markers, else at the end. Shared by the bench scripts that
    write their tables into docs/benchmarks.md; other sections are left alone, and rerunning is stable."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    section = section.rstrip("\n")
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text, encoding="utf-8")
