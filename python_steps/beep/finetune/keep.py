"""A daily run keeps yesterday's responder ranker when today's export only added a little to learn from.

A fine-tune job is per export (its id hashes the export id and the settings). After one new day the
export is new, but its train split is yesterday's (the time split keeps its boundary and adds the new
day to validation: beep.export.api._time_boundary), or yesterday's plus a few examples when the
boundary moves. :func:`keep_decision`
keeps the model of the latest ranker job with the same settings when all of these hold, and says which
one failed otherwise:

1. that model was trained here on an export of the same dataset settings (format, split, refinement,
   label form: ``exports.settings`` equal, but for the time split's boundary, ``valid_from``: which
   examples each side holds is compared in 2 and 3);
2. nothing it learned from changed: every example of its train split is in this export's train split
   with what the ranker reads of it (conversation, target time, responder, channel, participants,
   mentions, whether it is ``nil``), and every message up to the day of its last train example is as
   it was (:mod:`beep.ranker.message_days`; messages written after the last one it read are new, not
   changed). A change on a later day (a thread's first reply arriving today moves yesterday's parent
   into the thread's conversation; an edit in a re-exported day) touches only the workspace states the
   training replay saved past its last example, not what it learned: the kept model drops its saved
   states from that day on, and replays from the one before;
3. no leakage: none of the examples it trained on is in this export's validation split;
4. the new train examples are at most :data:`KEEP_MAX_NEW_SHARE` of the ones it learned from.

A kept model is recorded as a job of this export (status succeeded, no training: ``seconds`` is the time
the decision and the state's advance took) whose ``hyperparameters.kept_from`` names the job that trained
the model, with the same model name; its artifact is that model with the workspace state live prediction
starts from advanced to the end of today's data (:func:`record_kept`); its events say what was kept and
why. ``--retrain`` trains anyway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from beep.db import connect, pruned_column
from beep.finetune.tracking import Event, JobRecord, get_job, save_job
from beep.ranker.message_days import first_change, is_snapshot

#: A kept model may miss at most this share of this export's train examples (new ones it never saw),
#: relative to the examples it learned from; past it the ranker is trained again.
KEEP_MAX_NEW_SHARE = 0.05

#: What the ranker reads of a train example (beep.ranker.stream.load_queries, the nobody classifier's
#: nil flag): when any of it differs, the example changed.
_EXAMPLE_COLUMNS = ("conversation_id", "target_at", "responder_user_id", "channel_id", "prior_participant_ids",
                    "mentioned_user_ids")


@dataclass(frozen=True)
class KeepDecision:
    """Whether to keep an earlier model for this export (``kept``: the job that trained it) and why."""

    kept: JobRecord | None
    reason: str  # the sentence said either way
    n_new: int = 0  # train examples of this export the model never saw
    n_trained: int = 0  # train examples the model learned from
    #: the first day (UTC, 'YYYY-MM-DD') whose messages changed after the model's last train example:
    #: its saved states from that day on are stale (None: none changed)
    changed_day: str | None = None


def trained_job(db: Path, job: JobRecord) -> JobRecord | None:
    """The job that trained ``job``'s model: itself, or the one a kept job names (``kept_from``)."""
    origin = job.hyperparameters.get("kept_from")
    return job if not origin else get_job(db, str(origin))


def keep_decision(db: Path, export_id: str, settings_of: Callable[[str], str],
                  artifact_ok: Callable[[JobRecord], bool]) -> KeepDecision:
    """Decide whether this export (``export_id``) keeps the latest earlier ranker model with the same
    settings, trained on an export with the same export settings. ``settings_of(export_id)`` is the
    settings hash a job on that export would have; ``artifact_ok(job)`` whether its artifact is there
    with its recorded sha256."""
    with connect(db, read_only=True) as con:
        mine = _export_settings(con, export_id)
        ids = [job_id for job_id, job_export in con.execute(
            """
            select job_id, export_id from finetune_jobs
            where provider = 'local' and status = 'succeeded' and export_id <> ?
            order by coalesce(finished_at, created_at) desc, job_id
            """,
            [export_id],
        ).fetchall() if _export_settings(con, job_export) == mine]
    latest = None
    for job_id in ids:
        job = get_job(db, job_id)
        if job is not None and job.settings_hash == settings_of(job.export_id):
            latest = job
            break
    if latest is None:
        return KeepDecision(None, "no earlier ranker model with these settings on an export with these export settings")
    origin = trained_job(db, latest)
    if origin is None or origin.status != "succeeded" or not artifact_ok(origin):
        return KeepDecision(None, f"the model of {latest.job_id} or its artifact is gone")
    with connect(db, read_only=True) as con:
        return _decide(con, origin, export_id)


def _decide(con: duckdb.DuckDBPyConnection, origin: JobRecord, export_id: str) -> KeepDecision:
    """The checks of the module docstring on ``origin`` (the job that trained the model), in order."""
    name = origin.fine_tuned_model
    pruned = con.execute(f"select {pruned_column(con, 'exports')} from exports where export_id = ?",
                         [origin.export_id]).fetchone()
    if pruned is not None and pruned[0] is not None:  # what it learned from can no longer be compared
        return KeepDecision(None, f"the examples {name} learned from (export {origin.export_id}) were removed by `beep prune`")
    if _export_settings(con, origin.export_id) != _export_settings(con, export_id):
        return KeepDecision(None, f"{name} was trained on export {origin.export_id}, made with other export settings")
    seen = message_days_of(origin)
    if seen is None:
        return KeepDecision(None, f"{name} records no fingerprint of the messages it read (trained before Beep kept models)")
    changed = first_change(seen, con)
    learned_until = _last_train_day(con, origin.export_id)
    if changed is not None and (learned_until is None or changed <= learned_until):
        return KeepDecision(None, f"the messages of {changed} changed since {name} read them")
    n_trained, n_changed, n_leaked, n_new = _compare_splits(con, origin.export_id, export_id)
    if n_leaked:  # never evaluate a model on what it learned from
        return KeepDecision(None, f"{n_leaked:,} examples {name} learned from are in this export's validation split",
                            n_new, n_trained)
    if n_changed:
        return KeepDecision(None, f"{n_changed:,} of the {n_trained:,} examples {name} learned from changed or left the "
                            "train split", n_new, n_trained)
    share = n_new / n_trained if n_trained else 1.0
    said = (f"{n_new:,} new train examples, {share:.1%} of the {n_trained:,} it learned from; retrains past "
            f"{KEEP_MAX_NEW_SHARE:.0%} or with --retrain")
    if share > KEEP_MAX_NEW_SHARE:
        return KeepDecision(None, f"{name} is not kept: {said}", n_new, n_trained)
    if changed is not None:
        said += (f"; the messages of {changed} changed after its last train example ({learned_until}): its saved "
                 "workspace states from that day on are replayed again")
    return KeepDecision(origin, f"kept model {name}: {said}", n_new, n_trained, changed)


def _last_train_day(con: duckdb.DuckDBPyConnection, export_id: str) -> str | None:
    """The UTC day of the last train example of ``export_id``: the ranker learns from what was written up
    to its target time (features as of each example's moment, the text embedder fitted up to it)."""
    row = con.execute("select strftime(max(target_at), '%Y-%m-%d') from export_examples where export_id = ? "
                      "and split = 'train'", [export_id]).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def record_kept(db: Path, job_id: str, export_id: str, digest: str, decision: KeepDecision, started: float,
                path: Path) -> JobRecord:
    """Record the kept model as this export's job (see the module docstring) with its event. The model is
    the same (booster, embedder, calibration, saved states); only the workspace state it keeps for live
    prediction (`beep predict`, the Slack app) is advanced to the end of today's data, replaying the messages
    since its latest saved state (:meth:`ResponderRanker.state_at`), and saved as this job's artifact
    (``path``). ``started``: when the decision began (time.perf_counter)."""
    from beep.ranker.model import ResponderRanker

    origin = decision.kept
    assert origin is not None and origin.artifact_path
    model = ResponderRanker.load(origin.artifact_path)
    if decision.changed_day is not None:  # states saved past a change are not today's: resume before it
        stale_from = datetime.strptime(decision.changed_day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
        model.checkpoint_files = [c for c in model.checkpoint_files if c[0] < stale_from]
    with connect(db, read_only=True) as con:
        end = con.execute("select max(epoch(message_at)) from int_conversations").fetchone()[0]
        state = model.state_at(con, float(end))
    state.conversations.clear()  # as training leaves it: the end of the data, no conversation open
    model.state = state
    sha = model.save(path)
    _link_checkpoints(model, ResponderRanker.checkpoint_dir(path))
    now = datetime.now().replace(microsecond=0)
    job = JobRecord(
        job_id=job_id, provider="local", base_model=origin.base_model, export_id=export_id, settings_hash=digest,
        status="succeeded", fine_tuned_model=origin.fine_tuned_model,
        hyperparameters={**{k: v for k, v in origin.hyperparameters.items() if k != "kept_from"},
                         "kept_from": origin.job_id},
        result_files=[{"decision": decision.reason, "kept_model_of": origin.job_id, "trained_on_export": origin.export_id,
                       "n_new_train": decision.n_new, "n_trained": decision.n_trained,
                       "max_new_share": KEEP_MAX_NEW_SHARE, "path": str(path), "sha256": sha,
                       "states_replayed_from": decision.changed_day,
                       "state_advanced_to": datetime.fromtimestamp(float(end), tz=timezone.utc).isoformat()}],
        artifact_path=str(path), artifact_sha256=sha, seconds=round(time.perf_counter() - started, 3), finished_at=now,
    )
    save_job(db, job, [Event(f"{job_id}-kept", now, "info", decision.reason),
                       Event(f"{job_id}-state", now, "info", f"the model of {origin.job_id} with its workspace state "
                             f"advanced to the end of the data ({job.result_files[0]['state_advanced_to']}); saved {path} "
                             f"(sha256 {sha})")])
    return job


def _link_checkpoints(model: Any, folder: Path) -> None:
    """The saved states a kept artifact carries are its origin's files, byte for byte: make each a hard
    link to the origin's (one copy on disk however many days keep the model; where links are not
    possible the copy stays)."""
    import hashlib
    import os

    for _, origin_file, sha in model.checkpoint_files:
        copy = folder / origin_file.name
        try:
            if copy.exists() and origin_file.exists() and hashlib.sha256(copy.read_bytes()).hexdigest() == sha:
                tmp = copy.with_name(copy.name + ".link")
                os.link(origin_file, tmp)
                os.replace(tmp, copy)
        except OSError:
            pass


def message_days_of(job: JobRecord) -> dict[str, Any] | None:
    """The snapshot of the messages the job's training replay read (beep.ranker.message_days), if recorded."""
    for entry in job.result_files:
        if isinstance(entry, dict) and is_snapshot(entry.get("message_days")):
            return dict(entry["message_days"])
    return None


def _export_settings(con: duckdb.DuckDBPyConnection, export_id: str) -> Any:
    """The export's settings without the time split's boundary (a kept or moved boundary is compared
    through the examples on each side, :func:`_compare_splits`)."""
    row = con.execute("select settings from exports where export_id = ?", [export_id]).fetchone()
    if row is None or row[0] is None:
        return None
    settings = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return {k: v for k, v in settings.items() if k != "valid_from"} if isinstance(settings, dict) else settings


def _compare_splits(con: duckdb.DuckDBPyConnection, trained_export: str, export_id: str) -> tuple[int, int, int, int]:
    """(examples the model learned from, of those changed or no longer in train, of those in this export's
    validation split, train examples of this export it never saw)."""
    same = " and ".join(f"now.{c} is not distinct from old.{c}" for c in _EXAMPLE_COLUMNS)
    row = con.execute(
        f"""
        with old as (select * from export_examples where export_id = ? and split = 'train'),
             now as (select * from export_examples where export_id = ?)
        select
            (select count(*) from old),
            (select count(*) from old where not exists (
                select 1 from now where now.example_id = old.example_id and now.split = 'train' and {same}
                and (now.label = 'nil') = (old.label = 'nil'))),
            (select count(*) from old inner join now on now.example_id = old.example_id and now.split = 'valid'),
            (select count(*) from now where now.split = 'train'
                and not exists (select 1 from old where old.example_id = now.example_id))
        """,
        [trained_export, export_id],
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])
