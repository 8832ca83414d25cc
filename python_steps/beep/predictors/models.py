"""Which model `--model` names: a fine-tune job id or its fine-tuned model name (finetune_jobs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from beep.checksums import sha256_file
from beep.db import pruned_column, table_exists
from beep.labels import EvaluationInputError
from beep.providers import REGISTRY


@dataclass(frozen=True)
class ModelRef:
    """A model to evaluate or predict with."""

    name: str  # fine_tuned_model, e.g. local:<job_id> or ft:gpt-4o-mini:...; else the name given
    provider: str  # a name of the provider registry (beep.providers): local | openai | azure | hf
    job_id: str | None = None
    base_model: str | None = None
    export_id: str | None = None
    artifact_path: str | None = None
    artifact_sha256: str | None = None
    pruned_at: datetime | None = None  # when `beep prune` removed the job's artifact



def resolve_model(con: duckdb.DuckDBPyConnection, model: str, *, provider: str | None = None) -> ModelRef:
    """Find ``model`` among the fine-tune jobs (by job id, then by fine-tuned model name).

    A name no job knows is accepted for an OpenAI-compatible provider (any model a server serves,
    evaluated on an export given with --export); a local model must come from a job.
    """
    if table_exists(con, "finetune_jobs"):
        pruned = pruned_column(con, "finetune_jobs")
        # by model name, a job whose artifact `beep prune` left first (a kept model's name is its origin's)
        row = con.execute(
            f"""
            select job_id, provider, base_model, export_id, status, fine_tuned_model, artifact_path, artifact_sha256,
                   {pruned}
            from finetune_jobs
            where job_id = ? or fine_tuned_model = ?
            order by (job_id = ?) desc, ({pruned}) is null desc, created_at desc
            limit 1
            """,
            [model, model, model],
        ).fetchone()
        if row is not None:
            job_id, job_provider, base_model, export_id, status, ft_model, artifact_path, artifact_sha, pruned_at = row
            if status != "succeeded" or not ft_model:
                raise EvaluationInputError(
                    f"fine-tune job {job_id} has status {status!r}, not 'succeeded', so it has no model to "
                    f"evaluate: wait for it (`beep finetune --attach {job_id}`) or start a new one"
                )
            return ModelRef(
                name=str(ft_model),
                provider=provider or str(job_provider),
                job_id=str(job_id),
                base_model=base_model,
                export_id=export_id,
                artifact_path=artifact_path,
                artifact_sha256=artifact_sha,
                pruned_at=pruned_at,
            )
    # a model trained here (local:<job>, hf:<job>) exists only as a job: a name no job knows is a typo or
    # another DuckDB file's model; a served model (openai, azure) may be any name its server knows
    trained_here = next((p.name for p in REGISTRY if p.runs_here and (model.startswith(f"{p.name}:") or provider == p.name)),
                        None)
    if trained_here is not None:
        raise EvaluationInputError(
            f"no fine-tune job or fine-tuned model named {model!r} in table finetune_jobs: "
            f"train one with `beep finetune --provider {trained_here}` and pass its job id or model name"
        )
    return ModelRef(name=model, provider=provider or "openai")


def latest_model(con: duckdb.DuckDBPyConnection) -> str:
    """The most recent succeeded fine-tune job's model name."""
    row = None
    if table_exists(con, "finetune_jobs"):
        row = con.execute(
            "select fine_tuned_model from finetune_jobs where status = 'succeeded' and fine_tuned_model is not null "
            "order by coalesce(finished_at, created_at) desc limit 1"
        ).fetchone()
    if row is None:
        raise EvaluationInputError("no succeeded fine-tune job in this DuckDB file: run `beep finetune` first")
    return str(row[0])


def verified_artifact(ref: ModelRef) -> Path:
    """The local model's artifact path, after checking it exists and its sha256 matches the job's."""
    if not ref.artifact_path:
        raise EvaluationInputError(
            f"fine-tune job {ref.job_id} records no artifact path: retrain with `beep finetune --provider local`"
        )
    path = Path(ref.artifact_path)
    if not path.exists() and ref.pruned_at is not None:
        raise EvaluationInputError(
            f"the artifact of fine-tune job {ref.job_id} ({ref.name}) was removed by `beep prune` on "
            f"{ref.pruned_at:%Y-%m-%d %H:%M} UTC, its export being older than the ones kept: use a newer model "
            "(`beep finetune` on the latest export), and prune with a larger --keep to keep more"
        )
    if not path.exists():
        raise EvaluationInputError(
            f"the artifact of {ref.name} ({path}) is missing: retrain with `beep finetune --provider local`"
        )
    if ref.artifact_sha256:
        actual = sha256_file(path)
        if actual != ref.artifact_sha256:
            raise EvaluationInputError(
                f"the artifact of {ref.name} ({path}) has sha256 {actual[:12]}…, but job {ref.job_id} recorded "
                f"{ref.artifact_sha256[:12]}…: the file was changed or replaced. Refusing to load it; "
                "retrain with `beep finetune --provider local`"
            )
    return path
