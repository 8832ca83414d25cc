"""The fake server's state: what it received, what it stores, and what the test scripted it to do."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response

from beep.llm.calls import chat_prompt_tokens, completion_prompt_tokens


@dataclass
class ChatAnswer:
    """What a responder returns when a plain string is not enough.

    ``top_logprobs``: for the first output token, the alternatives as (token, logprob) pairs, best
    first (the first one is the answer's token unless ``content`` says otherwise).
    """

    content: str | None
    finish_reason: str = "stop"
    refusal: str | None = None
    top_logprobs: list[tuple[str, float]] | None = None


@dataclass
class Fault:
    """One scripted misbehaviour.

    kind: ``status`` (answer ``status`` with ``body`` and ``headers``, e.g. 429 + retry-after, 500,
    503), ``slow`` (sleep ``delay_seconds`` then answer normally: past the client's timeout it is a
    timeout), ``drop`` (start a 200 answer and cut the connection mid-body), ``truncated`` (a complete
    HTTP 200 whose JSON body is cut in half). With ``after=True`` the fault strikes once the endpoint
    has done its work (the job created, the file stored, the chat answered): the case where a retry
    would make a second one. Routes apply it with ``await state.finish(record, response)``.
    """

    kind: str = "status"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay_seconds: float = 0.0
    #: fail *after* the endpoint did its work (created the job, stored the file, answered the chat):
    #: the client sees the error, the server keeps what it did, as when a connection drops on the way back
    after: bool = False


@dataclass
class RecordedRequest:
    """A request as the server saw it."""

    method: str
    path: str
    at: float  # time.monotonic() at arrival
    body: Any = None
    model: str | None = None
    prompt_tokens: int = 0
    rate_tokens: int = 0  # what counts toward TPM: prompt + max_tokens
    status: int = 200
    fault: str | None = None
    answered_at: float | None = None  # time.monotonic() when the endpoint finished its work (see FakeState.finish)
    after_fault: Fault | None = None


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class RateLimit:
    rpm: int | None
    tpm: int | None
    window_seconds: float


Responder = Callable[[dict[str, Any]], "str | ChatAnswer"]


def default_responder(body: dict[str, Any]) -> str:
    return "ok"


class FakeState:
    """Everything a test can inspect or steer. Thread-safe (the server runs in another thread)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_polls: dict[str, int] = {}
        self.extras: dict[str, Any] = {}
        self.chat_responder: Responder = default_responder
        self.completion_responder: Responder = default_responder
        self.latency_seconds = 0.0
        self.batch_polls_to_complete = 2
        self.batch_error_custom_ids: set[str] = set()
        self.cache_min_tokens = 1024  # prefixes at least this long are "cached" on reuse, like OpenAI
        self._seen_prefixes: set[str] = set()
        self._faults: deque[tuple[str | None, str | None, Fault]] = deque()
        self._rate: RateLimit | None = None
        self._window: deque[tuple[float, int]] = deque()
        self._ids = itertools.count(1)

    # -- steering --------------------------------------------------------------------------------
    def inject(self, fault: Fault, *, times: int = 1, path: str | None = None, method: str | None = None) -> None:
        """Make the next ``times`` requests (to ``path`` if given, e.g. "/v1/chat/completions", with
        ``method`` if given: "POST" /v1/files is the upload, "GET" the listing) misbehave."""
        with self.lock:
            for _ in range(times):
                self._faults.append((path, method, fault))

    def set_rate_limit(self, *, rpm: int | None = None, tpm: int | None = None, window_seconds: float = 60.0) -> None:
        """Enforce a sliding-window limit on chat/completions requests (429 + x-ratelimit-* headers)."""
        with self.lock:
            self._rate = RateLimit(rpm, tpm, window_seconds)
            self._window.clear()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    # -- inspection ------------------------------------------------------------------------------
    def requests_to(self, path: str, *, status: int | None = 200) -> list[RecordedRequest]:
        """Requests received on ``path`` (only those answered with ``status``; None for all)."""
        with self.lock:
            return [r for r in self.requests if r.path == path and (status is None or r.status == status)]

    # -- used by the routes ----------------------------------------------------------------------
    def _take_fault(self, path: str, method: str) -> Fault | None:
        for i, (want, want_method, fault) in enumerate(self._faults):
            if (want is None or want == path) and (want_method is None or want_method == method):
                del self._faults[i]
                return fault
        return None

    def _rate_headers(self, now: float) -> dict[str, str]:
        rate = self._rate
        if rate is None:
            return {}
        reset = (self._window[0][0] + rate.window_seconds - now) if self._window else 0.0
        headers: dict[str, str] = {}
        used_tokens = sum(t for _, t in self._window)
        if rate.rpm is not None:
            headers["x-ratelimit-limit-requests"] = str(rate.rpm)
            headers["x-ratelimit-remaining-requests"] = str(max(0, rate.rpm - len(self._window)))
            headers["x-ratelimit-reset-requests"] = f"{max(0.0, reset):.3f}s"
        if rate.tpm is not None:
            headers["x-ratelimit-limit-tokens"] = str(rate.tpm)
            headers["x-ratelimit-remaining-tokens"] = str(max(0, rate.tpm - used_tokens))
            headers["x-ratelimit-reset-tokens"] = f"{max(0.0, reset):.3f}s"
        return headers

    def _rate_check(self, now: float, tokens: int) -> tuple[bool, float]:
        """Admit a request of ``tokens`` or say how long until it would fit."""
        rate = self._rate
        if rate is None:
            return True, 0.0
        while self._window and self._window[0][0] + rate.window_seconds <= now:
            self._window.popleft()
        over_requests = rate.rpm is not None and len(self._window) + 1 > rate.rpm
        used = sum(t for _, t in self._window)
        over_tokens = rate.tpm is not None and used + tokens > rate.tpm
        if not over_requests and not over_tokens:
            self._window.append((now, tokens))
            return True, 0.0
        wait = 0.0
        if over_requests:
            wait = max(wait, self._window[len(self._window) - rate.rpm][0] + rate.window_seconds - now)
        if over_tokens:
            freed = 0
            need = used + tokens - (rate.tpm or 0)
            for at, t in self._window:
                freed += t
                if freed >= need:
                    wait = max(wait, at + rate.window_seconds - now)
                    break
        return False, max(0.001, wait)

    def cached_tokens(self, body: dict[str, Any]) -> int:
        """Tokens of the first message when it was seen before and is long enough (prompt caching)."""
        messages = body.get("messages") or []
        if not messages or not isinstance(messages[0].get("content"), str):
            return 0
        first = messages[0]["content"]
        model = body.get("model") or "gpt-4o-mini"
        tokens = chat_prompt_tokens([messages[0]], model) - 3
        with self.lock:
            seen = first in self._seen_prefixes
            self._seen_prefixes.add(first)
        return tokens if seen and tokens >= self.cache_min_tokens else 0

    async def gate(self, method: str, path: str, body: Any = None, *, rate_limited: bool = False) -> tuple[Response | None, RecordedRequest, dict[str, str]]:
        """Record the request, apply a scripted fault or the rate limit.

        Returns (a response to send instead of the normal answer, or None; the record; the
        rate-limit headers to add to the normal answer).
        """
        import asyncio

        from fake_openai.responses import DroppedResponse, TruncatedJSONResponse

        now = time.monotonic()
        model = body.get("model") if isinstance(body, dict) else None
        prompt_tokens = rate_tokens = 0
        if isinstance(body, dict) and rate_limited:
            prompt_tokens = request_prompt_tokens(body)
            rate_tokens = prompt_tokens + int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)
        record = RecordedRequest(method, path, now, body, model, prompt_tokens, rate_tokens)
        with self.lock:
            self.requests.append(record)
            fault = self._take_fault(path, method)
            if fault is None and rate_limited:
                ok, wait = self._rate_check(now, rate_tokens)
                headers = self._rate_headers(now)
                if not ok:
                    record.status = 429
                    record.fault = "rate_limit"
                    headers["retry-after-ms"] = str(int(wait * 1000) + 1)
                    headers["retry-after"] = f"{wait:.3f}"
                    return (
                        JSONResponse(
                            {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
                            status_code=429,
                            headers=headers,
                        ),
                        record,
                        headers,
                    )
            else:
                headers = self._rate_headers(now) if rate_limited else {}
        if fault is not None and fault.after:
            record.after_fault = fault  # applied by finish(), once the endpoint has done its work
            fault = None
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "status":
                record.status = fault.status
                body_json = fault.body or {"error": {"message": f"injected {fault.status}", "type": "server_error"}}
                return JSONResponse(body_json, status_code=fault.status, headers=fault.headers), record, headers
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay_seconds)
            elif fault.kind == "drop":
                record.status = -1
                return DroppedResponse(), record, headers
            elif fault.kind == "truncated":
                return TruncatedJSONResponse(), record, headers
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        return None, record, headers

    async def finish(self, record: RecordedRequest, response: Response) -> Response:
        """The endpoint did its work: send ``response``, or the after-fault scripted for this request."""
        import asyncio

        from fake_openai.responses import DroppedResponse, TruncatedJSONResponse

        record.answered_at = time.monotonic()
        fault = record.after_fault
        if fault is None:
            return response
        record.fault = f"{fault.kind} after"
        if fault.kind == "status":
            record.status = fault.status
            body_json = fault.body or {"error": {"message": f"injected {fault.status}", "type": "server_error"}}
            return JSONResponse(body_json, status_code=fault.status, headers=fault.headers)
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay_seconds)
            return response
        if fault.kind == "drop":
            record.status = -1
            return DroppedResponse()
        return TruncatedJSONResponse()


def request_prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens of a chat or completions request body, counted the way beep.llm.calls counts them."""
    model = body.get("model") or "gpt-4o-mini"
    if "messages" in body:
        return chat_prompt_tokens(body["messages"], model)
    prompt = body.get("prompt") or ""
    if isinstance(prompt, list):
        return sum(completion_prompt_tokens(p, model) for p in prompt)
    return completion_prompt_tokens(prompt, model)
