"""What the Slack app does with each event, independent of Socket Mode (:mod:`beep.slack.intake`
stores each envelope, acks it, and its worker hands the events here in arrival order).

A message: checked and cleaned by the dataset's own rules (bots, edits, joins, channel events and
empty ones are left out; :meth:`beep.slack.scoring.LiveModel.check`), placed in its conversation,
fed into the model's live state and stored; then the model is
asked whom to alert, the policy (:mod:`beep.slack.alerts`) decides, the decisions are written to
DuckDB, and the DMs are posted from sender threads (a slow or rate-limited post holds no other
work). A message seen before (Slack redelivers an envelope whose ack it
missed, e.g. across a dropped socket) is recognised by its channel and ts and does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from beep.db import DatabaseBusy
from beep.slack.alerts import AlertPolicy, Decision, Ledger, decide, notified_by_slack
from beep.slack.conversations import ConversationTracker, place_event
from beep.slack.dm import FEEDBACK, alert_message
from beep.slack.inbox import DmOutcome
from beep.slack.people import Directory
from beep.slack.scoring import LiveModel
from beep.slack.store import AlertContext, SlackStore

log = logging.getLogger("beep.slack")
#: Threads posting DMs (a person always on the same one).
SENDER_THREADS = 4
#: An alert a crash left unposted is posted on the next start when decided at most this long ago (s).
RESEND_WITHIN = 15 * 60.0
#: Seconds of clock difference tolerated between this machine and Slack's message timestamps.
CLOCK_SKEW = 5.0
OFF_REPLY = "Beep will not alert you any more. `/beep on` to get alerts again."
ON_REPLY = "Beep will alert you again about conversations you may want to see. `/beep off` to stop."
HELP_REPLY = "`/beep off` stops alerts for you, `/beep on` starts them again, `/beep status` says which."


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
        self._closing = threading.Event()
        #: alerts decided but never sent because their decision could not be written to DuckDB before
        #: the app stopped (the file stayed locked by another process)
        self.unwritten = 0
        self._count_lock = threading.Lock()
        # the DMs go out from these, never from the thread that reads events: a 429 on one DM holds
        # neither the next message nor another person's alert. One thread per slot, a person always in
        # the same slot: a person's DMs go out one at a time, in the order they were decided.
        self._senders = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"beep-slack-dm{i}")
                         for i in range(SENDER_THREADS)]
        #: called with each DM's outcome as soon as Slack answers (the app journals it durably)
        self.on_dm_outcome: Callable[[DmOutcome], None] | None = None

    # -- start ---------------------------------------------------------------------------------
    def start(self, *, load_people: bool = True,
              known_outcomes: Callable[[list[str]], dict[str, DmOutcome]] | None = None) -> int:
        """Rebuild the live state from DuckDB: the stored messages replayed into the conversations and
        the model's state, the alerts and opt-outs into the ledger; alerts a crash left ``sending`` are
        reconciled first (:meth:`reconcile`). Returns the messages replayed."""
        resend = self.reconcile(known_outcomes)
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
        for row in resend:
            self._resend(row)
        return len(stored)

    def close(self) -> None:
        """Wait for the DMs being sent (their outcomes reach the store's buffer); a decision still
        waiting for a locked DuckDB file gives up (its DM is not sent: :attr:`unwritten`)."""
        self._closing.set()
        for sender in self._senders:
            sender.shutdown(wait=True)
        self._writer.shutdown(wait=True)

    # -- after a crash: alerts left ``sending`` ----------------------------------------------------
    def reconcile(self, known_outcomes: Callable[[list[str]], dict[str, DmOutcome]] | None = None) -> list[dict]:
        """Settle every alert row still ``sending`` (a crash came between the decision and the DM's
        outcome reaching DuckDB), so a delivered DM counts in production precision and none is sent
        twice: the outcome journaled when Slack answered, else Slack's word (the DM's history with the
        ``im:history`` scope, else the DM's latest message): ``sent``; proven never posted: posted now
        when decided less than :data:`RESEND_WITHIN` ago (returned, posted once the app runs), else
        ``failed`` (``not_delivered``); no proof either way: ``unknown`` (never posted again)."""
        rows = self.store.sending_alerts()
        if not rows:
            return []
        known = known_outcomes([r["alert_id"] for r in rows]) if known_outcomes else {}
        now = self.clock()
        resend: list[dict] = []
        tally: dict[str, int] = {}
        for row in rows:
            outcome = known.get(row["alert_id"])
            if outcome is not None:
                how = f"journal_{outcome.status}"
                self.store.update_sent(row["alert_id"], status=outcome.status, at=outcome.at, error=outcome.error,
                                       permalink=outcome.permalink, dm_channel=outcome.dm_channel, dm_ts=outcome.dm_ts)
            else:
                found, dm, dm_ts = self._dm_evidence(row)
                if found == "delivered":
                    how = "slack_sent"
                    self.store.update_sent(row["alert_id"], status="sent", at=float(dm_ts or now), dm_channel=dm,
                                           dm_ts=dm_ts)
                elif found == "missing" and now - float(row["decided"]) <= RESEND_WITHIN and not self.policy.dry_run:
                    how = "resent"
                    resend.append(row)
                elif found == "missing":
                    how = "not_delivered"
                    self.store.update_sent(row["alert_id"], status="failed", at=now, error="not_delivered")
                else:
                    how = "unknown"
                    self.store.update_sent(row["alert_id"], status="unknown", at=now,
                                           error="DM outcome unknown after a restart")
            tally[how] = tally.get(how, 0) + 1
        self.store.flush()
        log.info("reconciled %d alert(s) a crash left sending: %s", len(rows),
                 ", ".join(f"{n} {how}" for how, n in sorted(tally.items())))
        return resend

    def _dm_evidence(self, row: dict) -> tuple[str, str | None, str | None]:
        """("delivered", DM channel, ts) | ("missing", ..) | ("unknown", ..): is the alert's DM in Slack?"""
        alert, person, decided = row["alert_id"], row["person_id"], float(row["decided"])
        try:
            dm = self._dm_channel(person)
        except SlackApiError as err:
            log.warning("alert %s: cannot open the DM to check it: %s", alert, err.response.get("error"))
            return "unknown", None, None
        try:  # the DM's whole history since the decision (needs im:history)
            cursor = None
            for _ in range(10):
                page = self.client.conversations_history(channel=dm, oldest=f"{decided - 300:.6f}", limit=200,
                                                         cursor=cursor)
                for message in page.get("messages") or []:
                    if alert in _button_values(message):
                        return "delivered", dm, str(message.get("ts"))
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not page.get("has_more") or not cursor:
                    return "missing", dm, None
            return "unknown", dm, None
        except SlackApiError as err:
            if err.response.get("error") not in ("missing_scope", "not_allowed_token_type", "no_permission"):
                log.warning("alert %s: conversations.history failed: %s", alert, err.response.get("error"))
                return "unknown", dm, None
        try:  # without im:history: the DM's latest message (conversations.open, im:write)
            latest = (self.client.conversations_open(users=person, return_im=True).get("channel") or {}).get("latest")
        except SlackApiError as err:
            log.warning("alert %s: conversations.open failed: %s", alert, err.response.get("error"))
            return "unknown", dm, None
        if not latest:
            return "missing", dm, None  # an empty DM
        if alert in _button_values(latest):
            return "delivered", dm, str(latest.get("ts"))
        try:
            if float(latest.get("ts")) < decided - CLOCK_SKEW:
                return "missing", dm, None  # nothing in the DM since the decision: the alert is not there
        except (TypeError, ValueError):
            pass
        return "unknown", dm, None

    def _resend(self, row: dict) -> None:
        d = Decision(row["alert_id"], row["conversation_id"], row["person_id"], float(row["probability"]),
                     row["reason"], "sending")
        written: Future = Future()
        written.set_result(None)  # the decision is in DuckDB already
        log.info("alert %s for %s was never posted before the restart: posting it now", d.alert_id, d.person_id)
        self._sender(d.person_id).submit(self._send, d, row["channel_id"], row["message_ts"],
                                         self.directory.channel_name(row["channel_id"]), written)

    # -- messages ------------------------------------------------------------------------------
    def handle_message(self, event: dict) -> Handled:
        try:
            return self._handle_message(event)
        finally:
            self.handled += 1

    def _handle_message(self, event: dict) -> Handled:
        channel = event.get("channel")
        bots = self.directory.bot_ids() | ({self.bot_user_id} if self.bot_user_id else set())
        with self._lock:
            checked = self.model.check(event, bots)  # the dataset's rules (int_slack__messages_cleaned)
            why, message, conv = place_event(self.tracker, event, checked)
            if why is not None or message is None or conv is None:
                return Handled(skipped=why)
            ts, author = message.ts, message.user_id
            self.model.observe([(message, conv.conversation_id)])
            self.store.add_message(message, conv.conversation_id)
            channel_name = self.directory.channel_name(channel)
            ranked = self.model.rank(conv, channel_name)
            now = self.clock()
            wanted = {u for u, p, _ in ranked.people if p >= self.policy.min_probability}
            people = {u: self.directory.person(u) for u in wanted}
            window = list(conv.messages)[-self.model.prompt_settings.context_messages:]
            if log.isEnabledFor(logging.DEBUG):  # --verbose: why nobody was alerted, too (ids and scores only)
                log.debug("message %s in %s: top %s (threshold %.2f)", ts, conv.conversation_id,
                          ", ".join(f"{u} {p:.2f}" for u, p, _r in ranked.people[:5]) or "nobody ranked",
                          self.policy.min_probability)
            decisions = decide(ranked.people, conversation_id=conv.conversation_id, participants=conv.participants,
                               author=author, people=people, ledger=self.ledger, policy=self.policy, now=now,
                               notified=notified_by_slack(m.mentioned_user_ids for m in window))
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
            written = self._writer.submit(self._write_sending, sending, context, now)
            for d in sending:
                self._sender(d.person_id).submit(self._send, d, channel, ts, channel_name, written)
        return Handled(skipped=None, conversation_id=conv.conversation_id, decisions=tuple(decisions))

    #: seconds one attempt to write decisions waits for the DuckDB file's lock before the next attempt
    WRITE_ATTEMPT_SECONDS = 1.5

    def _write_sending(self, decisions: list[Decision], context: AlertContext, now: float) -> None:
        """Write the decisions of DMs about to be sent (before any is posted). While another process holds
        the DuckDB file (a notebook, a dbt run) the write is retried for as long as the app runs: the DMs
        are delayed, not dropped. Raises only when the app stops first (the DMs are then not sent)."""
        started = time.monotonic()
        said = 0.0
        while True:
            try:
                self.store.write_decisions(decisions, context, now, wait_seconds=self.WRITE_ATTEMPT_SECONDS)
            except DatabaseBusy:
                if self._closing.is_set():
                    raise
                waited = time.monotonic() - started
                if not said or waited - said >= 60:
                    said = waited or 1e-9
                    log.warning("%d alert(s) waiting for %s: another process holds its lock (a notebook, a dbt "
                                "run?); their DMs go out once it is free", len(decisions), self.store.path)
                if self._closing.wait(0.5):
                    raise
                continue
            if said:
                log.info("%d alert(s) written after waiting %.0f s for %s: sending", len(decisions),
                         time.monotonic() - started, self.store.path)
            return

    def _sender(self, person_id: str) -> ThreadPoolExecutor:
        return self._senders[zlib.crc32(person_id.encode()) % len(self._senders)]

    def _dm_channel(self, person_id: str) -> str:
        dm = self._dm_channels.get(person_id)
        if dm is None:
            dm = str(self.client.conversations_open(users=person_id)["channel"]["id"])
            self._dm_channels[person_id] = dm
        return dm

    def _send(self, d: Decision, channel: str, ts: str, channel_name: str | None, written: Future) -> None:
        permalink: str | None = None
        try:
            try:
                written.result()  # raises when the decision could not be written: then no DM
            except Exception as err:
                with self._count_lock:
                    self.unwritten += 1
                log.error("alert %s for %s not sent: its decision could not be written to DuckDB: %s",
                          d.alert_id, d.person_id, err)
                return
            try:
                permalink = self.client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
                dm = self._dm_channel(d.person_id)
            except SlackApiError as err:
                self._outcome(d, "failed", error=str(err.response.get("error") or err), permalink=permalink)
                return
            text, blocks = alert_message(alert_id=d.alert_id, permalink=permalink, channel_name=channel_name,
                                         channel_id=channel, reason=d.reason, probability=d.probability,
                                         model=self.model.name)
            try:
                posted = self.client.chat_postMessage(channel=dm, text=text, blocks=blocks, unfurl_links=False)
            except SlackApiError as err:
                self._outcome(d, "failed", error=str(err.response.get("error") or err), permalink=permalink)
                return
            self._outcome(d, "sent", permalink=permalink, dm_channel=str(posted.get("channel") or dm),
                          dm_ts=str(posted.get("ts")))
        except Exception as err:  # a network failure past the SDK's retries: Slack may or may not have it
            log.error("alert %s for %s: %s: %s", d.alert_id, d.person_id, type(err).__name__, err)
            self._outcome(d, "unknown", error=f"{type(err).__name__}: {err}", permalink=permalink)

    def _outcome(self, d: Decision, status: str, *, error: str | None = None, permalink: str | None = None,
                 dm_channel: str | None = None, dm_ts: str | None = None) -> None:
        """What became of a DM: journaled durably at once, then into the store's buffer."""
        at = self.clock()
        if status != "sent":
            log.warning("alert %s for %s %s: %s", d.alert_id, d.person_id, status, error)
        if self.on_dm_outcome is not None:
            try:
                self.on_dm_outcome(DmOutcome(d.alert_id, status, dm_channel, dm_ts, permalink, error, at))
            except Exception as err:  # the DuckDB row still follows
                log.warning("could not journal the outcome of alert %s: %s", d.alert_id, err)
        self.store.update_sent(d.alert_id, status=status, at=at, error=error, permalink=permalink,
                               dm_channel=dm_channel, dm_ts=dm_ts)

    # -- buttons and /beep -----------------------------------------------------------------------
    def handle_feedback(self, body: dict) -> str | None:
        """A button press on an alert DM; returns what was stored (useful / not_for_me), or None."""
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        feedback = FEEDBACK.get(str(action.get("action_id")))
        user = body.get("user").get("id") if isinstance(body.get("user"), dict) else None
        alert = action.get("value")
        if feedback is None or not isinstance(user, str) or not user or not isinstance(alert, str) or not alert:
            return None
        action_ts = str(action.get("action_ts") or body.get("action_ts") or self.clock())
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        container = body.get("container") if isinstance(body.get("container"), dict) else {}
        channel = container.get("channel_id") or (body.get("channel") if isinstance(body.get("channel"), dict) else {}).get("id")
        if not self.store.add_feedback(str(alert), str(user), feedback, action_ts, self.clock(),
                                       dm_channel=str(channel) if channel else None,
                                       dm_ts=str(message["ts"]) if message.get("ts") else None):
            log.warning("feedback on unknown alert %s by %s ignored", alert, user)
            return None
        if channel and message.get("ts"):
            self._sender(user).submit(self._thank, str(channel), str(message["ts"]), str(message.get("text") or ""),
                                      message.get("blocks") or [], feedback)
        return feedback

    def _thank(self, channel: str, ts: str, text: str, blocks: list, feedback: str) -> None:
        from beep.slack.dm import thanks_blocks

        try:
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=thanks_blocks(blocks, feedback))
        except SlackApiError as err:
            log.warning("could not update the alert DM after feedback: %s", err.response.get("error"))
        except Exception as err:
            log.warning("could not update the alert DM after feedback: %s: %s", type(err).__name__, err)

    def command_reply(self, payload: dict) -> str:
        """The ephemeral answer to a ``/beep`` command, from memory (sent in the ack, at once); the
        opt-out itself is applied by :meth:`apply_command` once the command is stored."""
        user, word = _command(payload)
        if word in ("off", "stop", "pause"):
            return OFF_REPLY
        if word in ("on", "start", "resume"):
            return ON_REPLY
        if word == "status":
            state = "off (you opted out)" if user in self.ledger.opted_out else "on"
            return f"Beep alerts are {state} for you; at most {self.policy.max_alerts_per_hour} an hour."
        return HELP_REPLY

    def apply_command(self, payload: dict) -> None:
        user, word = _command(payload)
        if user and word in ("off", "stop", "pause", "on", "start", "resume"):
            self.handle_command(user, word)

    def handle_command(self, user_id: str, text: str) -> str:
        """``/beep off``, ``/beep on``, ``/beep status``: applied, and the ephemeral answer."""
        word = (text or "").strip().lower()
        if word in ("off", "stop", "pause"):
            self.store.set_opt_out(user_id, True, self.clock())
            with self._lock:
                self.ledger.opted_out.add(user_id)
            return OFF_REPLY
        if word in ("on", "start", "resume"):
            self.store.set_opt_out(user_id, False, self.clock())
            with self._lock:
                self.ledger.opted_out.discard(user_id)
            return ON_REPLY
        if word == "status":
            state = "off (you opted out)" if user_id in self.ledger.opted_out else "on"
            return f"Beep alerts are {state} for you; at most {self.policy.max_alerts_per_hour} an hour."
        return HELP_REPLY


def _command(payload: dict) -> tuple[str | None, str]:
    user = payload.get("user_id")
    text = payload.get("text")
    return (user if isinstance(user, str) and user else None), (text.strip().lower() if isinstance(text, str) else "")


def _button_values(message: dict) -> set[str]:
    """The values of a message's buttons (an alert DM's are its alert id)."""
    out: set[str] = set()
    for block in message.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "actions":
            out.update(str(e.get("value")) for e in block.get("elements") or [] if isinstance(e, dict))
    return out
