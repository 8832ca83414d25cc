"""`--provider local`: train Beep's local responder model on an export's train split and register it
in ``finetune_jobs`` exactly like a remote job (status succeeded, model ``local:<job_id>``, artifact
path and sha256).

Variants: ``ranker`` (default) — candidate generation + LightGBM lambdarank over people
(:mod:`beep.ranker`), for a workspace of any size; ``text`` and ``text+context`` — the TF-IDF +
logistic regression label classifier (:mod:`beep.finetune.local_model`), kept for comparison: its
memory grows with people x vocabulary, so it refuses exports with many labels."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from beep.config import Paths
from beep.db import connect
from beep.finetune.export_data import export_rows
from beep.checksums import sha256_file
from beep.interrupts import interruption
from beep.finetune.keep import keep_decision, record_kept
from beep.finetune.local_model import HYPERPARAMETERS, LocalResponderModel
from beep.ranker import RANKER_BASE_MODEL
from beep.finetune.tracking import Event, JobRecord, get_job, recover_interrupted_jobs, save_events, save_job, settings_hash

LOCAL_BASE_MODEL = "sklearn-tfidf-logreg"
RANKER_VARIANT = "ranker"
#: The local model's variants: the ranker (default) and the label classifier's two feature sets.
VARIANTS: tuple[str, ...] = (RANKER_VARIANT, "text", "text+context")
DEFAULT_VARIANT = RANKER_VARIANT
#: The label classifier's weights are (features x labels): past this many labels it would need
#: gigabytes (measured: docs/export-and-finetune.md), so it refuses and points at the ranker.
CLASSIFIER_MAX_LABELS = 200


def local_settings(export_id: str, variant: str, seed: int) -> dict[str, object]:
    from beep.ranker.model import FORMAT_VERSION, HYPERPARAMETERS as RANKER_HYPERPARAMETERS

    if variant == RANKER_VARIANT:  # a new artifact format (features, nobody inputs) trains a new job
        return {"provider": "local", "export_id": export_id, "base_model": RANKER_BASE_MODEL, "variant": variant,
                "seed": seed, "hyperparameters": RANKER_HYPERPARAMETERS, "format_version": FORMAT_VERSION}
    return {"provider": "local", "export_id": export_id, "base_model": LOCAL_BASE_MODEL, "variant": variant, "seed": seed,
            "hyperparameters": HYPERPARAMETERS}


def artifact_path(paths: Paths, job_id: str) -> Path:
    return paths.artifacts_dir / "finetune" / job_id / "model.joblib"


def spill_dir(paths: Paths, job_id: str) -> Path:
    """Where training writes the ranker's saved states as it makes them (beside the artifact; saving the
    model moves them into its ``model.states``; a killed run's leftovers are cleared by the next)."""
    from beep.ranker.model import ResponderRanker

    folder = ResponderRanker.checkpoint_dir(artifact_path(paths, job_id))
    return folder.with_name(folder.name + ".partial")


def _train_ranker(paths: Paths, export_id: str, rows: list[dict], seed: int, say: Callable[[str], None],
                  spill: Path | None = None):
    """Fit the ranker on the export's train rows; the stream comes from the built dataset. Returns the
    model, its fit report and the fingerprint of every day of messages the replay read (``message_days``,
    recorded with the job: what a later export checks before keeping this model, beep.finetune.keep).
    ``spill``: the folder its saved states go to while it trains (:func:`spill_dir`)."""
    from beep.ranker.message_days import read_snapshot
    from beep.ranker.model import ResponderRanker
    from beep.ranker.stream import Query, load_queries

    with connect(paths.duckdb, read_only=True) as con:
        from beep.db import table_exists

        if not table_exists(con, "int_conversations"):
            raise ValueError(
                f"table int_conversations is missing from {paths.duckdb}: the ranker replays the workspace's "
                "conversations, so build the dataset with `beep build` (or use --variant text+context)"
            )
        found = load_queries(con, (r["example_id"] for r in rows))
        missing = [r["example_id"] for r in rows if r["example_id"] not in found]
        if missing:
            raise ValueError(
                f"{len(missing)} train example(s) of export {export_id} are no longer in training_examples "
                f"(e.g. {missing[0]}): the dataset was rebuilt with other settings; run `beep export` again"
            )
        train = [Query(**{**found[r["example_id"]].__dict__, "label": str(r["label"])}) for r in rows]
        model = ResponderRanker(seed=seed)
        days = read_snapshot(con)
        report = model.fit(con, train, say=say, spill_dir=spill)
    return model, report, days


def _recorded_artifact_ok(existing: JobRecord) -> bool:
    """The job succeeded and its artifact is there with its recorded checksum."""
    return bool(
        existing.status == "succeeded"
        and existing.artifact_path
        and Path(existing.artifact_path).exists()
        and sha256_file(existing.artifact_path) == existing.artifact_sha256
    )


def _refuse_too_many_labels(rows: list[dict], variant: str) -> None:
    n_labels = len({str(r["label"]) for r in rows})
    if variant != RANKER_VARIANT and n_labels > CLASSIFIER_MAX_LABELS:
        raise ValueError(
            f"the label classifier (--variant {variant}) keeps weights for every (feature, label): with {n_labels} labels "
            f"it would need many gigabytes. Use the default --variant ranker, which ranks people at any workspace size"
        )


def _running_job(job_id: str, export_id: str, digest: str, *, variant: str, seed: int,
                 existing: JobRecord | None) -> JobRecord:
    """The job's record while it trains: its base model, settings and a description of its features."""
    ranker = variant == RANKER_VARIANT
    return JobRecord(
        job_id=job_id,
        provider="local",
        base_model=RANKER_BASE_MODEL if ranker else LOCAL_BASE_MODEL,
        export_id=export_id,
        settings_hash=digest,
        status="running",
        fine_tuned_model=None,
        hyperparameters=dict(local_settings(export_id, variant, seed)["hyperparameters"], variant=variant, seed=seed,
                             features="candidates (participants, mentions, channel activity, text similarity, partners) "
                             "ranked by LightGBM lambdarank on features as of the last context message" if ranker else
                             "tf-idf word and char_wb n-grams of the prompt"
                             + (" + channel, prior participants, last speaker, mentions" if variant == "text+context" else "")),
        created_at=existing.created_at if existing else None,
    )


def _fit(paths: Paths, job: JobRecord, export_id: str, rows: list[dict], *, variant: str, seed: int,
         say: Callable[[str], None]) -> tuple[Any, Any, dict[str, Any] | None]:
    """Fit the model; return it, the ranker's fit report and the messages its replay read (both None for
    the other variants). On any failure or interrupt, record the job so."""
    import shutil

    report = days = None
    spill = spill_dir(paths, job.job_id)
    shutil.rmtree(spill, ignore_errors=True)  # a killed run's
    try:
        if variant == RANKER_VARIANT:
            model, report, days = _train_ranker(paths, export_id, rows, seed, say, spill)
        else:
            model = LocalResponderModel(variant, seed=seed)
            model.fit(rows)
    except BaseException as err:  # Ctrl-C and SIGTERM (beep.interrupts) too: the job never stays "running"
        stopped = interruption(err)
        job.status = "failed" if stopped is None else "interrupted"
        job.error = str(err) if stopped is None else f"interrupted ({stopped or 'Ctrl-C'})"
        job.finished_at = datetime.now().replace(microsecond=0)
        save_job(paths.duckdb, job)
        shutil.rmtree(spill, ignore_errors=True)
        if stopped is not None and stopped is not err:
            raise stopped from err
        raise
    return model, report, days


def _record_success(paths: Paths, job: JobRecord, model: Any, report: Any, rows: list[dict], seconds: float,
                    why: str, message_days: dict[str, Any] | None = None) -> str:
    """Save the artifact, record the job as succeeded with its events (``why``: why it was trained, not an
    earlier model kept); return the line that says what was trained."""
    job_id = job.job_id
    path = artifact_path(paths, job_id)
    sha = model.save(path)
    job.status = "succeeded"
    job.fine_tuned_model = f"local:{job_id}"
    job.artifact_path = str(path)
    job.artifact_sha256 = sha
    job.seconds = round(seconds, 3)
    job.finished_at = datetime.now().replace(microsecond=0)
    now = datetime.now().replace(microsecond=0)
    if report is not None:
        job.result_files = [{"path": str(path), "sha256": sha, "n_train": len(rows), "fit": dict(report.__dict__),
                             "decision": why, "message_days": message_days}]
        trained = (f"trained on {report.n_groups:,} conversations ({report.n_rows:,} candidate rows; {report.n_used:,} of "
                   f"{len(rows):,} examples used, {report.n_holdout:,} held out for calibration) in {seconds:.1f} s; "
                   f"responder among the candidates in {report.candidate_recall:.1%} of train examples, "
                   f"{report.mean_candidates:.0f} candidates each; nobody: {report.nobody_model}")
    else:
        job.result_files = [{"path": str(path), "sha256": sha, "labels": model.labels, "n_train": len(rows),
                             "decision": why}]
        trained = f"trained on {len(rows)} examples, {len(model.labels)} labels, in {seconds:.2f} s"
    save_job(paths.duckdb, job)
    save_events(paths.duckdb, job_id, [
        Event(f"{job_id}-1", now, "info", trained),
        Event(f"{job_id}-2", now, "info", f"saved {path} (sha256 {sha})"),
    ])
    return trained


def train_local(
    paths: Paths,
    export_id: str,
    *,
    variant: str = DEFAULT_VARIANT,
    seed: int = 0,
    retrain: bool = False,
    say: Callable[[str], None] = lambda _msg: None,
) -> tuple[JobRecord, bool]:
    """Train (or find) the local model for this export and settings; return (job, reused).

    The ranker keeps the model of an earlier export when this one only added a little to learn from
    (beep.finetune.keep; a new job row of this export names the kept model, nothing is trained);
    ``retrain`` trains anyway. ``job.result_files[0]["decision"]`` says which and why."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown --variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    import shutil

    for stale in recover_interrupted_jobs(paths.duckdb, ("local",)):
        partial = spill_dir(paths, stale)
        removed = partial.exists()
        shutil.rmtree(partial, ignore_errors=True)  # the saved states its training had spilled
        say(f"local job {stale} was left running by a process that is gone: marked interrupted"
            + (f" (its partial saved states {partial} removed)" if removed else "") + ", trained again now")
    digest = settings_hash(local_settings(export_id, variant, seed))
    job_id = f"local-{digest[:16]}"
    existing = get_job(paths.duckdb, job_id)
    if existing is not None and _recorded_artifact_ok(existing) and not (retrain and existing.hyperparameters.get("kept_from")):
        return existing, True

    why = "trained: --retrain asked for a new model" if retrain else "trained: the label classifier is trained per export"
    if variant == RANKER_VARIANT and not retrain:
        started = time.perf_counter()
        decision = keep_decision(paths.duckdb, export_id, lambda other: settings_hash(local_settings(other, variant, seed)),
                                 _recorded_artifact_ok)
        if decision.kept is not None:
            job = record_kept(paths.duckdb, job_id, export_id, digest, decision, started, artifact_path(paths, job_id))
            say(decision.reason)
            return job, False
        why = f"trained: {decision.reason}"
    say(why)
    rows = export_rows(paths, export_id, "train")
    _refuse_too_many_labels(rows, variant)
    job = _running_job(job_id, export_id, digest, variant=variant, seed=seed, existing=existing)
    save_job(paths.duckdb, job)
    say(f"training the local responder model ({variant}) on {len(rows)} examples of {export_id}")
    started = time.perf_counter()
    model, report, days = _fit(paths, job, export_id, rows, variant=variant, seed=seed, say=say)
    trained = _record_success(paths, job, model, report, rows, time.perf_counter() - started, why, days)
    say(trained)
    return job, False


def decision_of(job: JobRecord) -> str | None:
    """What a local job's record says about why its model was trained or kept (None for older jobs)."""
    for entry in job.result_files:
        if isinstance(entry, dict) and entry.get("decision"):
            return str(entry["decision"])
    return None
