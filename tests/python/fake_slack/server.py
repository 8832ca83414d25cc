"""A fake Slack on 127.0.0.1: the Web API methods Beep uses (HTTP) and Socket Mode (WebSocket).

- Web API: ``POST /api/<method>``, form or JSON bodies, ``Authorization: Bearer <token>``; each call is
  recorded in :attr:`FakeSlack.calls`. ``auth.test`` answers with the ``x-oauth-scopes`` header.
  Faults: :meth:`FakeSlack.rate_limit` makes the next N calls of a method answer 429 with a
  ``Retry-After``.
- Socket Mode: ``apps.connections.open`` (app token only) returns ``ws://127.0.0.1:<port>/link/<n>``.
  On connect the fake sends ``hello``; :meth:`push` sends an envelope to the live socket and
  :meth:`wait_ack` waits for the app's ack of it. Like Slack, an envelope not acked when its socket
  drops is sent again (``retry_attempt`` + 1) on the next connection. :meth:`drop` cuts every socket
  without a close frame (what a network failure looks like).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import websockets
from websockets.asyncio.server import ServerConnection, serve

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
TEAM = "T0FAKE"
BOT_USER = "UBEEPBOT"
ALL_SCOPES = "channels:history,groups:history,channels:read,chat:write,im:write,users:read,commands"


@dataclass
class Envelope:
    envelope_id: str
    type: str
    payload: dict
    retry_attempt: int = 0
    acked: dict | None = None  # the ack's body once received


@dataclass
class Call:
    method: str
    args: dict
    token: str | None
    at: float
    status: int = 200


@dataclass
class FakeSlack:
    """State and faults of the fake; start with :func:`start_fake_slack`."""

    users: dict[str, dict] = field(default_factory=dict)
    channels: dict[str, dict] = field(default_factory=dict)
    scopes: str = ALL_SCOPES
    history: dict[str, list[dict]] = field(default_factory=dict)  # channel -> messages, newest last
    calls: list[Call] = field(default_factory=list)
    posted: list[dict] = field(default_factory=list)  # chat.postMessage bodies that succeeded
    updated: list[dict] = field(default_factory=list)
    http_port: int = 0
    ws_port: int = 0
    connections_opened: int = 0
    _rate_limits: dict[str, tuple[int, int]] = field(default_factory=dict)  # method -> (times left, retry-after s)
    _failures: dict[str, tuple[int, int]] = field(default_factory=dict)  # method -> (times left, HTTP status)
    _envelopes: dict[str, Envelope] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _sockets: set = field(default_factory=set)
    _silent: set = field(default_factory=set)  # blackholed sockets: open, but nothing goes in or out
    _loop: asyncio.AbstractEventLoop | None = None
    _server: Any = None
    _main: Any = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    # -- helpers for tests -----------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/api/"

    def add_user(self, user_id: str, name: str, *, tz: str = "UTC", is_bot: bool = False, deleted: bool = False) -> None:
        self.users[user_id] = {"id": user_id, "name": name.lower(), "real_name": name, "deleted": deleted,
                               "is_bot": is_bot, "tz": tz, "profile": {"display_name": name}}

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        with self._cond:
            self._rate_limits[method] = (times, retry_after)

    def fail(self, method: str, times: int = 1, status: int = 503) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP ``status`` (a 5xx) without doing them."""
        with self._cond:
            self._failures[method] = (times, status)

    def calls_of(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake Slack: timed out after {timeout} s waiting for {what}")
                self._cond.wait(min(left, 0.01))

    def wait_connected(self, n: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``n`` Socket Mode connections were opened in all and one is live."""
        self.wait_for(lambda: self.connections_opened >= n and bool(self._sockets), timeout, f"socket connection #{n}")

    def push(self, type_: str, payload: dict) -> str:
        """Send an envelope to the live socket; returns its envelope id."""
        envelope = Envelope(f"env-{next(self._ids)}", type_, payload)
        with self._cond:
            self._envelopes[envelope.envelope_id] = envelope
        self._send_soon(envelope)
        return envelope.envelope_id

    def push_event(self, event: dict) -> str:
        return self.push("events_api", {"token": "x", "team_id": TEAM, "api_app_id": "A0FAKE", "type": "event_callback",
                                        "event_id": f"Ev{next(self._ids)}", "event_time": int(time.time()),
                                        "event": {"type": "message", **event}})

    def push_again(self, envelope_id: str) -> None:
        """Deliver the same envelope once more (Slack's delivery is at least once)."""
        with self._cond:
            envelope = self._envelopes[envelope_id]
            envelope.retry_attempt += 1
            envelope.acked = None
        self._send_soon(envelope)

    def push_envelope(self, body: dict) -> str | None:
        """Send any JSON object as is (malformed envelopes too); returns its envelope id when it has one,
        whose ack :meth:`wait_ack` can wait for."""
        envelope_id = body.get("envelope_id")
        loop = self._loop
        assert loop is not None
        if isinstance(envelope_id, str):
            with self._cond:
                self._envelopes[envelope_id] = Envelope(envelope_id, str(body.get("type")), body.get("payload"))  # type: ignore[arg-type]

        async def send() -> None:
            for ws in list(self._sockets):
                try:
                    await ws.send(json.dumps(body))
                    return
                except websockets.ConnectionClosed:
                    continue

        asyncio.run_coroutine_threadsafe(send(), loop).result(5)
        return envelope_id if isinstance(envelope_id, str) else None

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict:
        self.wait_for(lambda: self._envelopes[envelope_id].acked is not None, timeout, f"the ack of {envelope_id}")
        acked = self._envelopes[envelope_id].acked
        assert acked is not None
        return acked

    def drop(self) -> None:
        """Cut every live socket without a close handshake."""
        loop = self._loop
        assert loop is not None

        async def cut() -> None:
            for ws in list(self._sockets):
                ws.transport.abort()

        asyncio.run_coroutine_threadsafe(cut(), loop).result(5)

    def blackhole(self) -> None:
        """Make every live socket silent without closing it: no close frame, no reset, no pongs to the
        client's pings, nothing read from it or sent to it any more (envelopes not acked are delivered
        again on the client's next connection)."""
        loop = self._loop
        assert loop is not None

        async def silence() -> None:
            with self._cond:
                for ws in list(self._sockets):
                    ws.transport.pause_reading()  # its pings stay unread: no pong ever
                    self._sockets.discard(ws)
                    self._silent.add(ws)
                self._cond.notify_all()

        asyncio.run_coroutine_threadsafe(silence(), loop).result(5)

    @property
    def live_sockets(self) -> int:
        with self._cond:
            return len(self._sockets)

    # -- internals -------------------------------------------------------------------------------
    def _send_soon(self, envelope: Envelope) -> None:
        loop = self._loop
        assert loop is not None

        async def send() -> None:
            body = json.dumps({"envelope_id": envelope.envelope_id, "type": envelope.type, "payload": envelope.payload,
                               "accepts_response_payload": envelope.type != "events_api",
                               "retry_attempt": envelope.retry_attempt,
                               "retry_reason": "timeout" if envelope.retry_attempt else ""})
            for ws in list(self._sockets):
                try:
                    await ws.send(body)
                    return
                except websockets.ConnectionClosed:
                    continue

        asyncio.run_coroutine_threadsafe(send(), loop)

    async def _ws_handler(self, ws: ServerConnection) -> None:
        with self._cond:
            self._sockets.add(ws)
            self._cond.notify_all()
            pending = [e for e in self._envelopes.values() if e.acked is None]
        await ws.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0FAKE"},
                                  "debug_info": {"host": "fake", "approximate_connection_time": 3600}}))
        for envelope in pending:  # what the previous socket did not ack, delivered again
            envelope.retry_attempt += 1
            self._send_soon(envelope)
        try:
            async for raw in ws:
                try:
                    body = json.loads(raw)
                except ValueError:
                    continue
                envelope_id = body.get("envelope_id")
                with self._cond:
                    if envelope_id in self._envelopes:
                        self._envelopes[envelope_id].acked = body
                    self._cond.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._sockets.discard(ws)
                self._cond.notify_all()

    def handle_api(self, method: str, args: dict, token: str | None) -> tuple[int, dict, dict]:
        """(HTTP status, headers, JSON body) of one Web API call."""
        with self._cond:
            call = Call(method, args, token, time.time())
            self.calls.append(call)
            times, retry_after = self._rate_limits.get(method, (0, 0))
            if times > 0:
                self._rate_limits[method] = (times - 1, retry_after)
                call.status = 429
                self._cond.notify_all()
                return 429, {"Retry-After": str(retry_after)}, {"ok": False, "error": "ratelimited"}
            failures, status = self._failures.get(method, (0, 0))
            if failures > 0:
                self._failures[method] = (failures - 1, status)
                call.status = status
                self._cond.notify_all()
                return status, {}, {"ok": False, "error": "service_unavailable" if status == 503 else "internal_error"}
            self._cond.notify_all()
        if method == "apps.connections.open":
            if token != APP_TOKEN:
                return 200, {}, {"ok": False, "error": "invalid_auth" if token is None or token.startswith("xapp-") else "not_allowed_token_type"}
            with self._cond:
                self.connections_opened += 1
                n = self.connections_opened
            return 200, {}, {"ok": True, "url": f"ws://127.0.0.1:{self.ws_port}/link/{n}"}
        if token != BOT_TOKEN:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        headers = {"x-oauth-scopes": self.scopes}
        if method == "auth.test":
            return 200, headers, {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "beep",
                                  "team_id": TEAM, "user_id": BOT_USER, "bot_id": "BBEEP"}
        if method == "users.list":
            members = list(self.users.values())
            start = int(args.get("cursor") or 0)
            limit = int(args.get("limit") or 100)
            page = members[start:start + limit]
            cursor = str(start + limit) if start + limit < len(members) else ""
            return 200, headers, {"ok": True, "members": page, "response_metadata": {"next_cursor": cursor}}
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            return 200, headers, ({"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"})
        if method == "conversations.info":
            channel = self.channels.get(str(args.get("channel")))
            return 200, headers, ({"ok": True, "channel": channel} if channel else {"ok": False, "error": "channel_not_found"})
        if method == "conversations.open":
            dm = "D" + str(args.get("users"))
            channel: dict = {"id": dm}
            if str(args.get("return_im")).lower() in ("1", "true"):
                with self._cond:
                    mine = self._dm_history(dm)
                channel.update({"is_im": True, "user": args.get("users"), "latest": mine[-1] if mine else None})
            return 200, headers, {"ok": True, "channel": channel}
        if method == "chat.getPermalink":
            ts = str(args.get("message_ts"))
            return 200, headers, {"ok": True, "channel": args.get("channel"),
                                  "permalink": f"https://fake.slack.com/archives/{args.get('channel')}/p{ts.replace('.', '')}"}
        if method == "chat.postMessage":
            with self._cond:
                ts = f"{time.time():.6f}"
                self.posted.append({**args, "ts": ts})
                self._cond.notify_all()
            return 200, headers, {"ok": True, "channel": args.get("channel"), "ts": ts}
        if method == "chat.update":
            with self._cond:
                self.updated.append(args)
                self._cond.notify_all()
            return 200, headers, {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "conversations.history" and str(args.get("channel", "")).startswith("D"):
            if "im:history" not in self.scopes.split(","):
                return 200, headers, {"ok": False, "error": "missing_scope", "needed": "im:history",
                                      "provided": self.scopes}
            with self._cond:
                mine = self._dm_history(str(args.get("channel")))
            oldest = float(args.get("oldest") or 0)
            mine = [m for m in mine if float(m["ts"]) >= oldest][::-1]  # newest first
            return 200, headers, {"ok": True, "messages": mine, "has_more": False,
                                  "response_metadata": {"next_cursor": ""}}
        if method in ("conversations.history", "conversations.replies"):
            return 200, headers, self._history(method, args)
        if method == "conversations.list":
            return 200, headers, {"ok": True, "channels": list(self.channels.values()), "response_metadata": {"next_cursor": ""}}
        return 200, headers, {"ok": False, "error": "unknown_method"}

    def _dm_history(self, channel: str) -> list[dict]:
        """What the bot posted in a DM channel, oldest first, as conversations.history lists messages."""
        out = []
        for p in self.posted:
            if p.get("channel") == channel:
                user = p.get("user") or BOT_USER  # a test may put the person's own message in their DM
                out.append({"type": "message", "user": user, "text": p.get("text"), "ts": p["ts"],
                            **({"bot_id": "BBEEP", "blocks": p.get("blocks")} if user == BOT_USER else {})})
        return out

    def _history(self, method: str, args: dict) -> dict:
        messages = self.history.get(str(args.get("channel")), [])
        if method == "conversations.replies":
            thread = str(args.get("ts"))
            messages = [m for m in messages if m.get("thread_ts") == thread or m.get("ts") == thread]
        else:
            messages = [m for m in messages if m.get("thread_ts") in (None, m.get("ts"))][::-1]  # newest first
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = messages[start:start + limit]
        more = start + limit < len(messages)
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        method = self.path.rstrip("/").rsplit("/", 1)[-1]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if "json" in (self.headers.get("Content-Type") or ""):
            args = json.loads(raw or "{}")
        else:
            args = {k: v[0] for k, v in parse_qs(raw).items()}
        for key in ("blocks", "attachments"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        auth = self.headers.get("Authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else args.get("token")
        status, headers, body = self.fake.handle_api(method, args, token)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST


@dataclass
class Running:
    fake: FakeSlack
    http: ThreadingHTTPServer
    loop: asyncio.AbstractEventLoop
    threads: list[threading.Thread]

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        async def close() -> None:
            for ws in list(self.fake._silent):
                ws.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.sleep(0.05)  # one turn for the cancelled tasks to finish
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self.loop)
        for t in self.threads:
            t.join(timeout=5)


def start_fake_slack(fake: FakeSlack | None = None) -> Running:
    """Start the HTTP and WebSocket servers on free 127.0.0.1 ports (daemon threads)."""
    fake = fake or FakeSlack()
    handler = type("Handler", (_Handler,), {"fake": fake})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    http.daemon_threads = True
    fake.http_port = http.server_address[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run_ws() -> None:
        asyncio.set_event_loop(loop)

        async def main() -> None:
            server = await serve(fake._ws_handler, "127.0.0.1", 0, ping_interval=None)
            fake._server = server  # strong references: asyncio keeps only weak ones to tasks
            fake.ws_port = server.sockets[0].getsockname()[1]
            ready.set()
            await server.serve_forever()

        fake._main = loop.create_task(main())
        loop.run_forever()

    fake._loop = loop
    threads = [threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fake-slack-http"),
               threading.Thread(target=run_ws, daemon=True, name="fake-slack-ws")]
    for t in threads:
        t.start()
    if not ready.wait(10):
        raise RuntimeError("the fake Socket Mode server did not start")
    return Running(fake, http, loop, threads)
