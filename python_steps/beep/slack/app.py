"""`beep slack serve`: the app in Socket Mode (no public URL).

slack_sdk's Socket Mode client, without Bolt's ack-then-handle: every envelope is stored durably
before it is acked, a worker handles them, a watchdog replaces a dead socket
(:mod:`beep.slack.intake`, :mod:`beep.slack.inbox`).

Tokens come from ``SLACK_BOT_TOKEN`` (xoxb-, the Web API) and ``SLACK_APP_TOKEN`` (xapp-, with the
``connections:write`` scope, for ``apps.connections.open``) only; they are never written or logged.
``BEEP_SLACK_API_URL`` points the Web API client elsewhere (the tests' fake on 127.0.0.1); Slack's
``https://slack.com/api/`` by default. Every Web API call retries a 429 after the ``Retry-After``
Slack sends, a 503 (Slack did not serve the request) after a short backoff, both logged as warnings,
and a dropped connection (``ConnectionErrorRetryHandler``); a Socket Mode socket that drops, or goes
silent, is replaced.

One app serves a DuckDB file at a time: :func:`start` holds the ``slack-serve`` step lock of the file
(:class:`beep.locks.StepLock`, as `beep build` and the other steps do; two apps would each decide and
send every alert), and refuses to start while another process holds it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler

from beep.config import Paths
from beep.locks import StepBusy, StepLock
from beep.slack.alerts import AlertPolicy
from beep.slack.inbox import Inbox, inbox_path
from beep.slack.intake import SocketIntake
from beep.slack.scoring import LiveModel
from beep.slack.service import AlertService
from beep.slack.store import SlackStore

log = logging.getLogger("beep.slack")
DEFAULT_API_URL = "https://slack.com/api/"


class MissingToken(RuntimeError):
    """A token the app needs is not in the environment."""


class AlreadyServing(RuntimeError):
    """Another `beep slack serve` serves this DuckDB file."""


class SlackRefused(RuntimeError):
    """Slack refused a token at start (auth.test, apps.connections.open)."""


def _method(request: Any) -> str:
    return str(getattr(request, "url", "")).rstrip("/").rsplit("/", 1)[-1] or "a Web API call"


class _LoggedRateLimitRetry(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (waits Retry-After), saying so: an operator sees why DMs are late."""

    def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> None:
        if response is not None:
            wait = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["?"])
            log.warning("Slack rate-limited %s (429): retrying after %s s (Retry-After), attempt %d of %d",
                        _method(request), wait[0] if isinstance(wait, list) else wait, state.current_attempt + 1,
                        self.max_retry_count)
        super().prepare_for_next_attempt(state=state, request=request, response=response, error=error)


class _ServiceUnavailableRetry(RetryHandler):
    """A 503 (Slack did not serve the request) retried after a short backoff, and logged. A 500 is not
    retried: Slack may have done the work, and a second chat.postMessage would be a second DM."""

    def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        return response is not None and response.status_code == 503

    def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> None:
        log.warning("Slack answered %s with 503 (service unavailable): retrying, attempt %d of %d",
                    _method(request), state.current_attempt + 1, self.max_retry_count)
        super().prepare_for_next_attempt(state=state, request=request, response=response, error=error)


def serve_lock(paths: Paths) -> StepLock:
    """The step lock that makes one app serve this DuckDB file (freed when the app stops or dies, a
    kill -9 included); :class:`AlreadyServing`, naming the holder, when another process holds it."""
    lock = StepLock(paths, "slack-serve", wait_seconds=0)
    try:
        return lock.acquire()
    except StepBusy as err:
        raise AlreadyServing(
            f"another `beep slack serve` serves {paths.duckdb} ({err.holder}): two would each decide and send every "
            "alert. Stop it first, or serve another DuckDB file (--db)"
        ) from None


def tokens() -> tuple[str, str]:
    """(bot token, app token) from the environment, with what to do when one is missing or wrong."""
    bot = os.environ.get("SLACK_BOT_TOKEN", "").strip()
    app = os.environ.get("SLACK_APP_TOKEN", "").strip()
    missing = [name for name, value in (("SLACK_BOT_TOKEN", bot), ("SLACK_APP_TOKEN", app)) if not value]
    if missing:
        raise MissingToken(
            f"{' and '.join(missing)} not set: copy the Bot User OAuth Token (xoxb-…, OAuth & Permissions) into "
            "SLACK_BOT_TOKEN and an app-level token with the connections:write scope (xapp-…, Basic Information) "
            "into SLACK_APP_TOKEN (docs/slack-app.md)"
        )
    if not bot.startswith("xoxb-"):
        raise MissingToken("SLACK_BOT_TOKEN does not start with xoxb-: it must be the app's Bot User OAuth Token")
    if not app.startswith("xapp-"):
        raise MissingToken("SLACK_APP_TOKEN does not start with xapp-: it must be an app-level token (connections:write)")
    return bot, app


def web_client(token: str, *, base_url: str | None = None, max_rate_limit_retries: int = 5) -> WebClient:
    """A Web API client that honours 429s (Retry-After), retries a 503 and dropped connections, and logs
    the retries it makes."""
    return WebClient(
        token=token,
        base_url=base_url or os.environ.get("BEEP_SLACK_API_URL") or DEFAULT_API_URL,
        timeout=30,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2),
                        _LoggedRateLimitRetry(max_retry_count=max_rate_limit_retries),
                        _ServiceUnavailableRetry(max_retry_count=2)],
    )


@dataclass
class Running:
    """A started app: stop() closes the socket, lets the worker finish, flushes DuckDB."""

    service: AlertService
    handler: SocketIntake  # ``handler.client`` is the SDK's Socket Mode client
    inbox: Inbox
    _stop: threading.Event
    _flusher: threading.Thread
    _lock: StepLock | None = None
    _final: dict | None = None

    def stop(self) -> None:
        try:
            self.handler.close()
        finally:
            self._stop.set()
            self._flusher.join(timeout=5)
            self.service.close()  # the DMs being sent finish
            try:
                self.handler.flush()
            finally:
                self._final = self.stats()
                self.inbox.close()
                if self._lock is not None:
                    self._lock.release()
                    self._lock = None

    def stats(self) -> dict:
        """Counts since the inbox was created: ``handled`` / ``skipped`` / ``malformed`` / ``error``,
        each by reason; ``backlog``: events stored and acked, not handled yet; ``reconnects``: sockets
        the watchdog replaced in this run."""
        if self._final is not None:  # stopped: the inbox is closed
            return self._final
        counts = self.inbox.counts()
        return {"handled": counts.get("handled", {}), "skipped": counts.get("skipped", {}),
                "malformed": counts.get("malformed", {}), "error": counts.get("error", {}),
                "backlog": self.inbox.backlog(), "reconnects": self.handler.reconnects,
                "unwritten": self.service.unwritten}


def start(paths: Paths, *, model: str | None, policy: AlertPolicy, bot_token: str, app_token: str,
          base_url: str | None = None, ping_interval: float = 1.0, dead_after: float = 4.0,
          flush_seconds: float = 0.5, clock: Callable[[], float] = time.time,
          live_model: LiveModel | None = None) -> Running:
    """Load the model, rebuild the live state from DuckDB (and reconcile DMs a crash left unknown),
    connect to Socket Mode; return at once. Events an earlier run acked but did not handle are
    handled first."""
    if not Path(paths.duckdb).exists():  # before the lock: no work folder made for a database that is not there
        raise FileNotFoundError(f"{paths.duckdb} does not exist yet: build the dataset first with `beep build` "
                                "(or `beep run`), then train a model")
    lock = serve_lock(paths)
    try:
        client = web_client(bot_token, base_url=base_url)
        try:
            auth = client.auth_test()
        except SlackApiError as err:
            raise SlackRefused(f"Slack refused SLACK_BOT_TOKEN ({err.response.get('error') or err}): copy the app's "
                               "Bot User OAuth Token (xoxb-…) again, and run `beep slack check`") from None
        live = live_model or LiveModel(paths, model)
        inbox = Inbox(inbox_path(paths.duckdb, paths.workdir))
    except BaseException:
        lock.release()
        raise
    try:
        inbox.prune()
        service = AlertService(live, SlackStore(paths.duckdb), client, policy, clock=clock)
        service.on_dm_outcome = inbox.record_dm
        service.bot_user_id = auth.get("user_id") or None
        service.start(known_outcomes=inbox.dm_outcomes)
        intake = SocketIntake(service, inbox, app_token=app_token, web_client=client, ping_interval=ping_interval,
                              dead_after=dead_after)
        try:
            intake.start()
        except SlackApiError as err:
            try:
                intake.close()
            finally:
                service.close()
            raise SlackRefused(f"Slack refused SLACK_APP_TOKEN ({err.response.get('error') or err}) at "
                               "apps.connections.open: it must be an app-level token (xapp-…) with the "
                               "connections:write scope; run `beep slack check`") from None
    except BaseException:
        inbox.close()
        lock.release()
        raise
    stop = threading.Event()

    def flush_loop() -> None:
        while not stop.wait(flush_seconds):
            try:
                intake.flush()
            except Exception as err:  # the next flush retries; the bot keeps running
                log.warning("writing to %s failed, will retry: %s", paths.duckdb, err)

    flusher = threading.Thread(target=flush_loop, name="beep-slack-flush", daemon=True)
    flusher.start()
    log.info("connected to Socket Mode as %s (model %s%s)", auth.get("user_id"), live.name,
             ", dry run: nothing is sent" if policy.dry_run else "")
    return Running(service, intake, inbox, stop, flusher, lock)
