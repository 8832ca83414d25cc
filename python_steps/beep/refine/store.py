"""Verdicts and runs in DuckDB, written in short transactions as they arrive.

The DuckDB file is opened only for each read or flush (beep.db.connect) and closed straight away, so
a refine that runs for hours never keeps it locked: a `dbt run` or an analyst can get in between.
Verdicts are inserted (by a writer thread, or buffered briefly) with
``on conflict do nothing`` on (example_id, fewshot_hash, provider, model): a verdict is never
overwritten and never duplicated.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beep.db import connect, table_exists
from beep.refine.fewshot import strip_suffix


class NoTrainingExamples(RuntimeError):
    """The DuckDB file has no training_examples table yet."""


@dataclass(frozen=True)
class VerdictKey:
    fewshot_hash: str
    provider: str
    model: str


@dataclass
class Verdict:
    example_id: str
    verdict: str  # strong | weak | refused
    confidence: float | None = None
    reason: str | None = None
    raw_answer: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    request_id: str | None = None


_COLUMNS = (
    ("example_id", "varchar"),
    ("verdict", "varchar"),
    ("confidence", "double"),
    ("reason", "varchar"),
    ("raw_answer", "varchar"),
    ("prompt_tokens", "integer"),
    ("completion_tokens", "integer"),
    ("cached_tokens", "integer"),
    ("request_id", "varchar"),
)


def insert_verdicts(db: Path, key: VerdictKey, run_id: str, verdicts: list[Verdict]) -> int:
    """Insert in one short transaction; return how many were new (existing keys are left alone)."""
    if not verdicts:
        return 0
    columns = [[getattr(v, name) for v in verdicts] for name, _ in _COLUMNS]
    select = ", ".join(f"unnest(?::{typ}[])" for _, typ in _COLUMNS)
    names = ", ".join(name for name, _ in _COLUMNS)
    with connect(db) as con:
        row = con.execute(
            f"""
            insert into refine_verdicts (fewshot_hash, provider, model, run_id, {names})
            select ?, ?, ?, ?, {select}
            on conflict do nothing
            """,
            [key.fewshot_hash, key.provider, key.model, run_id, *columns],
        ).fetchone()
    return int(row[0]) if row else 0


class VerdictWriter:
    """Stores verdicts in short transactions.

    In the foreground (``background=False``) verdicts are buffered for at most ``flush_seconds`` /
    ``flush_rows`` and flushed by :meth:`add` itself. With ``background=True`` a writer thread stores
    them as soon as they arrive, in one transaction per batch of whatever arrived while the previous
    one was being written (group commit): the caller never waits on DuckDB, and a crash loses at most
    the answers of the last few milliseconds. :meth:`flush` (or leaving the ``with`` block) waits
    until everything is stored and re-raises a writer error.
    """

    def __init__(
        self,
        db: Path,
        key: VerdictKey,
        run_id: str,
        *,
        flush_seconds: float = 0.2,
        flush_rows: int = 2000,
        background: bool = False,
    ) -> None:
        self.db = db
        self.key = key
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.written = 0
        self.by_verdict: dict[str, int] = {}
        self._buffer: list[Verdict] = []
        self._last_flush = time.monotonic()
        self._cond = threading.Condition()
        self._busy = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._loop, name="beep-verdict-writer", daemon=True)
            self._closing = False
            self._thread.start()

    def _store(self, batch: list[Verdict]) -> None:
        new = insert_verdicts(self.db, self.key, self.run_id, batch)
        self.written += new
        for v in batch:
            self.by_verdict[v.verdict] = self.by_verdict.get(v.verdict, 0) + 1

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._buffer and not self._closing:
                    self._cond.wait()
                if not self._buffer and self._closing:
                    return
                batch, self._buffer = self._buffer, []
                self._busy = True
            try:
                self._store(batch)
            except BaseException as err:  # surfaced to the caller by flush()
                with self._cond:
                    self._error = err
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def add(self, verdicts: list[Verdict]) -> None:
        if not verdicts:
            return
        if self._thread is not None:
            with self._cond:
                self._raise_error()
                self._buffer.extend(verdicts)
                self._cond.notify_all()
            return
        self._buffer.extend(verdicts)
        if len(self._buffer) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> int:
        """Store everything added so far; return the number of new verdicts stored so far."""
        if self._thread is not None:
            with self._cond:
                while (self._buffer or self._busy) and self._error is None and self._thread.is_alive():
                    self._cond.wait(0.1)
                self._raise_error()
            return self.written
        buffer, self._buffer = self._buffer, []
        self._last_flush = time.monotonic()
        self._store(buffer)
        return self.written

    def close(self) -> None:
        """Store what is left and stop the writer thread."""
        try:
            self.flush()
        finally:
            if self._thread is not None:
                with self._cond:
                    self._closing = True
                    self._cond.notify_all()
                self._thread.join(timeout=60)

    def __enter__(self) -> "VerdictWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def require_training_examples(db: Path) -> None:
    if not Path(db).exists():
        raise NoTrainingExamples(f"{db} does not exist: build the dataset first with `beep build` (or `beep run`).")
    with connect(db) as con:
        if not table_exists(con, "training_examples"):
            raise NoTrainingExamples(
                f"{db} has no training_examples table: build the dataset first with `beep build` (or `beep run`)."
            )


def pending_examples(db: Path, key: VerdictKey, *, skip_open_batches: bool = True) -> list[tuple[str, str]]:
    """(example id, text) of every example without a verdict under ``key``, by example id.

    With ``skip_open_batches``, examples inside a Batch API submission of the same key that has not
    been collected yet are left out too (they are already paid for).
    """
    require_training_examples(db)
    with connect(db) as con:
        rows = con.execute(
            """
            select t.example_id, t.prompt
            from training_examples t
            where not exists (
                select 1 from refine_verdicts v
                where v.example_id = t.example_id and v.fewshot_hash = ? and v.provider = ? and v.model = ?
            )
            and (not ? or not exists (
                select 1 from refine_batch_items i join refine_batches b using (submission_id)
                where i.example_id = t.example_id and b.status <> 'collected'
                  and b.fewshot_hash = ? and b.provider = ? and b.model = ?
            ))
            order by t.example_id
            """,
            [key.fewshot_hash, key.provider, key.model, skip_open_batches, key.fewshot_hash, key.provider, key.model],
        ).fetchall()
    return [(eid, strip_suffix(prompt or "")) for eid, prompt in rows]


def count_examples(db: Path) -> int:
    with connect(db) as con:
        return int(con.execute("select count(*) from training_examples").fetchone()[0])


def verdict_counts(db: Path, key: VerdictKey) -> dict[str, int]:
    """Verdicts stored under ``key`` for examples that are still in training_examples."""
    with connect(db) as con:
        rows = con.execute(
            """
            select v.verdict, count(*) from refine_verdicts v
            join training_examples t using (example_id)
            where v.fewshot_hash = ? and v.provider = ? and v.model = ?
            group by v.verdict
            """,
            [key.fewshot_hash, key.provider, key.model],
        ).fetchall()
    return {verdict: int(n) for verdict, n in rows}


def start_run(db: Path, run_id: str, key: VerdictKey, *, mode: str, settings: dict[str, Any], n_pending: int) -> None:
    with connect(db) as con:
        con.execute(
            """
            insert into refine_runs (run_id, fewshot_hash, provider, model, mode, status, settings, n_pending)
            values (?, ?, ?, ?, ?, 'running', ?, ?)
            """,
            [run_id, key.fewshot_hash, key.provider, key.model, mode, json.dumps(settings, sort_keys=True), n_pending],
        )


def finish_run(db: Path, run_id: str, *, status: str, n_decided: int, n_failed: int, requests: int,
               prompt_tokens: int, completion_tokens: int, cached_tokens: int, cost: float) -> None:
    with connect(db) as con:
        con.execute(
            """
            update refine_runs set status = ?, n_decided = ?, n_failed = ?, requests = ?, prompt_tokens = ?,
                   completion_tokens = ?, cached_tokens = ?, cost = ?, finished_at = current_timestamp
            where run_id = ?
            """,
            [status, n_decided, n_failed, requests, prompt_tokens, completion_tokens, cached_tokens, cost, run_id],
        )


def usage_of_run(db: Path, run_id: str) -> tuple[int, int, int, int]:
    """(requests, prompt, completion, cached tokens) of the verdicts a run stored: what an interrupted
    run is known to have used (answers that arrived but were lost with the process are not counted)."""
    with connect(db, read_only=True) as con:
        row = con.execute(
            """
            select count(distinct request_id), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
                   coalesce(sum(cached_tokens), 0)
            from refine_verdicts where run_id = ?
            """,
            [run_id],
        ).fetchone()
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3])) if row else (0, 0, 0, 0)
