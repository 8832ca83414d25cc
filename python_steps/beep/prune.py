"""`beep prune`: what a daily run leaves behind, kept bounded.

Every day's `beep run` makes a new export (its JSONL files and one ``export_examples`` row per
example), a new fine-tune job (a kept local ranker gets an artifact of its own) and a new evaluation
run (one ``predictions`` row per example and model, and the alert replay's rankings file). At
1,000,000 messages that is about 300 MB of JSONL and 1.3 million rows a day (docs/benchmarks.md,
"Pruning"): a month of daily runs would hold ten gigabytes nobody reads.

:func:`prune` keeps the ``keep`` newest exports (by when they were last asked for) and what a
daily run still reads:

* the exports of fine-tune jobs the provider is still working on and of evaluation runs still
  running;
* the export of the newest succeeded fine-tune job (`beep predict`, `beep slack serve` and `beep
  evaluate` use it by default) and of that model's newest finished evaluation run (the run a daily
  evaluation keeps predictions and rankings from, beep.evaluate.reuse);
* for every job kept, the job that trained its model (``kept_from``) and that job's export: a daily
  fine-tune compares the new export's train split with the one the model learned from
  (beep.finetune.keep).

An older model's evaluations, and runs or jobs that were interrupted on an export since left behind,
keep nothing: no daily run reads them again (an interrupted step resumes on the same export only).

Of every other export it removes the JSONL folder and its rows of ``export_examples`` and
``export_checks``; of the evaluation runs on them, their ``predictions`` rows, their folder of
artifacts and their report where `beep report` writes it; of the fine-tune jobs on them that no kept
job needs, the folder of the model's artifact. Only Beep's own folders are touched (a folder named by
its id inside the work folder's exports or artifacts): two DuckDB files that share a work folder (a
copy beside the original) share these folders too, so give a copy a work folder of its own
(``BEEP_WORKDIR``) before pruning either.
What stays: the ``exports``, ``export_labels``, ``eval_runs``, ``metrics``, ``alert_replay_curve``,
``alert_replay_alerts`` and ``finetune_jobs`` rows (small, and what an analyst compares over time),
each marked with ``pruned_at``. Steps that would need a pruned part say so (an export to fine-tune
on, an evaluation's examples, a report's predictions) instead of working on nothing.

DuckDB reuses the space of deleted rows: the file stops growing (docs/benchmarks.md, "Pruning": over
8 pruned daily runs it stayed between 79 and 107 MB, where the unpruned one grew by 10 MB a day).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from beep.config import DEFAULT_KEEP_EXPORTS, Paths
from beep.db import connect, pruned_column
from beep.locks import StepLock

#: Statuses of a fine-tune job its provider is still working on (an interrupted local job resumes only if
#: its export is trained on again, which a newer export makes unlikely: it does not keep its export).
_JOB_WORKING = ("validating_files", "queued", "running")


class Pruned(LookupError):
    """A step asked for something `beep prune` removed."""


@dataclass(frozen=True)
class PrunePlan:
    """What :func:`prune` removes (or removed): ids, folders, and how much."""

    keep: int
    kept_exports: tuple[str, ...]
    exports: tuple[str, ...] = ()  # exports whose files and example rows go
    eval_runs: tuple[str, ...] = ()  # runs whose predictions and artifacts go
    jobs: tuple[str, ...] = ()  # jobs whose model artifact goes
    removed: tuple[Path, ...] = ()  # every folder or file removed (also those a killed prune left)
    n_bytes: int = 0  # what removing them frees (files linked elsewhere too are not counted)
    n_example_rows: int = 0
    n_check_rows: int = 0
    n_prediction_rows: int = 0
    reasons: dict[str, str] = field(default_factory=dict)  # kept export -> why (beyond the newest ``keep``)

    @property
    def empty(self) -> bool:
        return not (self.exports or self.eval_runs or self.jobs or self.removed)

    def summary(self, *, dry_run: bool = False) -> str:
        """One line: what was (or would be) removed, or that nothing was."""
        if self.empty:
            return (f"prune: nothing to remove ({len(self.kept_exports)} export(s) kept: the newest {self.keep} and "
                    "what a daily run still reads)")
        verb = "would remove" if dry_run else "removed"
        parts = [f"{_size(self.n_bytes)} of files"]
        if self.exports:
            parts.append(f"{len(self.exports)} export(s)' files and {self.n_example_rows:,} example rows")
        if self.eval_runs:
            parts.append(f"the {self.n_prediction_rows:,} predictions of {len(self.eval_runs)} evaluation run(s)")
        if self.jobs:
            parts.append(f"the model artifacts of {len(self.jobs)} fine-tune job(s)")
        return (f"prune: {verb} {', '.join(parts)}; kept the newest {self.keep} export(s) and what a daily run still "
                f"reads ({len(self.kept_exports)} in all); the metrics and curves of every run stay")


def _size(n: int) -> str:
    """Bytes for a person: ``512 B``, ``4.0 KB``, ``295.3 MB`` (units of 1,024)."""
    if n < 1024:
        return f"{n:,} B"
    size = n / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GB"


def _freed_bytes(removed: Iterable[Path]) -> int:
    """The bytes removing these folders and files frees: files with no other hard link (a kept model's
    saved states are links to its origin's: beep.finetune.keep)."""
    total = 0
    for path in removed:
        walked = os.walk(path) if path.is_dir() else [(str(path.parent), [], [path.name])]
        for root, _dirs, files in walked:
            for name in files:
                try:
                    st = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                if st.st_nlink <= 1:
                    total += st.st_size
    return total


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()


def _within(folder: Path, parent: Path) -> bool:
    try:
        folder.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return folder.resolve() != parent.resolve()


def plan(paths: Paths, keep: int) -> PrunePlan:
    """What :func:`prune` would remove now (nothing is changed)."""
    if keep < 1:
        raise ValueError(f"--keep must be at least 1 (the newest export), got {keep}")
    if not paths.duckdb.exists():
        raise FileNotFoundError(f"{paths.duckdb} does not exist: nothing to prune (pass the --db `beep run` used)")
    with connect(paths.duckdb) as con:  # read-write: a file of an older Beep gets its pruned_at columns
        return _plan(con, paths, keep)


def _plan(con: duckdb.DuckDBPyConnection, paths: Paths, keep: int) -> PrunePlan:
    exports = [r[0] for r in _rows(con, "select export_id from exports "
                                        "order by coalesce(last_exported_at, created_at) desc, created_at desc, export_id")]
    kept: dict[str, str] = {e: f"one of the newest {keep}" for e in exports[:keep]}
    jobs = _rows(con, "select job_id, export_id, status, hyperparameters, artifact_path, pruned_at, fine_tuned_model "
                      "from finetune_jobs order by coalesce(finished_at, created_at) desc, job_id")
    runs = _rows(con, "select eval_run_id, export_id, model, status, pruned_at from eval_runs "
                      "order by coalesce(finished_at, started_at) desc, eval_run_id")
    for job_id, export_id, status, *_ in jobs:
        if status in _JOB_WORKING:
            kept.setdefault(export_id, f"fine-tune job {job_id} is {status}")
    for run_id, export_id, _model, status, _ in runs:
        if status == "running":
            kept.setdefault(export_id, f"evaluation run {run_id} is running")
    newest_job = next((j for j in jobs if j[2] == "succeeded"), None)
    if newest_job is not None:
        kept.setdefault(newest_job[1], f"the newest model's export (job {newest_job[0]})")
        # the run a daily evaluation of that model keeps predictions and rankings from (beep.evaluate.reuse)
        newest_run = next((r for r in runs if r[2] == newest_job[6] and r[3] == "finished" and r[4] is None), None)
        if newest_run is not None:
            kept.setdefault(newest_run[1], f"the newest evaluation run of the newest model ({newest_run[0]})")
    # the jobs kept, and the job that trained each one's model (with its export): until nothing is added
    by_id = {j[0]: j for j in jobs}
    kept_jobs = {j[0] for j in jobs if j[1] in kept or j is newest_job}
    while True:
        origins = {_origin(by_id[j]) for j in kept_jobs} - {None} - kept_jobs
        origins = {o for o in origins if o in by_id}
        if not origins:
            break
        for origin in sorted(origins):
            users = sorted(j for j in kept_jobs if _origin(by_id[j]) == origin)
            kept.setdefault(by_id[origin][1], f"job {origin} trained the model job {users[0]} kept")
        kept_jobs |= origins | {j[0] for j in jobs if j[1] in kept}

    pruned_exports = [e for e in exports if e not in kept]
    done = {r[0] for r in _rows(con, "select export_id from exports where pruned_at is not null")}
    new_exports = [e for e in pruned_exports if e not in done]
    files = {e: (t, v) for e, t, v in _rows(con, "select export_id, train_path, valid_path from exports")}
    removed = [f for e in pruned_exports for f in [_export_folder(paths, e, *files[e])] if f is not None]
    old_runs = [r for r in runs if r[1] in pruned_exports and r[3] != "running"]
    new_runs = [r[0] for r in old_runs if r[4] is None]
    for run_id, *_ in old_runs:  # its artifacts (the replay's rankings), and its report where `beep report` writes it
        removed += [f for f in (paths.artifacts_dir / "evaluate" / run_id,
                                paths.artifacts_dir / "reports" / f"{run_id}.html") if f.exists()]
    new_jobs: list[str] = []
    finetune_dir = paths.artifacts_dir / "finetune"
    for job_id, export_id, status, _hp, artifact, pruned_at, _model in jobs:
        if export_id not in pruned_exports or job_id in kept_jobs or status in _JOB_WORKING:
            continue
        folder = Path(artifact).parent if artifact else finetune_dir / job_id
        if folder.is_dir() and _within(folder, finetune_dir):  # never a folder outside Beep's own artifacts
            removed.append(folder)
            if pruned_at is None:
                new_jobs.append(job_id)
    n_examples = n_checks = n_predictions = 0
    if new_exports:
        marks = ", ".join("?" * len(new_exports))
        n_examples = con.execute(f"select count(*) from export_examples where export_id in ({marks})", new_exports).fetchone()[0]
        n_checks = con.execute(f"select count(*) from export_checks where export_id in ({marks})", new_exports).fetchone()[0]
    if new_runs:
        marks = ", ".join("?" * len(new_runs))
        n_predictions = con.execute(f"select count(*) from predictions where eval_run_id in ({marks})", new_runs).fetchone()[0]
    unique = tuple(dict.fromkeys(removed))
    return PrunePlan(
        keep=keep, kept_exports=tuple(e for e in exports if e in kept), exports=tuple(new_exports),
        eval_runs=tuple(new_runs), jobs=tuple(new_jobs), removed=unique,
        n_bytes=_freed_bytes(unique), n_example_rows=int(n_examples), n_check_rows=int(n_checks),
        n_prediction_rows=int(n_predictions),
        reasons={e: why for e, why in kept.items() if e in exports and e not in exports[:keep]},
    )


def _export_folder(paths: Paths, export_id: str, train_path: str | None, valid_path: str | None) -> Path | None:
    """The folder of an export's files when it is there: the one its files were recorded in (else where
    `beep export` writes them), and only a folder of its own (named by its id) inside Beep's exports folder."""
    recorded = {Path(p).parent for p in (train_path, valid_path) if p}
    folder = recorded.pop() if len(recorded) == 1 else paths.exports_dir / "jsonl" / export_id
    ok = folder.name == export_id and folder.is_dir() and _within(folder, paths.exports_dir)
    return folder if ok else None


def _origin(job: tuple[Any, ...]) -> str | None:
    hp = job[3]
    hp = json.loads(hp) if isinstance(hp, str) else (hp or {})
    origin = hp.get("kept_from") if isinstance(hp, dict) else None
    return str(origin) if origin else None


def prune(paths: Paths, keep: int = DEFAULT_KEEP_EXPORTS, *, dry_run: bool = False) -> PrunePlan:
    """Remove what :func:`plan` lists (see the module doc); with ``dry_run``, only say it. Holds the
    evaluation lock (an evaluation reads an earlier run's predictions) while it decides and deletes."""
    if dry_run:
        return plan(paths, keep)
    with StepLock(paths, "evaluate"):
        todo = plan(paths, keep)
        if todo.empty:
            return todo
        now = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)  # UTC, as every timestamp here
        with connect(paths.duckdb) as con:
            con.execute("begin transaction")
            try:
                if todo.exports:
                    marks = ", ".join("?" * len(todo.exports))
                    for table in ("export_examples", "export_checks"):
                        con.execute(f"delete from {table} where export_id in ({marks})", list(todo.exports))
                    con.execute(f"update exports set pruned_at = ? where export_id in ({marks})", [now, *todo.exports])
                if todo.eval_runs:
                    marks = ", ".join("?" * len(todo.eval_runs))
                    con.execute(f"delete from predictions where eval_run_id in ({marks})", list(todo.eval_runs))
                    con.execute(f"update eval_runs set pruned_at = ? where eval_run_id in ({marks})", [now, *todo.eval_runs])
                if todo.jobs:
                    marks = ", ".join("?" * len(todo.jobs))
                    con.execute(f"update finetune_jobs set pruned_at = ? where job_id in ({marks})", [now, *todo.jobs])
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("checkpoint")
        # the rows first: a prune killed now leaves files the next one removes (they stay in its plan)
        for path in todo.removed:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return todo


def refuse_pruned(con: duckdb.DuckDBPyConnection, table: str, key: str, value: str, what: str, todo: str,
                  error: type[Exception] = Pruned) -> None:
    """Raise ``error`` when the row of ``table`` whose ``key`` is ``value`` was pruned: ``what`` names
    the parts that are gone (plural: "... were removed"), ``todo`` what to do instead."""
    row = con.execute(f"select {pruned_column(con, table)} from {table} where {key} = ?", [value]).fetchone()
    if row is not None and row[0] is not None:
        raise error(f"{what} were removed by `beep prune` on {row[0]:%Y-%m-%d %H:%M} UTC: {todo}")
