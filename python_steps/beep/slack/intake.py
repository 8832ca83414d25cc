"""Socket Mode intake: journal, then ack; a worker drains the journal; a watchdog replaces dead sockets.

Slack delivers events over a WebSocket and redelivers an envelope that is not acked within 3 s. The
app must never ack what it could still lose, and must never let slow work delay an ack:

- **intake** (the socket's receive thread): each envelope is written to the durable
  :class:`~beep.slack.inbox.Inbox` (fsync'd) and only then acked. A slash command is answered in the
  ack (its reply is computed from memory, the opt-out itself is applied by the worker). An envelope
  without a payload, of an unknown type or with no event is acked too, stored as skipped and counted
  (``malformed``); Slack would otherwise redeliver it forever.
- **worker** (one thread, arrival order, as the conversations need): takes the inbox's new entries,
  checks each message event's fields (text, ts, user, channel, thread_ts of the right types; a bad one
  is skipped and counted, never a traceback) and hands it to the :class:`AlertService`. The DMs go out
  from the service's own sender threads, so a 429 on ``chat.postMessage`` holds neither the worker nor
  intake. An entry is marked done by the flush that writes what it led to into DuckDB.
- **watchdog**: the SDK's client pings every ``ping_interval`` s but only gives up on a socket after
  four silent intervals and then waits out its 3 s receive timeout (48 s in all with its usual 10 s).
  A socket with no pong and no frame for ``dead_after`` s (4 s) is shut down here and replaced at once
  (a new ``apps.connections.open`` URL); Slack then redelivers what was not acked.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse

from beep.slack.inbox import Entry, Inbox

log = logging.getLogger("beep.slack")

#: The envelope types Beep handles; any other is acked and counted (``unknown_type``).
KNOWN_TYPES = ("events_api", "interactive", "slash_commands")
_TS = re.compile(r"\d{1,12}(\.\d{1,9})?")


def malformed_reason(event: Any) -> str | None:
    """Why a message event cannot be read (a field of the wrong type or shape), or None."""
    if not isinstance(event, dict):
        return "bad_event"
    ts = event.get("ts")
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        return "bad_ts"
    if "channel" not in event or not isinstance(event.get("channel"), str) or not event["channel"]:
        return "bad_channel"
    for key in ("text", "subtype", "bot_id", "user"):
        if event.get(key) is not None and not isinstance(event[key], str):
            return f"bad_{key}"
    thread_ts = event.get("thread_ts")
    if thread_ts is not None and (not isinstance(thread_ts, str) or not _TS.fullmatch(thread_ts)):
        return "bad_thread_ts"
    return None


class BeepSocketModeClient(SocketModeClient):
    """slack_sdk's built-in client, with every text frame handed straight to ``on_frame`` in the
    receive thread (not through the SDK's in-memory queue and thread pool)."""

    def __init__(self, *args: Any, on_frame: Callable[[str], None], **kwargs: Any) -> None:
        self._on_frame = on_frame
        super().__init__(*args, **kwargs)

    def enqueue_message(self, message: str) -> None:  # called by the receive thread for each text frame
        self._on_frame(message)


class SocketIntake:
    """The Socket Mode side of the app (see the module docstring). ``client`` is the SDK's client."""

    def __init__(self, service: Any, inbox: Inbox, *, app_token: str, web_client: WebClient,
                 ping_interval: float = 1.0, dead_after: float = 4.0) -> None:
        self.service = service
        self.inbox = inbox
        self.dead_after = dead_after
        self.reconnects = 0  # sockets replaced by the watchdog
        self.client = BeepSocketModeClient(app_token=app_token, web_client=web_client, ping_interval=ping_interval,
                                           concurrency=1, logger=logging.getLogger("beep.slack.socket"),
                                           on_frame=self.receive)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_frame = 0.0
        self._handled_lock = threading.Lock()
        self._handled: list[tuple[int, str, str, str | None]] = []  # handled entries awaiting the DuckDB flush
        self._worker = threading.Thread(target=self._work, name="beep-slack-worker", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="beep-slack-watchdog", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Drain what an earlier run left in the inbox, and connect."""
        backlog = self.inbox.backlog()
        if backlog:
            log.info("%d event(s) acked before the last stop but not handled: handling them first", backlog)
        self._worker.start()
        self.client.connect()
        self._watchdog.start()

    def close(self) -> None:
        """Close the socket (nothing more is acked), then let the worker finish its current entry."""
        self._stop.set()
        client = self.client
        client.auto_reconnect_enabled = False
        session = client.current_session
        if session is not None:
            client.current_session_state.terminated = True
            self._shutdown(session)
        client.close()
        self._wake.set()
        for thread in (self._watchdog, self._worker):
            if thread.is_alive():
                thread.join(timeout=30)

    # -- intake: journal, then ack -----------------------------------------------------------------
    def receive(self, raw: str) -> None:
        self._last_frame = time.time()
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._count_malformed("not_json", raw)
            return
        kind = message.get("type")
        if kind == "hello":
            return
        if kind == "disconnect":  # Slack rotates its sockets: open the next one now
            reason = str(message.get("reason") or "")
            log.info("Slack asked for a new socket (%s)", reason or "no reason given")
            if reason != "link_disabled":
                threading.Thread(target=self._reconnect, name="beep-slack-reconnect", daemon=True).start()
            return
        envelope_id = message.get("envelope_id")
        if not isinstance(envelope_id, str) or not envelope_id:
            self._count_malformed("no_envelope_id", raw)  # nothing to ack it with
            return
        payload = message.get("payload")
        skipped: str | None = None
        if kind not in KNOWN_TYPES:
            skipped = "unknown_type"
        elif not isinstance(payload, dict):
            skipped = "no_payload"
        elif kind == "events_api" and not isinstance(payload.get("event"), dict):
            skipped = "no_event"
        reply: dict | None = None
        if skipped is None and kind == "slash_commands":
            try:
                reply = {"text": self.service.command_reply(payload)}
            except Exception as err:  # the command is still stored and acked
                log.warning("could not answer a /beep command: %s", err)
        try:
            new = self.inbox.append(envelope_id, str(kind), raw, skipped=skipped)
        except Exception as err:  # not stored: not acked, Slack delivers it again
            log.error("could not store envelope %s, not acking it (Slack will redeliver): %s", envelope_id, err)
            return
        if skipped:
            log.warning("skipped a malformed envelope %s (%s), acked and counted", envelope_id, skipped)
        self._ack(envelope_id, reply)
        if new and not skipped:
            self._wake.set()

    def _ack(self, envelope_id: str, payload: dict | None) -> None:
        try:
            self.client.send_socket_mode_response(SocketModeResponse(envelope_id=envelope_id, payload=payload))
        except Exception as err:  # stored: Slack redelivers it and the inbox knows it
            log.warning("could not ack %s (stored; Slack will redeliver it): %s", envelope_id, err)

    def _count_malformed(self, reason: str, raw: str) -> None:
        log.warning("skipped a malformed Socket Mode frame (%s, %d bytes): no envelope id to ack", reason, len(raw))
        try:
            self.inbox.count("malformed", reason)
        except Exception as err:
            log.warning("could not count it: %s", err)

    # -- the worker --------------------------------------------------------------------------------
    def _work(self) -> None:
        after = 0
        while not self._stop.is_set():
            try:
                batch = self.inbox.pending(200, after)
            except Exception as err:
                log.warning("reading the inbox failed, will retry: %s", err)
                self._stop.wait(1.0)
                continue
            if not batch:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            for entry in batch:
                if self._stop.is_set():
                    break
                result = self.dispatch(entry)
                with self._handled_lock:
                    self._handled.append((entry.seq, *result))
                after = entry.seq

    def dispatch(self, entry: Entry) -> tuple[str, str, str | None]:
        """Handle one entry: (state, outcome for the counts, reason). Never raises."""
        try:
            payload = json.loads(entry.body)["payload"]
            if entry.type == "events_api":
                event = payload["event"]
                if event.get("type") != "message":
                    return "skipped", "skipped", f"event_{event.get('type')}"
                why = malformed_reason(event)
                if why is not None:
                    log.warning("skipped a malformed message event (%s) in envelope %s, counted", why, entry.envelope_id)
                    return "skipped", "malformed", why
                handled = self.service.handle_message(event)
                return ("done", "skipped", handled.skipped) if handled.skipped else ("done", "handled", "message")
            if entry.type == "interactive":
                stored = self.service.handle_feedback(payload)
                return ("done", "handled", "feedback") if stored else ("done", "skipped", "not_feedback")
            if entry.type == "slash_commands":
                self.service.apply_command(payload)
                return "done", "handled", "command"
            return "skipped", "malformed", "unknown_type"
        except Exception as err:
            log.error("envelope %s (%s) could not be handled: %s: %s", entry.envelope_id, entry.type,
                      type(err).__name__, err)
            log.debug("the error in full", exc_info=True)
            return "error", "error", type(err).__name__

    def flush(self) -> None:
        """Write what the service buffered to DuckDB, then mark the entries it came from as done."""
        with self._handled_lock:
            handled, self._handled = self._handled, []
        try:
            self.service.store.flush()
            self.inbox.finish(handled)
        except Exception:
            with self._handled_lock:
                self._handled[:0] = handled
            raise

    # -- the watchdog ------------------------------------------------------------------------------
    def _watch(self) -> None:
        watched: Any = None
        since = 0.0
        next_try = 0.0
        backoff = 0.0
        while not self._stop.wait(0.25):
            client = self.client
            if client.closed or not client.auto_reconnect_enabled:
                continue
            session = client.current_session
            if session is None or not session.is_active():
                continue  # closed sockets: the SDK's monitor opens a new one
            if session is not watched:
                watched, since = session, time.time()
            last = max(session.last_ping_pong_time or 0.0, since, self._last_frame)
            silent = time.time() - last
            if silent <= self.dead_after or time.monotonic() < next_try:
                continue
            log.warning("no pong and no event for %.1f s on the Socket Mode connection: replacing it", silent)
            try:
                self._reconnect(session)
                backoff = 0.0
            except Exception as err:
                backoff = min(30.0, max(1.0, backoff * 2))
                next_try = time.monotonic() + backoff
                log.warning("could not open a new Socket Mode connection (retry in %.0f s): %s", backoff, err)

    def _reconnect(self, dead: Any = None) -> None:
        """Replace the current socket (``dead``: only if it is still the current one)."""
        client = self.client
        if not client.connect_operation_lock.acquire(timeout=5):
            return
        try:
            session = client.current_session
            if self._stop.is_set() or (dead is not None and session is not dead):
                return
            if session is not None:
                client.current_session_state.terminated = True  # its receive loop ends after this recv
                self._shutdown(session)
            client.wss_uri = client.issue_new_wss_url()
            client.connect()
            self.reconnects += 1
        finally:
            client.connect_operation_lock.release()

    @staticmethod
    def _shutdown(session: Any) -> None:
        """Wake the receive thread blocked on the socket (no waiting out the SDK's receive timeout)."""
        sock = getattr(session, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
