"""One run of a kind at a time per DuckDB file: `beep build`, `beep refine`, `beep finetune` and
`beep evaluate` each hold a lock of their kind while they work.

A second command of the same kind on the same DuckDB file waits for the first (saying which run
holds the lock: its pid, what it is, since when) and gives up after ``BEEP_LOCK_WAIT_SECONDS``
(60 by default) with :class:`StepBusy`. So two refines never ask for the same example twice, and a
second `beep build` waits instead of failing on dbt's raw lock error. Steps of different kinds do
not wait for each other.

The lock is an ``flock`` on a file in the work folder (``.beep/locks/<db name>-<hash of its path>.<kind>.lock``):
the kernel releases it however the process ends, SIGKILL included. That makes it the test of
liveness too: whoever holds the lock of a kind knows that no other process is running that kind
on this file, so runs still recorded ``running`` are left over from a killed process and can be
marked ``interrupted`` (each step does so when it starts).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, TextIO, TypeVar

from beep.config import Paths
from beep.db import DatabaseBusy

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, steps run as before
    fcntl = None  # type: ignore[assignment]

DEFAULT_WAIT_SECONDS = 60.0

F = TypeVar("F", bound=Callable[..., Any])


class StepBusy(DatabaseBusy):
    """Another process holds the lock of this kind of step on this DuckDB file, and kept it for
    longer than we were willing to wait; the message says which run it is (``holder``: who, in words)."""

    def __init__(self, message: str, holder: str = "another process") -> None:
        super().__init__(message)
        self.holder = holder


def lock_wait_seconds() -> float:
    """BEEP_LOCK_WAIT_SECONDS: how long a step waits for another of its kind (60 by default)."""
    raw = os.environ.get("BEEP_LOCK_WAIT_SECONDS", "").strip()
    if not raw:
        return DEFAULT_WAIT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"BEEP_LOCK_WAIT_SECONDS={raw!r} is not a number of seconds") from None
    if value < 0:
        raise ValueError(f"BEEP_LOCK_WAIT_SECONDS={raw!r} must be 0 or more")
    return value


def lock_path(paths: Paths, kind: str) -> Path:
    """The lock file of ``kind`` for this DuckDB file (named by the file and a hash of its full
    path, so that two DuckDB files sharing one work folder have locks of their own)."""
    return paths.workdir / "locks" / f"{paths.db_key}.{kind}.lock"


def _describe(holder: dict[str, Any]) -> str:
    parts = [f"pid {holder['pid']}" if holder.get("pid") else "another process"]
    if holder.get("host") and holder.get("host") != socket.gethostname():
        parts.append(f"on {holder['host']}")
    if holder.get("run_id"):
        parts.append(f"run {holder['run_id']}")
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    if holder.get("command"):
        parts.append(f"`{holder['command']}`")
    return ", ".join(parts)


class StepLock:
    """The lock of one kind of step (``build``, ``refine``, ``finetune``, ``evaluate``) on one
    DuckDB file; a context manager. :meth:`note` adds the run id to what a waiting process is told."""

    def __init__(self, paths: Paths, kind: str, *, wait_seconds: float | None = None,
                 stderr: TextIO | None = None) -> None:
        self.paths = paths
        self.kind = kind
        self.path = lock_path(paths, kind)
        self.wait_seconds = lock_wait_seconds() if wait_seconds is None else wait_seconds
        self._stderr = stderr
        self._handle: Any = None
        self._holder: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        return self._handle is not None

    def _open(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.path, "a+", encoding="utf-8")

    def _read_holder(self, handle: Any) -> dict[str, Any]:
        try:
            handle.seek(0)
            return json.loads(handle.read() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> StepLock:
        """Take the lock, waiting up to ``wait_seconds`` for the process that holds it; :class:`StepBusy` after."""
        if fcntl is None or self._handle is not None:
            return self
        try:
            handle = self._open()
        except OSError:  # a read-only work folder: nothing to coordinate through
            return self
        started = time.monotonic()
        deadline = started + self.wait_seconds
        said = False
        delay = 0.05
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                holder = self._read_holder(handle)
                if time.monotonic() >= deadline:
                    handle.close()
                    raise StepBusy(
                        f"another `beep {self.kind}` is running on {self.paths.duckdb} ({_describe(holder)}) and "
                        f"did not finish within {self.wait_seconds:.0f} s. Only one {self.kind} runs on a DuckDB file "
                        f"at a time, so nothing is done or paid twice: wait for it to finish (or stop it) and run "
                        f"again; BEEP_LOCK_WAIT_SECONDS sets how long to wait.", _describe(holder)
                    ) from None
                # The holder writes who it is just after it takes the lock: give it a moment, so
                # the message names the run rather than "another process".
                if not said and (holder.get("pid") or time.monotonic() - started >= 1.0):
                    (self._stderr or sys.stderr).write(
                        f"waiting up to {self.wait_seconds:.0f} s for another `beep {self.kind}` on this DuckDB file "
                        f"to finish ({_describe(holder)})\n")
                    said = True
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 0.5)
        self._handle = handle
        self._holder = {"pid": os.getpid(), "host": socket.gethostname(),
                        "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                        "command": " ".join(["beep", *sys.argv[1:]]) if sys.argv and "beep" in Path(sys.argv[0]).name else None}
        self._write_holder()
        return self

    def note(self, **fields: Any) -> None:
        """Add ``fields`` (e.g. ``run_id``) to what a process waiting for this lock is told."""
        if self._handle is None:
            return
        self._holder.update(fields)
        self._write_holder()

    def _write_holder(self) -> None:
        try:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.write(json.dumps(self._holder, default=str))
            self._handle.flush()
        except OSError:  # pragma: no cover - a full disk: the lock still holds
            pass

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            self._handle.seek(0)
            self._handle.truncate()
        except OSError:  # pragma: no cover
            pass
        self._handle.close()  # closing drops the flock
        self._handle = None

    def __enter__(self) -> StepLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def one_at_a_time(kind: str) -> Callable[[F], F]:
    """Decorate a step whose first argument is a :class:`Paths`: it runs holding the lock of
    ``kind`` on that DuckDB file (:class:`StepLock`)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(paths: Paths, *args: Any, **kwargs: Any) -> Any:
            with StepLock(paths, kind):
                return fn(paths, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
