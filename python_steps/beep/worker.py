"""Run a step in a process of its own that never outlives the process that started it.

`beep run` runs each heavy step in a spawned worker, so that a run's peak memory is its largest
step's. A worker must not go on spending after its parent is gone, whatever ended the parent
(SIGKILL included), so each worker:

- runs in a process group of its own (what it starts, such as dbt, is in it too, so the group can
  be ended as one; a terminal's Ctrl-C reaches the parent, which passes it on);
- asks the kernel for SIGTERM when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``), and also
  watches a pipe from the parent (a *lifeline*: the kernel closes the parent's end however the
  parent ends, on every platform), and then stops itself with SIGTERM;
- turns SIGINT / SIGTERM / SIGHUP into :class:`beep.interrupts.Terminated`, so the step unwinds like
  Ctrl-C: it sends no new request (``beep.llm.runner`` stops its threads), stores what arrived and
  records its run ``interrupted`` with its cost;
- is killed with its whole group when it has not ended :data:`GRACE_SECONDS` after being told to
  stop, by the parent or, when the parent is gone, by its own watchdog.

The parent, when it is interrupted itself (Ctrl-C, SIGTERM, SIGHUP), passes the signal on, waits
for the worker to record its run (at most :data:`GRACE_SECONDS`), and re-raises the interrupt so the
command exits with 128 + the signal's number.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

from beep.interrupts import HANDLED, Terminated, exit_code_of, interruption, signals_as_interrupts

#: How long a worker told to stop may take to store what arrived and record its run before its
#: process group is killed.
GRACE_SECONDS = 10.0

_PR_SET_PDEATHSIG = 1


class StepError(RuntimeError):
    """An error a step raised in its worker, carried back as its type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name


class WorkerDied(RuntimeError):
    """The worker ended without a result (killed from outside, out of memory, a crash)."""


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only; elsewhere the
    lifeline of :func:`run_in_worker` does it). Usable as a ``subprocess`` ``preexec_fn``."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        pass


def _kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (the worker and what it started), else the process."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _watch_lifeline(lifeline: Any, grace_seconds: float, finished: threading.Event) -> None:
    """In the worker: when the parent's end of the lifeline closes (the parent is gone), stop this
    process with SIGTERM, and kill its group if it has not ended ``grace_seconds`` later. Once the
    step's result is handed over (``finished``), the parent closing its end is the normal end."""
    try:
        while True:
            lifeline.recv_bytes()  # the parent never sends: this returns only when it closes its end
    except (EOFError, OSError):
        pass
    if finished.is_set():
        return
    try:
        os.kill(os.getpid(), signal.SIGTERM)
    except OSError:  # pragma: no cover
        pass
    time.sleep(grace_seconds)
    _kill_group(os.getpid())
    os._exit(128 + int(signal.SIGKILL))  # pragma: no cover - not reached: the group was killed


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker_main(target: str, kwargs: dict[str, Any], results: Any, lifeline: Any, parent_pid: int,
                 grace_seconds: float) -> None:
    """The worker's whole life: see the module docstring. Ends with ``os._exit`` so that no thread
    a step left behind (a request still in flight) keeps the process alive."""
    try:
        os.setpgid(0, 0)
    except OSError:  # pragma: no cover - not permitted (a session leader)
        pass
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        os._exit(128 + int(signal.SIGTERM))
    finished = threading.Event()
    threading.Thread(target=_watch_lifeline, args=(lifeline, grace_seconds, finished), name="beep-lifeline",
                     daemon=True).start()
    code = 0
    message: tuple[Any, ...]
    with signals_as_interrupts():
        try:
            value = _resolve(target)(**kwargs)
            message = ("ok", value)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            stopped = interruption(exc)
            if stopped is not None:
                code = exit_code_of(stopped)
                message = ("interrupted", code)
            else:
                code = 1
                message = ("error", type(exc).__name__, str(exc))
        try:
            results.send(message)
        except KeyboardInterrupt:  # stopped while handing the result over: the parent has it, or is gone
            pass
        except Exception as exc:  # noqa: BLE001 - a value that does not pickle, a parent gone
            try:
                results.send(("error", type(exc).__name__, f"the step's result could not be sent back: {exc}"))
            except BaseException:  # noqa: BLE001
                pass
        finished.set()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
    os._exit(code)


def _stop(proc: Any, results: Any, signum: int, grace_seconds: float) -> None:
    """Pass ``signum`` on to the worker, give it ``grace_seconds`` to record its run, then kill its group."""
    if proc.pid is None or proc.exitcode is not None:
        return
    try:
        os.kill(proc.pid, signum)
    except OSError:
        return
    deadline = time.monotonic() + grace_seconds
    try:
        results.poll(grace_seconds)  # the worker reports once its run is recorded
    except (EOFError, OSError):
        pass
    proc.join(max(0.0, min(1.0, deadline - time.monotonic())))
    if proc.exitcode is None:
        _kill_group(proc.pid)
        proc.join(5)


def run_in_worker(target: str, kwargs: dict[str, Any], *, grace_seconds: float = GRACE_SECONDS) -> Any:
    """``module:function`` called with ``kwargs`` in a spawned worker that dies with this process;
    its return value (which must pickle). Raises :class:`StepError` for an error in the step,
    :class:`WorkerDied` when the worker ended without a result, and :class:`Terminated` when the
    worker was stopped by a signal (passed on from here, or sent to it directly)."""
    ctx = multiprocessing.get_context("spawn")
    results_in, results_out = ctx.Pipe(duplex=False)
    lifeline_in, lifeline_out = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker_main, name=f"beep {target}",
                       args=(target, kwargs, results_out, lifeline_in, os.getpid(), grace_seconds))
    proc.start()
    results_out.close()  # the worker's ends: only the worker holds them now
    lifeline_in.close()
    try:
        try:
            message = results_in.recv()
        except EOFError:
            proc.join(5)
            code = proc.exitcode
            if code is not None and code - 128 in HANDLED:  # stopped by a signal, exited without its clean-up
                raise Terminated(code - 128) from None
            how = (f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0
                   and -code in signal.Signals._value2member_map_ else f"exited with code {code}")
            raise WorkerDied(f"the step's process {how} before it finished (out of memory? killed from outside?)") from None
    except KeyboardInterrupt as exc:
        _stop(proc, results_in, exc.signum if isinstance(exc, Terminated) else signal.SIGINT, grace_seconds)
        raise
    finally:
        if proc.exitcode is None:  # it ends right after handing its result over
            proc.join(grace_seconds)
        lifeline_out.close()  # only now: closing it earlier tells a worker still sending that we are gone
        results_in.close()
        if proc.exitcode is None:
            _kill_group(proc.pid)
            proc.join(5)
    kind = message[0]
    if kind == "ok":
        return message[1]
    if kind == "interrupted":
        raise Terminated(int(message[1]) - 128)
    raise StepError(message[1], message[2])
