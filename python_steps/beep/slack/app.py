"""`beep slack serve`: the Bolt app in Socket Mode (no public URL).

Tokens come from ``SLACK_BOT_TOKEN`` (xoxb-, the Web API) and ``SLACK_APP_TOKEN`` (xapp-, with the
``connections:write`` scope, for ``apps.connections.open``) only; they are never written or logged.
``BEEP_SLACK_API_URL`` points the Web API client elsewhere (the tests' fake on 127.0.0.1); Slack's
``https://slack.com/api/`` by default. Every Web API call retries a 429 after the ``Retry-After``
Slack sends (slack_sdk's ``RateLimitErrorRetryHandler``) and a dropped connection
(``ConnectionErrorRetryHandler``); the Socket Mode client reconnects by itself when its socket drops.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from beep.config import Paths
from beep.slack.alerts import AlertPolicy
from beep.slack.dm import NOT_FOR_ME, USEFUL
from beep.slack.scoring import LiveModel
from beep.slack.service import AlertService
from beep.slack.store import SlackStore

log = logging.getLogger("beep.slack")
DEFAULT_API_URL = "https://slack.com/api/"


class MissingToken(RuntimeError):
    """A token the app needs is not in the environment."""


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
    """A Web API client that honours 429s (Retry-After) and retries dropped connections."""
    return WebClient(
        token=token,
        base_url=base_url or os.environ.get("BEEP_SLACK_API_URL") or DEFAULT_API_URL,
        timeout=30,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2),
                        RateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries)],
    )


def build_app(service: AlertService, client: WebClient) -> App:
    """The Bolt app: message events, the two alert buttons, the ``/beep`` command."""
    # one listener thread: messages are handled in the order they arrive (conversations and the model's
    # state are built in time order, like the dataset)
    app = App(client=client, process_before_response=False, raise_error_for_unhandled_request=False,
              listener_executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="beep-slack"))
    service.bot_user_id = getattr(app, "_bot_user_id", None) or None

    @app.event("message")
    def on_message(event: dict) -> None:  # acked by Bolt before this runs
        service.handle_message(event)

    @app.action(USEFUL)
    @app.action(NOT_FOR_ME)
    def on_button(ack: Callable[..., None], body: dict) -> None:
        ack()
        service.handle_feedback(body)

    @app.command("/beep")
    def on_command(ack: Callable[..., None], command: dict) -> None:
        ack(text=service.handle_command(str(command.get("user_id")), str(command.get("text") or "")))

    return app


@dataclass
class Running:
    """A started app: stop() flushes DuckDB and closes the socket."""

    service: AlertService
    handler: SocketModeHandler
    _stop: threading.Event
    _flusher: threading.Thread

    def stop(self) -> None:
        self._stop.set()
        self._flusher.join(timeout=5)
        try:
            self.handler.close()
        finally:
            self.service.store.flush()


def start(paths: Paths, *, model: str | None, policy: AlertPolicy, bot_token: str, app_token: str,
          base_url: str | None = None, ping_interval: float = 10.0, flush_seconds: float = 0.5,
          clock: Callable[[], float] = time.time, live_model: LiveModel | None = None) -> Running:
    """Load the model, rebuild the live state from DuckDB, connect to Socket Mode; return at once."""
    client = web_client(bot_token, base_url=base_url)
    live = live_model or LiveModel(paths, model)
    service = AlertService(live, SlackStore(paths.duckdb), client, policy, clock=clock)
    service.start()
    app = build_app(service, client)
    auth = client.auth_test()
    service.bot_user_id = auth.get("user_id") or service.bot_user_id
    handler = SocketModeHandler(app, app_token=app_token, ping_interval=ping_interval, concurrency=1)
    handler.connect()
    stop = threading.Event()

    def flush_loop() -> None:
        while not stop.wait(flush_seconds):
            try:
                service.store.flush()
            except Exception as err:  # the next flush retries; the bot keeps running
                log.warning("writing to %s failed, will retry: %s", paths.duckdb, err)

    flusher = threading.Thread(target=flush_loop, name="beep-slack-flush", daemon=True)
    flusher.start()
    log.info("connected to Socket Mode as %s (model %s%s)", auth.get("user_id"), live.name,
             ", dry run: nothing is sent" if policy.dry_run else "")
    return Running(service, handler, stop, flusher)
