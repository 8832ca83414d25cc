"""The Slack app's DuckDB writes: short (open, write, close), so analysts read the file while it runs.

Alert decisions are written before the DM is posted (status ``sending``), so a crash between the two
never leads to a second DM after a restart. Messages and the outcome of each DM are buffered and
written together, by the next alert write or by :meth:`SlackStore.flush` (the app calls it every
``flush_seconds``, and on stop). A crash loses nothing: the events they came from stay in the app's
durable inbox until that flush (:mod:`beep.slack.inbox`), and each DM's outcome is journaled there
the moment Slack answers.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from beep.db import connect, table_exists
from beep.slack.alerts import ALERTED, Decision, Ledger
from beep.slack.conversations import LiveMessage


def utc(at: float) -> datetime:
    """Epoch seconds as a naive UTC timestamp (how Beep stores times)."""
    return datetime.fromtimestamp(at, tz=timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class AlertContext:
    """Where an alert decision was made."""

    channel_id: str
    message_ts: str
    author_id: str
    model: str


class SlackStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # the buffers
        self._write_lock = threading.RLock()  # one write at a time: a flush returns once what was buffered is in
        self._messages: list[tuple] = []
        self._alerts: list[tuple] = []  # decision rows that send nothing, written with the next write
        self._updates: list[tuple] = []  # (status, error, permalink, dm channel, dm ts, sent_at, alert_id)

    # -- reading on start ----------------------------------------------------------------------
    def load_messages(self) -> list[tuple[LiveMessage, str]]:
        """Every stored live message with its conversation id, in the order they are replayed."""
        with connect(self.path) as con:
            if not table_exists(con, "slack_messages"):
                return []
            rows = con.execute(
                "select channel_id, ts, thread_ts, user_id, clean_text, mentioned_user_ids, epoch(message_at), "
                "conversation_id from slack_messages order by message_at, ts, channel_id"
            ).fetchall()
        return [(LiveMessage(r[0], r[1], r[2], r[3], r[4], tuple(r[5] or ()), float(r[6])), str(r[7])) for r in rows]

    def load_ledger(self, now: float) -> Ledger:
        """The policy's memory: alerts sent or being sent (and dry-run ones), the last hour's send
        times, the last suppression reason of each conversation and person, the opt-outs."""
        ledger = Ledger()
        with connect(self.path) as con:
            if not table_exists(con, "alerts"):
                return ledger
            for cid, person, status, why, decided, channel in con.execute(
                "select conversation_id, person_id, status, suppressed_reason, epoch(coalesce(sent_at, decided_at)), "
                "channel_id from alerts order by decided_at"
            ).fetchall():
                if status in ALERTED:
                    ledger.alerted.add((cid, person))
                    if decided > now - 3600:
                        ledger.sent_times.setdefault(person, deque()).append(float(decided))
                    last = ledger.channel_alerts.get((person, channel))
                    ledger.channel_alerts[(person, channel)] = max(float(decided), last or 0.0)
                elif status == "suppressed":
                    ledger.suppressed[(cid, person)] = why
            ledger.opted_out = {r[0] for r in con.execute("select person_id from slack_opt_outs where opted_out").fetchall()}
        return ledger

    def sending_alerts(self) -> list[dict]:
        """Alert rows still ``sending``: decided, and a crash left what became of their DM unknown."""
        with connect(self.path) as con:
            if not table_exists(con, "alerts"):
                return []
            cur = con.execute(
                "select alert_id, conversation_id, channel_id, message_ts, person_id, author_id, probability, model, "
                "reason, epoch(decided_at) as decided from alerts where status = 'sending' order by decided_at"
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    # -- writing -------------------------------------------------------------------------------
    def add_message(self, message: LiveMessage, conversation_id: str) -> None:
        """Buffer a message (written with the next alert, or by the next flush)."""
        with self._lock:
            self._messages.append((message.channel_id, message.ts, message.thread_ts, message.user_id, conversation_id,
                                   message.clean_text, list(message.mentioned_user_ids), utc(message.at)))

    def write_decisions(self, decisions: Sequence[Decision], context: AlertContext, now: float, *,
                        buffered: bool = False, wait_seconds: float = 60.0) -> None:
        """Write alert decisions now (with whatever is buffered): before any DM is posted, waiting up to
        ``wait_seconds`` for the file's lock (beep.db.DatabaseBusy past it; the decisions are not kept:
        the caller retries them). With ``buffered`` (decisions that send nothing: suppressed, dry run),
        with the next write instead."""
        rows = [(d.alert_id, d.conversation_id, context.channel_id, context.message_ts, d.person_id, context.author_id,
                 d.probability, context.model, d.reason, d.status, d.suppressed_reason, utc(now)) for d in decisions]
        if buffered:
            with self._lock:
                self._alerts.extend(rows)
            return
        self._write(rows, wait_seconds=wait_seconds)

    def update_sent(self, alert_id: str, *, status: str, at: float, error: str | None = None,
                    permalink: str | None = None, dm_channel: str | None = None, dm_ts: str | None = None) -> None:
        """Buffer what became of a DM (sent, or failed with Slack's error)."""
        with self._lock:
            self._updates.append((status, error, permalink, dm_channel, dm_ts, utc(at) if status == "sent" else None,
                                  alert_id))

    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)

    def flush(self) -> None:
        """Write what is buffered (one short connection; nothing when the buffer is empty)."""
        with self._write_lock:
            with self._lock:
                empty = not self._messages and not self._updates and not self._alerts
            if not empty:
                self._write([])

    def _write(self, alert_rows: list[tuple], wait_seconds: float = 60.0) -> None:
        with self._write_lock:
            self._write_now(alert_rows, wait_seconds)

    def _write_now(self, alert_rows: list[tuple], wait_seconds: float = 60.0) -> None:
        with self._lock:
            messages, self._messages = self._messages, []
            updates, self._updates = self._updates, []
            buffered, self._alerts = self._alerts, []
        alert_rows = buffered + alert_rows
        try:
            with connect(self.path, wait_seconds=wait_seconds) as con:
                con.execute("begin transaction")
                if messages:
                    con.executemany(
                        "insert into slack_messages (channel_id, ts, thread_ts, user_id, conversation_id, clean_text, "
                        "mentioned_user_ids, message_at) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
                        messages,
                    )
                if alert_rows:
                    con.executemany(
                        """
                        insert into alerts (alert_id, conversation_id, channel_id, message_ts, person_id, author_id,
                            probability, model, reason, status, suppressed_reason, decided_at)
                        values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        on conflict (alert_id) do update set
                            message_ts = excluded.message_ts, author_id = excluded.author_id,
                            probability = excluded.probability, model = excluded.model, reason = excluded.reason,
                            status = excluded.status, suppressed_reason = excluded.suppressed_reason,
                            decided_at = excluded.decided_at
                        """,
                        alert_rows,
                    )
                if updates:
                    con.executemany(
                        "update alerts set status = ?, error = ?, permalink = ?, dm_channel_id = ?, dm_ts = ?, "
                        "sent_at = ? where alert_id = ?",
                        updates,
                    )
                con.execute("commit")
        except Exception:
            with self._lock:  # keep them for the next write
                self._messages[:0] = messages
                self._updates[:0] = updates
                self._alerts[:0] = buffered
            raise

    def set_opt_out(self, person_id: str, opted_out: bool, at: float) -> None:
        with connect(self.path) as con:
            con.execute(
                "insert into slack_opt_outs values (?, ?, ?) on conflict (person_id) do update set "
                "opted_out = excluded.opted_out, changed_at = excluded.changed_at",
                [person_id, opted_out, utc(at)],
            )

    def add_feedback(self, alert_id: str, person_id: str, feedback: str, action_ts: str, at: float, *,
                     dm_channel: str | None = None, dm_ts: str | None = None) -> bool:
        """Store a button press; False when that alert is unknown or was not for this person. A press
        proves the DM arrived: an alert a crash left ``sending`` or ``unknown`` becomes ``sent``."""
        with self._write_lock, connect(self.path) as con:  # never beside a flush of the same row (a conflict)
            row = con.execute("select person_id from alerts where alert_id = ?", [alert_id]).fetchone()
            if row is None or row[0] != person_id:
                return False
            con.execute("begin transaction")
            con.execute("insert into alert_feedback values (?, ?, ?, ?, ?) on conflict do nothing",
                        [alert_id, person_id, feedback, action_ts, utc(at)])
            con.execute(
                "update alerts set status = 'sent', error = null, dm_channel_id = coalesce(dm_channel_id, ?), "
                "dm_ts = coalesce(dm_ts, ?), sent_at = coalesce(sent_at, ?) where alert_id = ? "
                "and status in ('sending', 'unknown')",
                [dm_channel, dm_ts, utc(float(dm_ts)) if dm_ts and dm_ts.replace(".", "", 1).isdigit() else utc(at),
                 alert_id],
            )
            con.execute("commit")
        return True


def alert_rows(path: Path) -> list[dict]:
    """Every alert row (for tests and `beep slack` status output), oldest decision first."""
    with connect(path) as con:  # read-write: a read-only connection cannot sit beside the app's in one process
        cur = con.execute("select * from alerts order by decided_at, alert_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

