"""Fine-tune jobs and their events in DuckDB (``finetune_jobs``, ``finetune_events``, ``finetune_files``).

Every write is one short transaction, so a job that runs for hours never holds the DuckDB file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from beep.db import connect

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class JobRecord:
    """One row of ``finetune_jobs``."""

    job_id: str
    provider: str
    base_model: str
    export_id: str
    settings_hash: str
    status: str
    endpoint: str | None = None
    fine_tuned_model: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    trained_tokens: int | None = None
    training_file_id: str | None = None
    validation_file_id: str | None = None
    result_files: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    artifact_path: str | None = None
    artifact_sha256: str | None = None
    error: str | None = None
    seconds: float | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Event:
    event_id: str
    created_at: datetime | None
    level: str | None
    message: str
    data: Any = None


_JSON_FIELDS = ("hyperparameters", "result_files", "checkpoints")
_COLUMNS = (
    "job_id", "provider", "endpoint", "base_model", "export_id", "settings_hash", "status", "fine_tuned_model",
    "hyperparameters", "trained_tokens", "training_file_id", "validation_file_id", "result_files", "checkpoints",
    "artifact_path", "artifact_sha256", "error", "seconds", "created_at", "finished_at",
)


def settings_hash(values: dict[str, Any]) -> str:
    """A stable hash of everything that makes two fine-tunes the same (export, provider, model, settings)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def _row_to_record(names: Sequence[str], row: Sequence[Any]) -> JobRecord:
    values = dict(zip(names, row))
    for name in _JSON_FIELDS:
        raw = values.get(name)
        values[name] = json.loads(raw) if isinstance(raw, str) else (raw or ({} if name == "hyperparameters" else []))
    return JobRecord(**{k: values.get(k) for k in _COLUMNS})


def save_job(db: Path, job: JobRecord, events: Sequence[Event] = ()) -> int:
    """Insert or replace the job's row (created_at kept from the first write) and record the events
    not seen yet, in one short transaction; return how many events were new."""
    if job.created_at is None:
        job.created_at = datetime.now().replace(microsecond=0)
    values = []
    for name in _COLUMNS:
        value = getattr(job, name)
        values.append(json.dumps(value, sort_keys=True) if name in _JSON_FIELDS else value)
    placeholders = ", ".join("?" for _ in _COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("job_id", "created_at"))
    with connect(db) as con:
        con.execute("begin transaction")
        try:
            con.execute(
                f"insert into finetune_jobs ({', '.join(_COLUMNS)}) values ({placeholders}) "
                f"on conflict (job_id) do update set {updates}",
                values,
            )
            if job.artifact_path and Path(job.artifact_path).exists():  # trained (or kept) again after a prune
                con.execute("update finetune_jobs set pruned_at = null where job_id = ?", [job.job_id])
            new = _insert_events(con, job.job_id, events)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    return new


def _insert_events(con: Any, job_id: str, events: Sequence[Event]) -> int:
    if not events:
        return 0
    known = {r[0] for r in con.execute("select event_id from finetune_events where job_id = ?", [job_id]).fetchall()}
    new = [e for e in events if e.event_id not in known]
    for event in new:
        con.execute(
            "insert into finetune_events (job_id, event_id, created_at, level, message, data) values (?, ?, ?, ?, ?, ?)",
            [job_id, event.event_id, event.created_at, event.level, event.message,
             json.dumps(event.data) if event.data is not None else None],
        )
    return len(new)


def get_job(db: Path, job_id: str) -> JobRecord | None:
    with connect(db) as con:
        cursor = con.execute(f"select {', '.join(_COLUMNS)} from finetune_jobs where job_id = ?", [job_id])
        row = cursor.fetchone()
    return _row_to_record(_COLUMNS, row) if row else None


def jobs_with_settings(db: Path, settings_hash_value: str) -> list[JobRecord]:
    """Jobs started with these exact settings, newest first."""
    with connect(db) as con:
        rows = con.execute(
            f"select {', '.join(_COLUMNS)} from finetune_jobs where settings_hash = ? order by created_at desc, job_id",
            [settings_hash_value],
        ).fetchall()
    return [_row_to_record(_COLUMNS, row) for row in rows]


def save_events(db: Path, job_id: str, events: Sequence[Event]) -> int:
    """Record events not seen yet; return how many were new."""
    if not events:
        return 0
    with connect(db) as con:
        con.execute("begin transaction")
        try:
            new = _insert_events(con, job_id, events)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    return new


def uploaded_file(db: Path, endpoint: str, sha256: str) -> str | None:
    """The provider file id of bytes already uploaded to ``endpoint``."""
    with connect(db) as con:
        row = con.execute(
            "select file_id from finetune_files where endpoint = ? and sha256 = ?", [endpoint, sha256]
        ).fetchone()
    return row[0] if row else None


def remember_upload(db: Path, endpoint: str, sha256: str, file_id: str, filename: str, size: int) -> None:
    with connect(db) as con:
        con.execute(
            "insert into finetune_files (endpoint, sha256, file_id, filename, bytes) values (?, ?, ?, ?, ?) "
            "on conflict (endpoint, sha256) do update set file_id = excluded.file_id, filename = excluded.filename, "
            "bytes = excluded.bytes, uploaded_at = now()",
            [endpoint, sha256, file_id, filename, size],
        )


def recover_interrupted_jobs(db: Path, providers: Sequence[str]) -> list[str]:
    """Jobs of ``providers`` trained on this machine (local, hf) that are still ``running`` although
    their process is gone (killed): marked ``interrupted``. Call it holding the finetune lock
    (beep.locks), which proves no other finetune is alive. Returns their ids. (A remote job's
    ``running`` is the provider's status, not a process's: left alone.)"""
    marks = ", ".join("?" for _ in providers)
    with connect(db) as con:
        ids = [r[0] for r in con.execute(
            f"select job_id from finetune_jobs where status = 'running' and provider in ({marks}) order by created_at",
            list(providers)).fetchall()]
        if ids:
            con.execute(
                f"update finetune_jobs set status = 'interrupted', error = 'its process ended while training "
                f"(killed?); found by the next finetune', finished_at = current_timestamp "
                f"where status = 'running' and provider in ({marks})", list(providers))
    return ids
