"""What the Slack app does with each event, independent of Bolt (the app in :mod:`beep.slack.app`
only routes Socket Mode envelopes here).

A message: checked as the dataset checks messages (bots, edits, joins and empty ones are left out),
cleaned, placed in its conversation, fed into the model's live state and stored; then the model is
asked whom to alert, the policy (:mod:`beep.slack.alerts`) decides, the decisions are written to
DuckDB, and the DMs are posted. A message seen before (Slack redelivers an envelope whose ack it
missed, e.g. across a dropped socket) is recognised by its channel and ts and does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from beep.slack.alerts import AlertPolicy, Decision, Ledger, decide
from beep.slack.conversations import ConversationTracker, LiveMessage, exclusion_reason, mentioned_ids
from beep.slack.dm import FEEDBACK, alert_message
from beep.slack.people import Directory
from beep.slack.scoring import LiveModel
from beep.slack.store import AlertContext, SlackStore

log = logging.getLogger("beep.slack")


@dataclass(frozen=True)
class Handled:
    """What one message event led to (for logs, tests and the benchmark)."""

    skipped: str | None  # why the event was not a usable new message, else None
    conversation_id: str | None = None
    decisions: tuple[Decision, ...] = ()


class AlertService:
    def __init__(self, model: LiveModel, store: SlackStore, client: WebClient, policy: AlertPolicy, *,
                 clock: Callable[[], float] = time.time, directory: Directory | None = None) -> None:
        self.model = model
        self.store = store
        self.client = client
        self.policy = policy
        self.clock = clock
        self.directory = directory or Directory(client, clock=clock)
        self.tracker = ConversationTracker(model.split_settings)
        self.ledger = Ledger()
        self._lock = threading.RLock()
        self._dm_channels: dict[str, str] = {}
        self.bot_user_id: str | None = None
        self.handled = 0  # message events handled so far (skipped ones too)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beep-slack-write")

    # -- start ---------------------------------------------------------------------------------
    def start(self, *, load_people: bool = True) -> int:
        """Rebuild the live state from DuckDB: the stored messages replayed into the conversations and
        the model's state, the alerts and opt-outs into the ledger. Returns the messages replayed."""
        stored = self.store.load_messages()
        for message, _cid in stored:
            self.tracker.add(message)
        self.model.observe(stored)
        self.ledger = self.store.load_ledger(self.clock())
        if load_people:
            self.directory.load_all()
            self.model.user_names.update(self.directory.names())
        log.info("replayed %d stored message(s); %d alert(s) on record, %d person(s) opted out",
                 len(stored), len(self.ledger.alerted), len(self.ledger.opted_out))
        return len(stored)

    # -- messages ------------------------------------------------------------------------------
    def handle_message(self, event: dict) -> Handled:
        try:
            return self._handle_message(event)
        finally:
            self.handled += 1

    def _handle_message(self, event: dict) -> Handled:
        channel = event.get("channel")
        why = exclusion_reason(event, self.directory.bot_ids())
        if why is None and event.get("user") == self.bot_user_id:
            why = "bot"
        if why is None and not channel:
            why = "no_channel"
        if why is not None:
            return Handled(skipped=why)
        ts = str(event["ts"])
        with self._lock:
            if self.tracker.conversation_of(channel, ts) is not None:
                return Handled(skipped="seen_before")
            raw = event.get("text") or ""
            clean = self.model.clean(raw)
            if not clean.strip():
                return Handled(skipped="empty_after_cleaning")
            author = str(event["user"])
            message = LiveMessage(channel_id=channel, ts=ts, thread_ts=event.get("thread_ts"), user_id=author,
                                  clean_text=clean, mentioned_user_ids=mentioned_ids(raw), at=float(ts))
            conv = self.tracker.add(message)
            self.model.observe([(message, conv.conversation_id)])
            self.store.add_message(message, conv.conversation_id)
            channel_name = self.directory.channel_name(channel)
            ranked = self.model.rank(conv, channel_name)
            now = self.clock()
            wanted = {u for u, p, _ in ranked.people if p >= self.policy.min_probability}
            people = {u: self.directory.person(u) for u in wanted}
            decisions = decide(ranked.people, conversation_id=conv.conversation_id, participants=conv.participants,
                               author=author, people=people, ledger=self.ledger, policy=self.policy, now=now)
            context = AlertContext(channel, ts, author, self.model.name)
            sending = [d for d in decisions if d.status == "sending"]
            quiet = [d for d in decisions if d.status != "sending"]
            if quiet:  # nothing is sent for these: written with the next write
                self.store.write_decisions(quiet, context, now, buffered=True)
        for d in decisions:
            log.info("alert %s: %s for %s in %s (p=%.2f%s)", d.alert_id, d.status, d.person_id, d.conversation_id,
                     d.probability, f", {d.suppressed_reason}" if d.suppressed_reason else "")
        if sending:
            # the decisions reach DuckDB before any DM is posted (a crash never leads to a second DM);
            # the write runs while the permalink and the DM channels are fetched
            written = self._writer.submit(self.store.write_decisions, sending, context, now)
            for d in sending:
                self._send(d, channel, ts, channel_name, written)
        return Handled(skipped=None, conversation_id=conv.conversation_id, decisions=tuple(decisions))

    def _send(self, d: Decision, channel: str, ts: str, channel_name: str | None, written: Future) -> None:
        permalink: str | None = None
        try:
            permalink = self.client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
            dm = self._dm_channels.get(d.person_id)
            if dm is None:
                dm = str(self.client.conversations_open(users=d.person_id)["channel"]["id"])
                self._dm_channels[d.person_id] = dm
            written.result()  # raises when the decision could not be written: then no DM
            text, blocks = alert_message(alert_id=d.alert_id, permalink=permalink, channel_name=channel_name,
                                         channel_id=channel, reason=d.reason, probability=d.probability,
                                         model=self.model.name)
            posted = self.client.chat_postMessage(channel=dm, text=text, blocks=blocks, unfurl_links=False)
        except SlackApiError as err:
            error = str(err.response.get("error") or err)
            log.warning("alert %s for %s failed: Slack said %s", d.alert_id, d.person_id, error)
            self.store.update_sent(d.alert_id, status="failed", at=self.clock(), error=error, permalink=permalink)
            return
        self.store.update_sent(d.alert_id, status="sent", at=self.clock(), permalink=permalink,
                               dm_channel=str(posted.get("channel") or dm), dm_ts=str(posted.get("ts")))

    # -- buttons and /beep -----------------------------------------------------------------------
    def handle_feedback(self, body: dict) -> str | None:
        """A button press on an alert DM; returns what was stored (useful / not_for_me), or None."""
        action = (body.get("actions") or [{}])[0]
        feedback = FEEDBACK.get(str(action.get("action_id")))
        user = (body.get("user") or {}).get("id")
        alert = action.get("value")
        if feedback is None or not user or not alert:
            return None
        action_ts = str(action.get("action_ts") or body.get("action_ts") or self.clock())
        if not self.store.add_feedback(str(alert), str(user), feedback, action_ts, self.clock()):
            log.warning("feedback on unknown alert %s by %s ignored", alert, user)
            return None
        message = body.get("message") or {}
        container = body.get("container") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        if channel and message.get("ts"):
            from beep.slack.dm import thanks_blocks

            try:
                self.client.chat_update(channel=channel, ts=message["ts"], text=message.get("text") or "",
                                        blocks=thanks_blocks(message.get("blocks") or [], feedback))
            except SlackApiError as err:
                log.warning("could not update the alert DM after feedback: %s", err.response.get("error"))
        return feedback

    def handle_command(self, user_id: str, text: str) -> str:
        """``/beep off``, ``/beep on``, ``/beep status``: the ephemeral answer."""
        word = (text or "").strip().lower()
        if word in ("off", "stop", "pause"):
            self.store.set_opt_out(user_id, True, self.clock())
            with self._lock:
                self.ledger.opted_out.add(user_id)
            return "Beep will not alert you any more. `/beep on` to get alerts again."
        if word in ("on", "start", "resume"):
            self.store.set_opt_out(user_id, False, self.clock())
            with self._lock:
                self.ledger.opted_out.discard(user_id)
            return "Beep will alert you again about conversations you may want to see. `/beep off` to stop."
        if word == "status":
            state = "off (you opted out)" if user_id in self.ledger.opted_out else "on"
            return f"Beep alerts are {state} for you; at most {self.policy.max_alerts_per_hour} an hour."
        return "`/beep off` stops alerts for you, `/beep on` starts them again, `/beep status` says which."
