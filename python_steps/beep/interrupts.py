"""Signals that stop a command: Ctrl-C (SIGINT), SIGTERM and SIGHUP (a closed terminal).

Each becomes an exception in the main thread (:class:`Terminated`, a ``KeyboardInterrupt``), so a
step unwinds the way Ctrl-C unwinds it: what arrived is stored, its run is recorded
``interrupted`` with its cost, and the command exits with ``128 + the signal's number`` (130, 143,
129). A second signal while the first is being handled is ignored, so the clean-up that records the
run is not cut short; SIGKILL cannot be handled, and what it costs is bounded elsewhere (a step's
worker dies with its parent, :mod:`beep.worker`; answers are stored before new requests are sent).

A C library can swallow the exception: DuckDB, when the handler runs while it executes a query,
mostly stops the query and raises its own "Query interrupted" error (:func:`interruption` reads that
as the interruption it is), but sometimes drops the exception and runs the query on without looking
at signals again (seen in about one run in six under load: a query ran on for 5 minutes). So the
first signal is watched: when the main thread is still on the very line the signal landed on
:data:`REDELIVER_SECONDS` later, the exception was lost inside a call that goes on, and the signal
is delivered again (``_thread.interrupt_main``: a call that polls again raises it). When it is still
there :data:`EXIT_SECONDS` after the signal, the process says so and exits with 128 + the signal
without recording its run, as SIGKILL would end it (the next command marks the run interrupted):
a stop that is asked for is never ignored.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: The signals handled, by name (SIGHUP does not exist on Windows).
HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

#: How long the main thread may stay on the line a stopping signal landed on before the signal is
#: delivered again (the exception was lost inside a call that goes on; see the module docstring).
REDELIVER_SECONDS = 2.0

#: How long after a stopping signal the main thread may still be on the line it landed on before the
#: process exits without its clean-up (below :data:`beep.worker.GRACE_SECONDS`, 10 s).
EXIT_SECONDS = 7.0


class Terminated(KeyboardInterrupt):
    """A stopping signal arrived; ``signum`` says which (``exit_code`` is what the command exits with)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code_of(exc: BaseException) -> int:
    """128 + the signal for :class:`Terminated`; 130 (Ctrl-C) for any other KeyboardInterrupt."""
    return exc.exit_code if isinstance(exc, Terminated) else 128 + int(signal.SIGINT)


@dataclass
class Interrupts:
    """What :func:`signals_as_interrupts` saw: the first stopping signal, if any."""

    signum: int | None = None
    _previous: dict[int, Any] = field(default_factory=dict)
    _redeliver: bool = False  # the next call of the handler is a re-delivery, not a later signal
    _ended: threading.Event = field(default_factory=threading.Event)

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum


@contextmanager
def signals_as_interrupts(signals: tuple[int, ...] = HANDLED) -> Iterator[Interrupts]:
    """While inside, each of ``signals`` raises :class:`Terminated` in the main thread (the first
    one only: later ones are ignored until the block ends; the first is delivered again when a call
    swallowed it, see the module docstring). Outside the main thread it does nothing (Python
    delivers signals to the main thread alone)."""
    seen = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handler(signum: int, frame: Any) -> None:
        if seen.signum is None:
            seen.signum = signum
        elif seen._redeliver:
            seen._redeliver = False
        else:
            return  # a later signal while the first one is being handled
        _watch_delivery(seen, frame)
        raise Terminated(seen.signum)

    handler.beep_interrupts = seen  # type: ignore[attr-defined]  # read back by signal_seen()

    for sig in signals:
        try:
            seen._previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # pragma: no cover - a signal this platform refuses
            pass
    try:
        yield seen
    finally:
        seen._ended.set()
        for sig, old in seen._previous.items():
            signal.signal(sig, old)


def _watch_delivery(seen: Interrupts, frame: Any) -> None:
    """Deliver ``seen``'s signal again if, :data:`REDELIVER_SECONDS` from now, the main thread is
    still on the line of ``frame`` where the handler raised (a call swallowed the exception)."""
    if frame is None:
        return
    main, line = threading.main_thread().ident, frame.f_lineno

    def still_there() -> bool:
        now = sys._current_frames().get(main)
        return now is frame and now.f_lineno == line and seen.signum is not None and not seen._ended.is_set()

    def watch() -> None:
        if seen._ended.wait(REDELIVER_SECONDS) or not still_there():
            return
        seen._redeliver = True
        _thread.interrupt_main(seen.signum)
        if seen._ended.wait(EXIT_SECONDS - REDELIVER_SECONDS) or not still_there():
            return
        assert seen.signum is not None
        name = signal.Signals(seen.signum).name
        try:
            sys.stderr.write(f"\nstopped by {name}: the call it arrived in ({frame.f_code.co_filename}:{line}) went on "
                             f"for {EXIT_SECONDS:.0f} s without stopping; exiting without recording the run (the "
                             "next command marks it interrupted and resumes it)\n")
            sys.stderr.flush()
        finally:
            os._exit(128 + seen.signum)

    threading.Thread(target=watch, name="beep-signal-watch", daemon=True).start()


def signal_seen() -> int | None:
    """The stopping signal that arrived inside the innermost :func:`signals_as_interrupts` still
    installed, or None (read from the handler Python holds for SIGINT: signals are per process)."""
    seen = getattr(signal.getsignal(signal.SIGINT), "beep_interrupts", None)
    return seen.signum if isinstance(seen, Interrupts) else None


def _is_duckdb_interruption(err: BaseException) -> bool:
    # DuckDB polls for signals while a query runs; when the handler raises Terminated there, DuckDB
    # stops the query and raises its own error instead, dropping the Terminated.
    kind = type(err)
    return (kind.__name__ == "InterruptException" and kind.__module__.startswith(("duckdb", "_duckdb"))) or (
        kind is RuntimeError and str(err) in {"Query interrupted", "INTERRUPT Error: Interrupted!"})


def interruption(err: BaseException) -> KeyboardInterrupt | None:
    """``err`` as the interruption it stands for, or None when it is an ordinary failure.

    A KeyboardInterrupt (:class:`Terminated` included) is itself. So is DuckDB's "Query
    interrupted" error while a stopping signal has been seen: the signal arrived during a query, and
    DuckDB replaced the :class:`Terminated` its handler raised with that error. A step records its
    run ``interrupted`` (not ``failed``) and exits 128 + the signal for both."""
    if isinstance(err, KeyboardInterrupt):
        return err
    signum = signal_seen()
    if signum is not None and _is_duckdb_interruption(err):
        stopped = Terminated(signum)
        stopped.__cause__ = err
        return stopped
    return None


def run_stoppable(call: Callable[[], object]) -> None:
    """Run a command-line app (``call``) with Ctrl-C, SIGTERM and SIGHUP as :class:`Terminated` for
    its whole life, and exit with 128 + the signal when one ended it (click would say "Aborted!" and
    exit 1; a signal arriving outside a step's own handling would kill the process with -N)."""
    with signals_as_interrupts() as seen:
        try:
            call()
        except SystemExit as done:
            if seen.exit_code is not None and done.code != seen.exit_code:
                raise SystemExit(seen.exit_code) from None
            raise
        except KeyboardInterrupt:
            raise SystemExit(seen.exit_code or 128 + int(signal.SIGINT)) from None
        except Exception as err:
            if seen.exit_code is not None and interruption(err) is not None:
                raise SystemExit(seen.exit_code) from None
            raise
