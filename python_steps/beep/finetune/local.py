"""`--provider local`: train the scikit-learn responder model on an export's train split and
register it in ``finetune_jobs`` exactly like a remote job (status succeeded, model ``local:<job_id>``,
artifact path and sha256)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from beep.config import Paths
from beep.finetune.export_data import export_rows
from beep.finetune.local_model import DEFAULT_VARIANT, HYPERPARAMETERS, VARIANTS, LocalResponderModel, sha256_file
from beep.finetune.tracking import Event, JobRecord, get_job, save_events, save_job, settings_hash

LOCAL_BASE_MODEL = "sklearn-tfidf-logreg"


def local_settings(export_id: str, variant: str, seed: int) -> dict[str, object]:
    return {"provider": "local", "export_id": export_id, "base_model": LOCAL_BASE_MODEL, "variant": variant, "seed": seed,
            "hyperparameters": HYPERPARAMETERS}


def artifact_path(paths: Paths, job_id: str) -> Path:
    return paths.artifacts_dir / "finetune" / job_id / "model.joblib"


def train_local(
    paths: Paths,
    export_id: str,
    *,
    variant: str = DEFAULT_VARIANT,
    seed: int = 0,
    say: Callable[[str], None] = lambda _msg: None,
) -> tuple[JobRecord, bool]:
    """Train (or find) the local model for this export and settings; return (job, reused)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown --variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    settings = local_settings(export_id, variant, seed)
    digest = settings_hash(settings)
    job_id = f"local-{digest[:16]}"
    existing = get_job(paths.duckdb, job_id)
    if (
        existing is not None
        and existing.status == "succeeded"
        and existing.artifact_path
        and Path(existing.artifact_path).exists()
        and sha256_file(existing.artifact_path) == existing.artifact_sha256
    ):
        return existing, True

    rows = export_rows(paths, export_id, "train")
    job = JobRecord(
        job_id=job_id,
        provider="local",
        base_model=LOCAL_BASE_MODEL,
        export_id=export_id,
        settings_hash=digest,
        status="running",
        fine_tuned_model=None,
        hyperparameters={"variant": variant, "seed": seed, **HYPERPARAMETERS,
                         "features": "tf-idf word and char_wb n-grams of the prompt"
                         + (" + channel, prior participants, last speaker, mentions" if variant == "text+context" else "")},
        created_at=existing.created_at if existing else None,
    )
    save_job(paths.duckdb, job)
    say(f"training the local responder model ({variant}) on {len(rows)} examples of {export_id}")
    started = time.perf_counter()
    model = LocalResponderModel(variant, seed=seed)
    try:
        model.fit(rows)
    except Exception as err:
        job.status, job.error, job.finished_at = "failed", str(err), datetime.now().replace(microsecond=0)
        save_job(paths.duckdb, job)
        raise
    seconds = time.perf_counter() - started
    path = artifact_path(paths, job_id)
    sha = model.save(path)
    job.status = "succeeded"
    job.fine_tuned_model = f"local:{job_id}"
    job.artifact_path = str(path)
    job.artifact_sha256 = sha
    job.seconds = round(seconds, 3)
    job.finished_at = datetime.now().replace(microsecond=0)
    job.result_files = [{"path": str(path), "sha256": sha, "labels": model.labels, "n_train": len(rows)}]
    save_job(paths.duckdb, job)
    now = datetime.now().replace(microsecond=0)
    save_events(paths.duckdb, job_id, [
        Event(f"{job_id}-1", now, "info", f"trained on {len(rows)} examples, {len(model.labels)} labels, in {seconds:.2f} s"),
        Event(f"{job_id}-2", now, "info", f"saved {path} (sha256 {sha})"),
    ])
    return job, False
