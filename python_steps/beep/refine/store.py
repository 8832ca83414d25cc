"""Verdicts and runs in DuckDB, written in short transactions as they arrive.

The DuckDB file is opened only for each read or flush (beep.db.connect) and closed straight away, so
a refine that runs for hours never keeps it locked: a `dbt run` or an analyst can get in between.
Verdicts are inserted with ``on conflict do nothing`` on (example_id, fewshot_hash, provider, model): a verdict is never
overwritten and never duplicated.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
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
    ``flush_rows`` and flushed by :meth:`add` itself, or by the caller's :meth:`flush`: the OpenAI
    refine buffers nothing past the request runner's ``on_settled``, which commits each round of
    answers before the freed request slots send anything (a kill loses at most the requests in
    flight). With ``background=True`` a writer thread stores them as they arrive, one transaction per
    batch of whatever arrived while the previous one was written (group commit): the caller never
    waits on DuckDB, but what a crash loses grows with DuckDB's write time (not used for paid
    answers). :meth:`flush` (or leaving the ``with`` block) waits until everything is stored and
    re-raises a writer error.
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


def stored_by_run(db: Path, run_id: str) -> int:
    """How many verdicts ``run_id`` stored: the count a run records at its end. Read from the table, not
    kept in memory: an interrupt that lands between a commit and the in-memory count would leave that
    count short of what was stored."""
    with connect(db, read_only=True) as con:
        row = con.execute("select count(*) from refine_verdicts where run_id = ?", [run_id]).fetchone()
    return int(row[0]) if row else 0


# -- runs whose process died ------------------------------------------------------------------------

try:  # POSIX: an advisory lock the kernel drops however the process ends (SIGKILL, closed terminal)
    import fcntl
except ImportError:  # pragma: no cover - Windows: liveness falls back to the recorded pid
    fcntl = None  # type: ignore[assignment]


def _lock_path(db: Path, run_id: str) -> Path:
    db = Path(db)
    return db.parent / f".{db.name}.refine-runs" / f"{run_id}.lock"


def process_tag() -> dict[str, Any]:
    """Who runs this refine (kept in refine_runs.settings): host, pid and when the process started."""
    import socket

    tag: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        import psutil

        tag["pid_started"] = psutil.Process().create_time()
    except Exception:  # pragma: no cover - psutil missing or refused
        pass
    return tag


class RunLock:
    """Held by a refine run for its whole life: a lock file beside the DuckDB file, locked with
    ``flock``. The kernel releases it however the process ends, so a later run can tell a live run
    from one killed by SIGKILL or a closed terminal (:func:`run_is_alive`)."""

    def __init__(self, db: Path, run_id: str) -> None:
        self.path = _lock_path(db, run_id)
        self._handle: Any = None

    def acquire(self) -> "RunLock":
        if fcntl is None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")
        except OSError:  # a read-only folder: liveness falls back to the recorded pid
            return self
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return self
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        self._handle.close()
        self._handle = None
        try:
            self.path.parent.rmdir()  # no empty folder left beside the DuckDB file
        except OSError:  # another run's lock is in it
            pass


def run_is_alive(db: Path, run_id: str, settings: dict[str, Any]) -> bool:
    """Whether the process of a run recorded as ``running`` is still at it.

    Its lock file is free (or gone) once the process is dead, whatever killed it. Without a lock
    file, the recorded host and pid decide; a run recorded on another host is assumed alive (its
    lock cannot be seen from here); a run that recorded neither is from before this check: dead.
    """
    import socket

    path = _lock_path(db, run_id)
    if fcntl is not None and path.exists():
        try:
            handle = open(path, "a+")
        except OSError:
            handle = None
        if handle is not None:
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return True
                fcntl.flock(handle, fcntl.LOCK_UN)
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
            return False
    host, pid = settings.get("host"), settings.get("pid")
    if not host or not pid:
        return False
    if host != socket.gethostname():
        return True
    try:
        import psutil

        if not psutil.pid_exists(int(pid)):
            return False
        started = settings.get("pid_started")
        return started is None or abs(psutil.Process(int(pid)).create_time() - float(started)) < 1.0
    except Exception:
        return False


@dataclass
class StaleRun:
    run_id: str
    model: str
    mode: str
    n_decided: int
    requests: int
    cost: float | None


def recover_stale_runs(db: Path, cost_of: Callable[[str, dict[str, Any], str, tuple[int, int, int]], float | None],
                       *, key: VerdictKey | None = None) -> list[StaleRun]:
    """Mark runs left ``running`` by a dead process ``interrupted``, with what their stored answers used.

    ``cost_of(model, settings, mode, (prompt, completion, cached tokens))`` prices them. Only runs
    of ``key`` (fewshot hash, provider, model) when given; live runs are left alone.
    """
    if not Path(db).exists():
        return []
    with connect(db) as con:
        if not table_exists(con, "refine_runs"):
            return []
        rows = con.execute(
            "select run_id, fewshot_hash, provider, model, mode, settings from refine_runs where status = 'running' "
            "order by started_at"
        ).fetchall()
    stale = []
    for run_id, fewshot_hash, provider, model, mode, raw in rows:
        if key is not None and (fewshot_hash, provider, model) != (key.fewshot_hash, key.provider, key.model):
            continue
        try:
            settings = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        except (TypeError, ValueError):
            settings = {}
        if run_is_alive(db, run_id, settings):
            continue
        requests, prompt, completion, cached = usage_of_run(db, run_id)
        try:
            cost = cost_of(model, settings, mode, (prompt, completion, cached))
        except Exception:  # an unknown price must not stop the new run
            cost = None
        with connect(db) as con:
            n_decided = int(con.execute("select count(*) from refine_verdicts where run_id = ?", [run_id]).fetchone()[0])
            con.execute(
                """
                update refine_runs set status = 'interrupted', n_decided = ?, requests = ?, prompt_tokens = ?,
                       completion_tokens = ?, cached_tokens = ?, cost = ?,
                       finished_at = coalesce((select max(decided_at) from refine_verdicts where run_id = ?), current_timestamp)
                where run_id = ? and status = 'running'
                """,
                [n_decided, requests, prompt, completion, cached, cost, run_id, run_id],
            )
        stale.append(StaleRun(run_id, model, mode, n_decided, requests, cost))
    return stale
