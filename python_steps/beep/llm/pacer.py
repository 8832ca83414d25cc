"""A thread-safe pacer that keeps requests under requests-per-minute and tokens-per-minute limits.

Every request reserves its estimated tokens (prompt + max output, the way OpenAI counts them) in a
sliding window of ``window_seconds`` (60 for real APIs; tests and benchmarks shrink it to scale time).
A request waits until one more request and its tokens fit in the window. Limits come from
``--rpm``/``--tpm`` and from the server: ``x-ratelimit-limit-*`` headers lower them when smaller,
``x-ratelimit-remaining-*`` lower than our own count add the difference to the window (another client
shares the key, or the server counts differently), and a 429's ``retry-after`` pauses everyone.
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from beep.llm.retry import header_value

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset(value: str | None) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value such as ``1s``, ``6m0s``, ``20ms``, ``0.5``."""
    if value is None:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def _int_header(headers: Any, name: str) -> int | None:
    value = header_value(headers, name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


@dataclass
class Reservation:
    """A request's place in the window (from :meth:`Pacer.acquire`); :meth:`Pacer.settle` it when the call returns."""

    entry: list[Any]
    waited_seconds: float


class Pacer:
    """Sliding-window limiter shared by all workers of a run.

    ``rpm``/``tpm`` of ``None`` mean "no limit of our own" (the server's headers may still set one).
    ``safety_seconds`` keeps each reservation in the window a little longer than the window. When a
    call returns, :meth:`settle` restarts its reservation's window from that moment: the server
    received the request somewhere between acquire and return, so counting it from the return can
    never expire it before the server does (queueing or slow networks would otherwise cause 429s).
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        window_seconds: float = 60.0,
        safety_seconds: float = 0.05,
        follow_headers: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.rpm = rpm
        self.tpm = tpm
        self.window_seconds = window_seconds
        self.safety_seconds = safety_seconds
        self.follow_headers = follow_headers
        self._clock = clock
        self._cond = threading.Condition()
        # heap of [expires_at, seq, tokens, counts as a request, state]; state is live | replaced | expired;
        # settle() replaces a live entry by a later one (totals unchanged) or re-adds an expired one
        self._entries: list[list[Any]] = []
        self._seq = itertools.count()
        self._requests_in_window = 0
        self._tokens_in_window = 0
        self._paused_until = 0.0
        self.waited_seconds = 0.0

    # -- state -------------------------------------------------------------------------------
    def _expire(self, now: float) -> None:
        while self._entries and self._entries[0][0] <= now:
            entry = heapq.heappop(self._entries)
            if entry[4] == "live":
                entry[4] = "expired"
                self._tokens_in_window -= entry[2]
                self._requests_in_window -= 1 if entry[3] else 0

    def _add(self, now: float, tokens: int, *, count_request: bool = True) -> list[Any]:
        entry = [now + self.window_seconds + self.safety_seconds, next(self._seq), tokens, count_request, "live"]
        heapq.heappush(self._entries, entry)
        self._tokens_in_window += tokens
        if count_request:
            self._requests_in_window += 1
        return entry

    def _fits(self, tokens: int) -> bool:
        if self.rpm is not None and self._requests_in_window + 1 > self.rpm:
            return False
        if self.tpm is not None and self._tokens_in_window > 0 and self._tokens_in_window + tokens > self.tpm:
            return False
        return True

    # -- public ------------------------------------------------------------------------------
    def acquire(self, tokens: int) -> Reservation:
        """Block until a request of ``tokens`` fits; reserve it."""
        start = self._clock()
        with self._cond:
            while True:
                now = self._clock()
                self._expire(now)
                if now < self._paused_until:
                    self._cond.wait(self._paused_until - now)
                    continue
                if self._fits(tokens):
                    entry = self._add(now, tokens)
                    waited = now - start
                    self.waited_seconds += waited
                    return Reservation(entry, waited)
                next_expiry = self._entries[0][0] if self._entries else now + 0.01
                self._cond.wait(max(0.001, next_expiry - now))

    def settle(self, reservation: Reservation) -> None:
        """The call returned: count its reservation from now (see the class docstring)."""
        with self._cond:
            entry = reservation.entry
            now = self._clock()
            self._expire(now)
            expires = now + self.window_seconds + self.safety_seconds
            if entry[4] == "expired":  # it left our window while the call was still running: count it again
                reservation.entry = self._add(now, entry[2], count_request=entry[3])
            elif entry[4] == "live" and expires > entry[0]:
                entry[4] = "replaced"
                replacement = [expires, next(self._seq), entry[2], entry[3], "live"]
                heapq.heappush(self._entries, replacement)
                reservation.entry = replacement

    def pause_for(self, seconds: float) -> None:
        """Hold every request for ``seconds`` from now (a 429 with retry-after)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))
            self._cond.notify_all()

    def observe_headers(self, headers: Mapping[str, str] | Any) -> None:
        """Follow the server's ``x-ratelimit-*`` headers from a response."""
        if not self.follow_headers or headers is None:
            return
        limit_requests = _int_header(headers, "x-ratelimit-limit-requests")
        limit_tokens = _int_header(headers, "x-ratelimit-limit-tokens")
        remaining_requests = _int_header(headers, "x-ratelimit-remaining-requests")
        remaining_tokens = _int_header(headers, "x-ratelimit-remaining-tokens")
        reset_requests = parse_reset(header_value(headers, "x-ratelimit-reset-requests"))
        reset_tokens = parse_reset(header_value(headers, "x-ratelimit-reset-tokens"))
        with self._cond:
            now = self._clock()
            self._expire(now)
            if limit_requests and (self.rpm is None or limit_requests < self.rpm):
                self.rpm = float(limit_requests)
            if limit_tokens and (self.tpm is None or limit_tokens < self.tpm):
                self.tpm = float(limit_tokens)
            if remaining_requests is not None and remaining_requests <= 0 and reset_requests:
                self._paused_until = max(self._paused_until, now + reset_requests)
            if remaining_tokens is not None and remaining_tokens <= 0 and reset_tokens:
                self._paused_until = max(self._paused_until, now + reset_tokens)
            if remaining_tokens is not None and self.tpm is not None:
                ours = self.tpm - self._tokens_in_window
                if remaining_tokens < ours:
                    self._add(now, int(ours - remaining_tokens), count_request=False)
            self._cond.notify_all()

    def snapshot(self) -> dict[str, float | None]:
        """Current limits and window contents (for progress displays and tests)."""
        with self._cond:
            self._expire(self._clock())
            return {
                "rpm": self.rpm,
                "tpm": self.tpm,
                "requests_in_window": self._requests_in_window,
                "tokens_in_window": self._tokens_in_window,
            }
