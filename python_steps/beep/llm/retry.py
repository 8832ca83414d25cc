"""Retries with the `backoff` library: 429 (honouring retry-after), 5xx, timeouts, dropped connections.

The SDK's own retries are off (see client.py), so this is the only retry layer. Errors that a retry
cannot fix (400 bad request, 401, 403, 404, content policy) are raised at once.
"""

from __future__ import annotations

import random
import socket
import ssl
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import backoff
import openai

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying one request.

    Waits grow exponentially from ``base_seconds`` up to ``cap_seconds`` with full jitter, except
    when the server says how long to wait (``retry-after-ms`` / ``retry-after``), which is honoured
    (plus ``retry_after_padding_seconds``). Gives up after ``max_tries`` attempts or ``max_time_seconds``.
    """

    max_tries: int = 8
    max_time_seconds: float = 600.0
    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    retry_after_padding_seconds: float = 0.0
    seed: int | None = None
    #: create_once: after a timeout the server may still be making the thing; wait at least this
    #: long (at most cap_seconds) before listing to look for it and before sending the create again
    create_grace_seconds: float = 2.0


def header_value(headers: Mapping[str, str] | Any, name: str) -> str | None:
    """A header by name, case-insensitive, from httpx headers or a plain mapping."""
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    if value is None and isinstance(headers, Mapping):
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower())
    return value


def retry_after_seconds(exc: BaseException) -> float | None:
    """The wait the server asked for on this error (``retry-after-ms`` or ``retry-after``), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    ms = header_value(headers, "retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    seconds = header_value(headers, "retry-after")
    if seconds is not None:
        try:
            return max(0.0, float(seconds))
        except ValueError:
            return None  # an HTTP date: fall back to our own backoff
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 12:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


_DNS_TEXT = ("name or service not known", "nodename nor servname", "temporary failure in name resolution",
             "getaddrinfo failed", "no address associated with hostname", "name resolution")


def connection_problem(exc: BaseException) -> str | None:
    """What kind of connection failure ``exc`` is, in words (DNS, refused, TLS, reset), or None when
    it is none of those (an HTTP status, a timeout, a garbled answer)."""
    for err in _chain(exc):
        text = str(err).lower()
        if isinstance(err, socket.gaierror) or any(t in text for t in _DNS_TEXT):
            return "the host name does not resolve (DNS lookup failed)"
        if isinstance(err, ConnectionRefusedError) or "connection refused" in text:
            return "the connection was refused (nothing listens at that host and port)"
        if isinstance(err, ssl.SSLError) or "ssl" in text or "certificate" in text or "tls" in text:
            reason = getattr(err, "reason", None) or str(err)
            return f"the TLS handshake failed ({reason}; an http:// server given as https://, or a certificate this machine does not trust?)"
        if isinstance(err, ConnectionResetError) or "connection reset" in text:
            return "the connection was reset by the server or a proxy"
    return None


def describe_error(exc: BaseException, client: Any = None) -> str:
    """``exc`` for a person: a connection failure says which kind and which setting names the server
    (``OPENAI_BASE_URL`` / ``--base-url``, or ``AZURE_OPENAI_ENDPOINT`` for Azure) and the network;
    anything else is ``Type: message``."""
    problem = connection_problem(exc) if isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError) else None
    if problem is None:
        return f"{type(exc).__name__}: {exc}"
    url = getattr(client, "base_url", None)
    where = f" {str(url).rstrip('/')}" if url else ""
    setting = ("AZURE_OPENAI_ENDPOINT (or --azure-endpoint)" if isinstance(client, openai.AzureOpenAI)
               else "OPENAI_BASE_URL (or --base-url)")
    return f"cannot connect to{where}: {problem}. Check {setting} and the network"


def is_retryable(exc: BaseException) -> bool:
    """Whether a retry can fix this error: 408/409/429, 5xx, timeouts, connection errors, garbled bodies."""
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, MalformedResponse)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def _wait_generator(policy: RetryPolicy) -> Callable[[], Generator[float, BaseException | None, None]]:
    rng = random.Random(policy.seed)

    def gen() -> Generator[float, BaseException | None, None]:
        exc = yield 0.0  # backoff primes the generator with send(None)
        attempt = 0
        while True:
            asked = retry_after_seconds(exc) if exc is not None else None
            if asked is not None:
                wait = asked + policy.retry_after_padding_seconds
            else:
                wait = rng.uniform(0, min(policy.cap_seconds, policy.base_seconds * 2**attempt))
            attempt += 1
            exc = yield wait

    return gen


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_wait: Callable[[BaseException, float, int], None] | None = None,
) -> T:
    """Call ``fn()`` until it succeeds, retrying retryable errors under ``policy``.

    ``on_wait(exc, seconds, tries)`` is called before each wait (e.g. to pause a shared pacer on a
    429 or to count retries). The last error is raised when the policy gives up.
    """

    def _on_backoff(details: dict[str, Any]) -> None:
        if on_wait is not None:
            on_wait(details["exception"], float(details["wait"]), int(details["tries"]))

    wrapped = backoff.on_exception(
        _wait_generator(policy),
        Exception,
        max_tries=policy.max_tries,
        max_time=policy.max_time_seconds,
        jitter=None,
        giveup=lambda e: not is_retryable(e),
        on_backoff=_on_backoff,
        raise_on_giveup=True,
        logger=None,
    )(fn)
    return wrapped()


def create_once(
    create: Callable[[], T],
    find: Callable[[], T | None],
    policy: RetryPolicy,
    *,
    on_wait: Callable[[BaseException, float, int], None] | None = None,
) -> T:
    """Create something the provider must not get twice (a fine-tuning job, an upload, a batch).

    A failed create is never sent again blindly: the server may have done the work before the
    connection dropped, the 500 came or the client timed out. After each retryable failure this
    waits as :func:`call_with_retry` would, then calls ``find()`` (a listing, retried on its own) to
    adopt what the failed attempt may have created, and only when nothing matches sends the create
    again. After the last attempt it looks once more before raising. Errors a retry cannot fix
    (400, 401 ...) are raised at once.
    """
    waits = _wait_generator(policy)()
    next(waits)
    started = time.monotonic()
    tries = 0
    while True:
        tries += 1
        try:
            return create()
        except Exception as exc:  # noqa: BLE001 - sorted by is_retryable
            if not is_retryable(exc):
                raise
            error = exc
        seconds = waits.send(error)
        if isinstance(error, openai.APITimeoutError):
            seconds = max(seconds, min(policy.create_grace_seconds, policy.cap_seconds))
        last = tries >= policy.max_tries or time.monotonic() - started + seconds > policy.max_time_seconds
        if last:  # a short look before giving up, in case it was created after all
            seconds = min(seconds, max(2.0, policy.create_grace_seconds))
        elif on_wait is not None:
            on_wait(error, seconds, tries)
        time.sleep(seconds)
        found = call_with_retry(find, policy)
        if found is not None:
            return found
        if last:
            raise error


class MalformedResponse(RuntimeError):
    """The server answered 2xx with a body that is not the JSON the API promises (retryable)."""
