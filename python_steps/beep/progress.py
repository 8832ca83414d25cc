"""Never silent: a long step that prints nothing for a while says what it is doing.

:class:`Heartbeat` wraps a step. Its :meth:`Heartbeat.say` prints a message and makes it the current
phase. On a terminal a spinner shows the phase and the elapsed time; anywhere else (a pipe, a log, CI,
where a spinner shows nothing) a line ``  42 s: <phase> (still working)`` is printed whenever nothing
was said for ``every`` seconds (10 by default).
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console

#: Seconds of silence after which a line is printed when not on a terminal.
HEARTBEAT_SECONDS = 10.0


def _short(message: str, limit: int = 120) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Heartbeat:
    """Elapsed time and phase of a long step, on a terminal (spinner) and in a pipe (a line every ``every`` s)."""

    def __init__(self, console: Console, phase: str, *, every: float | None = None, spinner: bool = True) -> None:
        self.console = console
        self.phase = phase
        self.every = HEARTBEAT_SECONDS if every is None else every
        self.spinner = spinner and console.is_terminal
        self.started = time.monotonic()
        self._last_said = self.started
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _text(self) -> str:
        return f"{_short(self.phase)} ({self.elapsed:.0f} s)"

    def say(self, message: str) -> None:
        """Print ``message`` (no markup) and make it the current phase."""
        with self._lock:
            self.console.print(message, markup=False, emoji=False, highlight=False)
            self.phase = message.strip() or self.phase
            self._last_said = time.monotonic()

    def set_phase(self, phase: str) -> None:
        """The phase shown by the next spinner refresh or heartbeat line, without printing now."""
        with self._lock:
            self.phase = phase

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.every / 2)):
            with self._lock:
                if self._status is not None:
                    self._status.update(self._text())
                elif time.monotonic() - self._last_said >= self.every:
                    self.console.print(f"  {self.elapsed:5.0f} s: {_short(self.phase)} (still working)",
                                       markup=False, emoji=False, highlight=False)
                    self._last_said = time.monotonic()

    def __enter__(self) -> "Heartbeat":
        if self.spinner:
            self._status = self.console.status(self._text())
            self._status.start()
        self._thread = threading.Thread(target=self._beat, name="beep-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._status is not None:
            self._status.stop()
            self._status = None
