"""The Slack app's durable inbox: every Socket Mode envelope is written here before it is acked.

A SQLite file in Beep's work folder (``.beep/slack/inbox-beep-<hash>.sqlite``), in WAL mode with
``synchronous=FULL``: an append is on disk (fsync'd) when :meth:`Inbox.append` returns, and only then
does the app ack the envelope, so a crash (kill -9, power loss) never loses an event Slack was told we
have. A worker drains the inbox in arrival order into the alert service; an entry is marked done only
once what it led to is in DuckDB, so a restart handles again exactly what was not (the service knows
a message it stored before, and the ledger an alert it decided before: nothing is alerted twice).

It also keeps, durably and at once, what became of each DM (``dm_outcomes``: written the moment
``chat.postMessage`` answers, before the 0.5 s DuckDB buffer), so a DM delivered just before a crash
is known as sent on the next start; and the counts of what was skipped, by reason (``counts``), the
malformed envelopes and events among them.

SQLite rather than DuckDB: an append is a fraction of a millisecond plus an fsync, never waits on
DuckDB's single-writer lock (an analyst's session, a ``dbt run``), and the file is Beep's own.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: How long handled entries and DM outcomes are kept (for a look after an incident), then pruned.
KEEP_SECONDS = 3 * 86400.0


def inbox_path(duckdb_path: Path, workdir: Path) -> Path:
    """The inbox of the app writing ``duckdb_path``: in Beep's work folder (``.beep/`` beside the DuckDB
    file by default, git-ignored), named after the DuckDB file's full path, so each file has its own."""
    duckdb_path = Path(duckdb_path).resolve()
    digest = hashlib.sha256(str(duckdb_path).encode()).hexdigest()[:10]
    return Path(workdir) / "slack" / f"inbox-{duckdb_path.stem}-{digest}.sqlite"


@dataclass(frozen=True)
class Entry:
    seq: int
    envelope_id: str
    type: str
    body: str  # the envelope as received (JSON text)


@dataclass(frozen=True)
class DmOutcome:
    alert_id: str
    status: str  # sent | failed
    dm_channel: str | None
    dm_ts: str | None
    permalink: str | None
    error: str | None
    at: float


class Inbox:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._con.execute("pragma journal_mode=wal")
        self._con.execute("pragma synchronous=full")  # each commit fsync'd: on disk before the ack
        self._con.executescript(
            """
            create table if not exists events (
                seq integer primary key autoincrement,
                envelope_id text not null unique,
                type text not null,
                body text not null,
                received_at real not null,
                state text not null default 'new',   -- new | done | skipped | error
                reason text,                         -- why skipped (or the error)
                done_at real
            );
            create index if not exists events_state on events (state, seq);
            create table if not exists dm_outcomes (
                alert_id text primary key,
                status text not null,
                dm_channel text, dm_ts text, permalink text, error text,
                at real not null
            );
            create table if not exists counts (
                outcome text not null,               -- handled | skipped | malformed | error
                reason text not null,
                n integer not null,
                primary key (outcome, reason)
            );
            """
        )

    def close(self) -> None:
        with self._lock:
            self._con.close()

    # -- intake ------------------------------------------------------------------------------------
    def append(self, envelope_id: str, type_: str, body: str, *, skipped: str | None = None) -> bool:
        """Write an envelope durably (fsync'd on return). False when it was written before (Slack
        delivered it again). With ``skipped``, it is stored as handled already (a malformed envelope)
        and counted as malformed."""
        now = time.time()
        with self._lock:
            self._con.execute("begin immediate")
            try:
                cur = self._con.execute(
                    "insert into events (envelope_id, type, body, received_at, state, reason, done_at) "
                    "values (?, ?, ?, ?, ?, ?, ?) on conflict (envelope_id) do nothing",
                    (envelope_id, type_, body, now, "skipped" if skipped else "new", skipped, now if skipped else None),
                )
                new = cur.rowcount == 1
                if new and skipped:
                    self._count("malformed", skipped)
                self._con.execute("commit")
            except BaseException:
                self._con.execute("rollback")
                raise
        return new

    def count(self, outcome: str, reason: str) -> None:
        """Count something that has no envelope to store (a frame that is not JSON, no envelope id)."""
        with self._lock:
            self._con.execute("begin immediate")
            self._count(outcome, reason)
            self._con.execute("commit")

    def _count(self, outcome: str, reason: str) -> None:
        self._con.execute("insert into counts values (?, ?, 1) on conflict (outcome, reason) do update set n = n + 1",
                          (outcome, reason))

    # -- the worker --------------------------------------------------------------------------------
    def pending(self, limit: int = 200, after: int = 0) -> list[Entry]:
        """Entries not handled yet, in arrival order."""
        with self._lock:
            rows = self._con.execute(
                "select seq, envelope_id, type, body from events where state = 'new' and seq > ? order by seq limit ?",
                (after, limit),
            ).fetchall()
        return [Entry(*r) for r in rows]

    def finish(self, results: list[tuple[int, str, str, str | None]]) -> None:
        """Mark entries handled: (seq, state done|skipped|malformed|error, outcome for the counts,
        reason), and count them, in one transaction."""
        if not results:
            return
        now = time.time()
        with self._lock:
            self._con.execute("begin immediate")
            try:
                for seq, state, outcome, reason in results:
                    self._con.execute("update events set state = ?, reason = ?, done_at = ? where seq = ?",
                                      (state, reason, now, seq))
                    self._count(outcome, reason or "")
                self._con.execute("commit")
            except BaseException:
                self._con.execute("rollback")
                raise

    # -- DM outcomes -------------------------------------------------------------------------------
    def record_dm(self, outcome: DmOutcome) -> None:
        """What became of a DM, on disk at once (the DuckDB row follows with the next write)."""
        with self._lock:
            self._con.execute(
                "insert into dm_outcomes values (?, ?, ?, ?, ?, ?, ?) on conflict (alert_id) do update set "
                "status = excluded.status, dm_channel = excluded.dm_channel, dm_ts = excluded.dm_ts, "
                "permalink = excluded.permalink, error = excluded.error, at = excluded.at",
                (outcome.alert_id, outcome.status, outcome.dm_channel, outcome.dm_ts, outcome.permalink,
                 outcome.error, outcome.at),
            )

    def dm_outcomes(self, alert_ids: list[str]) -> dict[str, DmOutcome]:
        out: dict[str, DmOutcome] = {}
        with self._lock:
            for i in range(0, len(alert_ids), 500):
                chunk = alert_ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                for row in self._con.execute(f"select * from dm_outcomes where alert_id in ({marks})", chunk):
                    out[row[0]] = DmOutcome(*row)
        return out

    # -- reporting and upkeep ----------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        """{outcome: {reason: n}} since the inbox was created (``handled`` has the reason '')."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for outcome, reason, n in self._con.execute("select outcome, reason, n from counts order by 1, 2"):
                out.setdefault(outcome, {})[reason] = n
        return out

    def backlog(self) -> int:
        with self._lock:
            return int(self._con.execute("select count(*) from events where state = 'new'").fetchone()[0])

    def prune(self, keep_seconds: float = KEEP_SECONDS) -> int:
        """Forget handled entries and DM outcomes older than ``keep_seconds`` (never an unhandled one)."""
        cutoff = time.time() - keep_seconds
        with self._lock:
            cur = self._con.execute("delete from events where state != 'new' and done_at < ?", (cutoff,))
            self._con.execute("delete from dm_outcomes where at < ?", (cutoff,))
        return cur.rowcount
