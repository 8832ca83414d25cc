"""`beep finetune` as functions: :func:`finetune`, :func:`attach`, :func:`cancel`.

Remote jobs are recorded in ``finetune_jobs`` the moment the provider accepts them and updated on
every poll, so a crash loses nothing: ``attach(job_id)`` (or simply running the same command again)
picks the job up where it is. The same export with the same settings never starts a second job:
the settings hash finds the one recorded locally, or — when the crash happened between the
provider's answer and our write — the provider's own job carrying that hash in its metadata
(in its suffix on Azure). Uploads and job creation are never retried blindly: a failed create
lists the provider's files / jobs and adopts the one it made before sending again (see
beep.finetune.remote). An error raised once a job exists carries its id (``err.job_id``), so the
CLI can say which job to ``--attach``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from beep.checksums import sha256_file
from beep.config import Paths
from beep.db import connect
from beep.export.cost import CostEstimate, estimate_cost
from beep.finetune.export_data import verified_export
from beep.finetune.remote import (
    METADATA_KEY,
    AzureFineTuner,
    OpenAIFineTuner,
    ProviderError,
    RemoteJob,
    upload_name,
)
from beep.finetune.tracking import (
    FINAL_STATUSES,
    Event,
    JobRecord,
    get_job,
    jobs_with_settings,
    recover_interrupted_jobs,
    remember_upload,
    save_events,
    save_job,
    settings_hash,
    uploaded_file,
)
from beep.llm.retry import RetryPolicy
from beep.progress import HEARTBEAT_SECONDS, Heartbeat
from beep.providers import ProviderCannot
from beep.providers import get as get_provider


class FinetuneFailed(RuntimeError):
    """The job ended failed or cancelled; the message carries the provider's error."""


class CostLimitExceeded(RuntimeError):
    """The estimated training cost is above --max-cost: nothing was uploaded."""


@dataclass(frozen=True)
class FinetuneResult:
    job_id: str
    provider: str
    status: str
    fine_tuned_model: str | None
    seconds: float | None
    export_id: str
    reused: bool = False
    artifact_path: str | None = None
    artifact_sha256: str | None = None
    trained_tokens: int | None = None
    error: str | None = None
    estimate: CostEstimate | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    result_files: list[dict[str, Any]] = field(default_factory=list)
    #: the local ranker kept the model of this earlier job (beep.finetune.keep): nothing was trained
    kept_from: str | None = None
    #: why the model was trained or kept (local jobs; the job's result_files record it)
    decision: str | None = None

    @classmethod
    def of(cls, job: JobRecord, *, reused: bool, estimate: CostEstimate | None = None,
           decision: str | None = None) -> "FinetuneResult":
        kept = job.hyperparameters.get("kept_from")
        return cls(job.job_id, job.provider, job.status, job.fine_tuned_model, job.seconds, job.export_id, reused,
                   job.artifact_path, job.artifact_sha256, job.trained_tokens, job.error, estimate,
                   list(job.checkpoints), list(job.result_files), str(kept) if kept else None, decision)


@dataclass(frozen=True)
class PollSettings:
    """How to follow a remote job: poll interval, optional give-up time, progress display, a hook."""

    interval_seconds: float = 15.0
    max_wait_seconds: float | None = None
    show_progress: bool = True
    #: Called after every poll with the job as recorded (tests use it to simulate a crash).
    on_poll: Callable[[JobRecord], None] | None = None


@dataclass(frozen=True)
class FinetuneRequest:
    """What :func:`finetune` was asked: the export, the provider and every setting (each trainer reads its own)."""

    export_id: str
    provider: str
    base_model: str | None = None
    variant: str | None = None  # local
    seed: int = 0
    n_epochs: int | None = None
    batch_size: int | None = None
    learning_rate_multiplier: float | None = None  # remote
    suffix: str | None = "beep"  # remote
    base_url: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    azure_deployment: str | None = None
    max_cost_usd: float | None = None
    retry_failed: bool = False
    poll: PollSettings = PollSettings()
    retry: RetryPolicy | None = None
    timeout_seconds: float = 60.0
    hf_options: Any = None  # hf: a beep.finetune.hf.train.HFOptions, else built from base_model, seed, ...
    retrain: bool = False  # local ranker: train even when an earlier export's model could be kept


def _say_default(console: Console) -> Callable[[str], None]:
    return lambda msg: console.print(msg, highlight=False)


def finetune(
    paths: Paths,
    *,
    export_id: str,
    provider: str = "local",
    base_model: str | None = None,
    variant: str | None = None,
    seed: int = 0,
    n_epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate_multiplier: float | None = None,
    suffix: str | None = "beep",
    base_url: str | None = None,
    azure_endpoint: str | None = None,
    api_version: str | None = None,
    azure_deployment: str | None = None,
    max_cost_usd: float | None = None,
    retry_failed: bool = False,
    poll: PollSettings = PollSettings(),
    retry: RetryPolicy | None = None,
    timeout_seconds: float = 60.0,
    console: Console | None = None,
    hf_options: Any = None,
    retrain: bool = False,
) -> FinetuneResult:
    """Fine-tune on export ``export_id`` with ``provider``; return the job (reused when it exists).

    ``provider="hf"``: LoRA on the local model folder ``base_model`` (or ``hf_options``, a
    :class:`beep.finetune.hf.train.HFOptions`, for every setting), on this machine. The local ranker
    keeps the model of an earlier export when this one adds little to learn from (beep.finetune.keep);
    ``retrain`` trains anyway."""
    console = console or Console(stderr=True)
    try:
        train = get_provider(provider).require("finetune").implementation("trainer")
    except ProviderCannot as err:  # UnknownProvider is a ValueError already
        raise ValueError(str(err)) from err
    export = verified_export(paths, export_id)  # rejects failed or altered exports
    request = FinetuneRequest(
        export_id=export_id, provider=provider, base_model=base_model, variant=variant, seed=seed, n_epochs=n_epochs,
        batch_size=batch_size, learning_rate_multiplier=learning_rate_multiplier, suffix=suffix, base_url=base_url,
        azure_endpoint=azure_endpoint, api_version=api_version, azure_deployment=azure_deployment,
        max_cost_usd=max_cost_usd, retry_failed=retry_failed, poll=poll, retry=retry, timeout_seconds=timeout_seconds,
        hf_options=hf_options, retrain=retrain,
    )
    return train(paths, request, export, console)


def finetune_local(paths: Paths, request: "FinetuneRequest", export: dict[str, Any], console: Console) -> FinetuneResult:
    """The registry's ``local`` trainer: the responder ranker (or a label model ``variant``), here."""
    from beep.finetune.local import DEFAULT_VARIANT, decision_of, train_local  # heavy (numpy, LightGBM): only here

    variant = request.variant or DEFAULT_VARIANT
    # the phase and the elapsed time on a terminal; a line after every 10 s of silence in a pipe
    with Heartbeat(console, f"local responder model ({variant}) on {request.export_id}: loading the export") as beat:
        job, reused = train_local(paths, request.export_id, variant=variant, seed=request.seed, retrain=request.retrain,
                                  say=beat.say)
    decision = decision_of(job)
    if job.hyperparameters.get("kept_from") and not reused:
        _say_default(console)(f"model {job.fine_tuned_model} kept for export {request.export_id}, nothing trained "
                              f"(job {job.job_id} records it, {job.seconds:.2f} s)")
    elif not reused:
        _say_default(console)(f"local model trained in {job.seconds:.2f} s -> {job.fine_tuned_model} ({job.artifact_path})")
    return FinetuneResult.of(job, reused=reused, decision=decision)


def finetune_remote(paths: Paths, request: "FinetuneRequest", export: dict[str, Any], console: Console) -> FinetuneResult:
    """The registry's trainer for providers with a fine-tuning API (openai, azure): find the job these
    settings already made, or estimate, upload, create it; then follow it."""
    base_model = request.base_model or export["base_model"]
    if base_model != export["base_model"]:
        raise ValueError(
            f"export {request.export_id} was checked for {export['base_model']} (tokenizer, token limit, label form); "
            f"re-export with --base-model {base_model} instead of fine-tuning another model on it"
        )
    hyperparameters = {k: v for k, v in (("n_epochs", request.n_epochs), ("batch_size", request.batch_size),
                                         ("learning_rate_multiplier", request.learning_rate_multiplier)) if v is not None}
    tuner = _tuner(request.provider, base_url=request.base_url, azure_endpoint=request.azure_endpoint,
                   api_version=request.api_version, deployment=request.azure_deployment, retry=request.retry,
                   timeout_seconds=request.timeout_seconds)
    say = _say_default(console)
    tuner.say = say  # retries are said (at most every 10 s), with what a connection error is
    settings = {"provider": request.provider, "endpoint": tuner.endpoint, "export_id": request.export_id,
                "base_model": base_model, "hyperparameters": hyperparameters, "suffix": request.suffix,
                "seed": request.seed}
    job = _RemoteJobPlan(paths, request, tuner, base_model, hyperparameters, settings_hash(settings), console, say)
    found = job.existing()
    if found is not None:
        return found
    estimate = job.estimate(export)
    result = job.create_and_follow(export)
    return FinetuneResult(**{**result.__dict__, "estimate": estimate})


@dataclass
class _RemoteJobPlan:
    """One remote fine-tuning job in its phases: the job these settings already have, the estimate, the
    upload and creation (then following it)."""

    paths: Paths
    request: "FinetuneRequest"
    tuner: OpenAIFineTuner
    base_model: str
    hyperparameters: dict[str, Any]
    digest: str  # the settings hash the job is tagged with
    console: Console
    say: Callable[[str], None]  # where the steps are told (the console)

    def _record(self, remote: RemoteJob) -> JobRecord:
        with _job_in_errors(remote.id):
            return _record_remote(self.paths, self.tuner, remote, export_id=self.request.export_id,
                                  settings_hash_value=self.digest, hyperparameters=self.hyperparameters,
                                  deployment=self.request.azure_deployment)

    def existing(self) -> FinetuneResult | None:
        """Phase 1: the same export + settings already has a job (recorded here, or only at the provider
        after a crash): follow it, never start a second one. None when there is none to follow."""
        retry_failed, poll = self.request.retry_failed, self.request.poll
        for job in jobs_with_settings(self.paths.duckdb, self.digest):
            if job.status in ("failed", "cancelled") and retry_failed:
                continue
            if job.is_final:
                self.say(f"job {job.job_id} for these settings already {job.status}" + (f": {job.error}" if job.error else ""))
                if job.status != "succeeded":
                    raise FinetuneFailed(_failure_text(job) + " — pass --retry-failed to start a new job")
                return FinetuneResult.of(job, reused=True)
            self.say(f"job {job.job_id} for these settings is {job.status}: following it instead of starting another")
            return _follow(self.paths, self.tuner, job, poll, self.console, reused=True)
        remote = self.tuner.find_job(self.digest)
        if remote is not None and not (retry_failed and remote.status in ("failed", "cancelled")):
            self.say(f"the provider already has job {remote.id} for these settings (created before a crash?): adopting it")
            return _follow(self.paths, self.tuner, self._record(remote), poll, self.console, reused=True)
        return None

    def estimate(self, export: dict[str, Any]) -> CostEstimate:
        """Phase 2: the cost estimate, before any upload; above ``--max-cost`` nothing is uploaded."""
        estimate = estimate_cost(self.paths.project_dir, self.base_model, int(export["estimated_training_tokens"] or 0),
                                 self.request.n_epochs, n_train=int(export["n_train"] or 0))  # None: the provider's epochs
        self.say(estimate.describe())
        limit = self.request.max_cost_usd
        if limit is not None and estimate.usd > limit:
            raise CostLimitExceeded(f"estimated ${estimate.usd:,.2f} is above --max-cost ${limit:,.2f}: nothing was uploaded")
        return estimate

    def create_and_follow(self, export: dict[str, Any]) -> FinetuneResult:
        """Phase 3: upload (reusing identical bytes already uploaded to this endpoint), create the job (or
        adopt the one an earlier attempt made), record it, follow it to its end."""
        request, tuner = self.request, self.tuner
        files = {split: _upload(self.paths, tuner, Path(export[f"{split}_path"]), export[f"{split}_sha256"], self.say)
                 for split in ("train", "valid")}
        for file_id in files.values():
            tuner.wait_processed(file_id, poll_seconds=request.poll.interval_seconds)
        # An earlier create for these settings whose answer never reached DuckDB (Beep died waiting):
        # its job is looked for by what it was made from, in case the provider dropped the metadata.
        earlier = _create_started(self.paths, self.digest)
        remote = tuner.create_job(base_model=self.base_model, training_file=files["train"], validation_file=files["valid"],
                                  suffix=request.suffix, seed=request.seed, hyperparameters=self.hyperparameters,
                                  metadata={METADATA_KEY: self.digest, "beep_export_id": request.export_id},
                                  tag=self.digest, earlier_attempt_at=earlier)
        what = f"{request.provider} fine-tuning job {remote.id} ({self.base_model}, export {request.export_id})"
        if remote.adopted:
            self.say(f"adopted existing {what}: the provider had made it although its answer never arrived; no second "
                     "job was created")
        else:
            self.say(f"created {what}")
        job = self._record(remote)
        _create_done(self.paths, self.digest)
        return _follow(self.paths, tuner, job, request.poll, self.console, reused=remote.adopted and earlier is not None)


def attach(
    paths: Paths,
    job_id: str,
    *,
    provider: str | None = None,
    export_id: str | None = None,
    base_url: str | None = None,
    azure_endpoint: str | None = None,
    api_version: str | None = None,
    azure_deployment: str | None = None,
    poll: PollSettings = PollSettings(),
    retry: RetryPolicy | None = None,
    timeout_seconds: float = 60.0,
    console: Console | None = None,
) -> FinetuneResult:
    """Follow a job again after a crash (or an interrupted poll) until it ends."""
    console = console or Console(stderr=True)
    job = get_job(paths.duckdb, job_id)
    if job is not None and _trained_here(job.provider):  # nothing to follow
        return FinetuneResult.of(job, reused=True)
    provider = provider or (job.provider if job else "openai")
    recorded = job.endpoint if job is not None and job.provider == "openai" and provider == "openai" else None
    tuner = _tuner(provider, base_url=recorded or base_url,
                   azure_endpoint=azure_endpoint, api_version=api_version, deployment=azure_deployment,
                   retry=retry, timeout_seconds=timeout_seconds)
    tuner.say = _say_default(console)
    if job is None:
        remote = tuner.retrieve(job_id)
        export_id = export_id or remote.metadata.get("beep_export_id")
        if not export_id:
            raise LookupError(
                f"job {job_id} is not recorded in {paths.duckdb} and carries no beep metadata: "
                "pass --export-id to say which export it was trained on"
            )
        job = _record_remote(paths, tuner, remote, export_id=export_id,
                             settings_hash_value=remote.metadata.get(METADATA_KEY) or f"attached:{job_id}",
                             hyperparameters=remote.hyperparameters, deployment=azure_deployment)
    return _follow(paths, tuner, job, poll, console, reused=True)


def cancel(
    paths: Paths,
    job_id: str,
    *,
    base_url: str | None = None,
    azure_endpoint: str | None = None,
    api_version: str | None = None,
    retry: RetryPolicy | None = None,
    console: Console | None = None,
) -> FinetuneResult:
    """Cancel a remote job and record its final state."""
    job = get_job(paths.duckdb, job_id)
    if job is None:
        raise LookupError(f"no fine-tune job {job_id!r} in {paths.duckdb} (see: select job_id, status from finetune_jobs)")
    if _trained_here(job.provider):
        raise ValueError(f"{job_id} is a local model: it trains synchronously and there is nothing to cancel")
    if job.is_final:
        raise ValueError(f"job {job_id} already {job.status}: nothing to cancel")
    tuner = _tuner(job.provider, base_url=(job.endpoint if job.provider == "openai" else None) or base_url, azure_endpoint=azure_endpoint,
                   api_version=api_version, deployment=None, retry=retry, timeout_seconds=60.0)
    remote = tuner.cancel(job_id)
    _, rows = _new_events(tuner, job_id, _known_events(paths, job_id))
    job = _update_from_remote(paths, tuner, job, remote, rows)
    return FinetuneResult.of(job, reused=True)


# -- internals ------------------------------------------------------------------------------------

def finetune_hf(paths: Paths, request: "FinetuneRequest", export: dict[str, Any], console: Console) -> FinetuneResult:
    """The registry's ``hf`` trainer: LoRA on the open model folder ``base_model`` (or ``hf_options``), here."""
    from beep.finetune.hf.job import train_hf  # heavy (torch, transformers, peft): only here
    from beep.finetune.hf.train import HFOptions

    hf_options, base_model, seed = request.hf_options, request.base_model, request.seed
    n_epochs, batch_size = request.n_epochs, request.batch_size

    if hf_options is None:
        if not base_model:
            raise ValueError("--provider hf needs --base-model: the folder of a model you downloaded (e.g. "
                             "`huggingface-cli download Qwen/Qwen2.5-0.5B --local-dir models/qwen2.5-0.5b`)")
        hf_options = HFOptions(base_model=base_model, seed=seed, **({"n_epochs": n_epochs} if n_epochs else {}),
                               **({"batch_size": batch_size} if batch_size else {}))
    say = _say_default(console)
    for stale in recover_interrupted_jobs(paths.duckdb, ("hf",)):
        say(f"hf job {stale} was left running by a process that is gone: marked interrupted (it resumes from its "
            "last checkpoint when asked again)")
    job, reused = train_hf(paths, request.export_id, hf_options, console=console, say=say)
    if reused:
        say(f"{job.job_id} was trained before with these settings: {job.fine_tuned_model} ({job.artifact_path})")
    else:
        say(f"LoRA adapter trained in {job.seconds:.1f} s -> {job.fine_tuned_model} ({job.artifact_path})")
    return FinetuneResult.of(job, reused=reused)


def _trained_here(provider: str) -> bool:
    """Whether the registry says ``provider`` trains on this machine (no job at a provider to follow)."""
    try:
        return get_provider(provider).runs_here
    except ValueError:  # a provider no longer in the registry: treated as remote, _tuner says what is wrong
        return False


def _tuner(provider: str, *, base_url: str | None, azure_endpoint: str | None, api_version: str | None,
           deployment: str | None, retry: RetryPolicy | None, timeout_seconds: float) -> OpenAIFineTuner:
    """The remote fine-tuning client the registry names for ``provider`` (``Provider.tuner``)."""
    spec = get_provider(provider)
    if spec.tuner is None:
        raise ValueError(f"provider {provider!r} trains on this machine: it has no remote job to start or follow")
    tuner: type[OpenAIFineTuner] = spec.implementation("tuner")
    return tuner.from_options(base_url=base_url, azure_endpoint=azure_endpoint, api_version=api_version,
                              deployment=deployment, retry=retry, timeout_seconds=timeout_seconds)


@contextmanager
def _job_in_errors(job_id: str) -> Iterator[None]:
    """Whatever is raised inside carries ``job_id`` (so the CLI can say which job to --attach)."""
    try:
        yield
    except BaseException as err:
        if getattr(err, "job_id", None) is None:
            try:
                err.job_id = job_id  # type: ignore[attr-defined]
            except (AttributeError, TypeError):  # pragma: no cover - exceptions without a __dict__
                pass
        raise


def _upload(paths: Paths, tuner: OpenAIFineTuner, path: Path, sha256: str, say: Callable[[str], None]) -> str:
    known = uploaded_file(paths.duckdb, tuner.endpoint, sha256)
    if known and tuner.file_exists(known):
        say(f"{path.name}: already uploaded as {known} (same sha256), reusing it")
        return known
    if sha256_file(path) != sha256:
        raise ProviderError(f"{path} changed since it was exported: run `beep export` again")
    found = tuner.find_file(upload_name(path, sha256), path.stat().st_size)
    if found is not None:  # uploaded before a crash, or by a retry whose answer was lost
        remember_upload(paths.duckdb, tuner.endpoint, sha256, found, path.name, path.stat().st_size)
        say(f"{path.name}: the provider already has it as {found} (same name, sha256 and size), reusing it")
        return found
    file_id = tuner.upload(path, sha256)
    remember_upload(paths.duckdb, tuner.endpoint, sha256, file_id, path.name, path.stat().st_size)
    say(f"{path.name}: uploaded as {file_id}")
    return file_id



#: pipeline_steps.step of a job create whose outcome is not recorded yet (fingerprint: the settings hash)
_CREATING = "finetune_create"


def _create_started(paths: Paths, digest: str) -> float | None:
    """When an earlier create for these settings started that never got its job recorded (Unix
    seconds; None when there was none). Marks this attempt's start otherwise."""
    with connect(paths.duckdb) as con:
        row = con.execute("select result ->> '$.started_at' from pipeline_steps where step = ? and fingerprint = ?",
                          [_CREATING, digest]).fetchone()
        if row is not None and row[0] is not None:
            return float(row[0])
        con.execute("insert or replace into pipeline_steps (step, fingerprint, result, finished_at) "
                    "values (?, ?, ?, current_timestamp)", [_CREATING, digest, json.dumps({"started_at": time.time()})])
    return None


def _create_done(paths: Paths, digest: str) -> None:
    """The create's job is recorded: nothing to look for on the next start."""
    with connect(paths.duckdb) as con:
        con.execute("delete from pipeline_steps where step = ? and fingerprint = ?", [_CREATING, digest])


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=timezone.utc).replace(tzinfo=None) if value else None


def _record_remote(paths: Paths, tuner: OpenAIFineTuner, remote: RemoteJob, *, export_id: str,
                   settings_hash_value: str, hyperparameters: dict[str, Any], deployment: str | None) -> JobRecord:
    hyper = dict(remote.hyperparameters or hyperparameters)
    if isinstance(tuner, AzureFineTuner) and (deployment or tuner.deployment):
        hyper["azure_deployment"] = deployment or tuner.deployment
    job = get_job(paths.duckdb, remote.id) or JobRecord(
        job_id=remote.id, provider=tuner.provider, base_model=remote.model, export_id=export_id,
        settings_hash=settings_hash_value, status=remote.status, endpoint=tuner.endpoint,
        created_at=_ts(remote.created_at),
    )
    job.hyperparameters = hyper
    return _update_from_remote(paths, tuner, job, remote)


def _update_from_remote(paths: Paths, tuner: OpenAIFineTuner, job: JobRecord, remote: RemoteJob,
                        events: list[Event] | None = None) -> JobRecord:
    """Copy the provider's view into the job, fetch checkpoints and results once it succeeded, and
    record it (with ``events``) in one write."""
    job.status = remote.status
    job.fine_tuned_model = remote.fine_tuned_model
    job.trained_tokens = remote.trained_tokens
    job.training_file_id = remote.training_file
    job.validation_file_id = remote.validation_file
    job.error = remote.error
    if remote.hyperparameters:
        job.hyperparameters = {**job.hyperparameters, **remote.hyperparameters}
    if remote.finished_at:
        job.finished_at = _ts(remote.finished_at)
        if remote.created_at:
            job.seconds = float(remote.finished_at - remote.created_at)
    if job.status == "succeeded":
        job.checkpoints = [_checkpoint(c) for c in tuner.checkpoints(job.job_id)]
        job.result_files = [_result_file(paths, tuner, job.job_id, fid) for fid in remote.result_files]
    save_job(paths.duckdb, job, events or ())
    return job


def _checkpoint(c: Any) -> dict[str, Any]:
    metrics = c.metrics.model_dump(exclude_none=True) if getattr(c, "metrics", None) is not None else {}
    return {"id": c.id, "step": c.step_number, "model": c.fine_tuned_model_checkpoint, "metrics": metrics}


def _result_file(paths: Paths, tuner: OpenAIFineTuner, job_id: str, file_id: str) -> dict[str, Any]:
    """Download a result file (step metrics CSV), keep it under artifacts, summarise its last row."""
    content = tuner.download(file_id)
    folder = paths.artifacts_dir / "finetune" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_id}.csv"
    path.write_bytes(content)
    final: dict[str, Any] = {}
    try:
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
        if rows:
            for key, value in rows[-1].items():
                try:
                    final[key] = float(value)
                except (TypeError, ValueError):
                    final[key] = value
    except UnicodeDecodeError:
        pass
    return {"id": file_id, "path": str(path), "sha256": sha256_file(path), "final_metrics": final,
            "n_steps": len(rows) if final else None}


def _new_events(tuner: OpenAIFineTuner, job_id: str, known: set[str]) -> tuple[list[Any], list[Event]]:
    """Events the provider has that ``known`` lacks (oldest first): the SDK objects and their rows."""
    new = tuner.events(job_id, known)
    known.update(e.id for e in new)
    rows = [Event(e.id, _ts(e.created_at), e.level, e.message, e.data if isinstance(e.data, (dict, list)) else None)
            for e in new]
    return new, rows


def _known_events(paths: Paths, job_id: str) -> set[str]:
    with connect(paths.duckdb) as con:
        return {r[0] for r in con.execute("select event_id from finetune_events where job_id = ?", [job_id]).fetchall()}


def _failure_text(job: JobRecord) -> str:
    if job.status == "cancelled":
        return f"fine-tuning job {job.job_id} was cancelled"
    return f"fine-tuning job {job.job_id} failed: {job.error or 'the provider gave no reason'}"


def _follow(paths: Paths, tuner: OpenAIFineTuner, job: JobRecord, poll: PollSettings, console: Console,
            *, reused: bool) -> FinetuneResult:
    """Poll until the job is final, recording status and events; show progress from list_events."""
    with _job_in_errors(job.job_id):
        return _follow_job(paths, tuner, job, poll, console, reused=reused)


def _follow_job(paths: Paths, tuner: OpenAIFineTuner, job: JobRecord, poll: PollSettings, console: Console,
                *, reused: bool) -> FinetuneResult:
    known = _known_events(paths, job.job_id)
    started = time.monotonic()
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[status]}"), BarColumn(),
                        TextColumn("{task.fields[step]}"), TimeElapsedColumn(), TextColumn("{task.description}"),
                        console=console, disable=not poll.show_progress, transient=False)
    lines = not console.is_terminal  # the bar stays invisible in a pipe: a line per poll instead
    last_line = float("-inf")
    step, last_event = "", ""
    with progress:
        task = progress.add_task(job.job_id, total=None, status=job.status, step="")
        new, rows = _new_events(tuner, job.job_id, known)
        save_events(paths.duckdb, job.job_id, rows)
        while True:
            for event in new:
                data = event.data if isinstance(event.data, dict) else {}
                if data.get("total_steps"):
                    step = f"step {data.get('step')}/{data['total_steps']}"
                    progress.update(task, total=data["total_steps"], completed=data.get("step", 0), step=step)
                progress.update(task, description=f"{job.job_id}: {event.message}")
                last_event = event.message
                if event.level in ("warn", "warning", "error"):
                    progress.console.print(f"[yellow]{job.job_id}: {event.message}")
            progress.update(task, status=job.status)
            if lines and time.monotonic() - last_line >= HEARTBEAT_SECONDS:
                last_line = time.monotonic()
                console.print(f"  {last_line - started:5.0f} s: job {job.job_id} {job.status}"
                              + (f", {step}" if step else "") + (f": {last_event}" if last_event else ""),
                              markup=False, highlight=False, emoji=False)
            if poll.on_poll is not None:
                poll.on_poll(job)
            if job.status in FINAL_STATUSES:
                break
            if poll.max_wait_seconds is not None and time.monotonic() - started > poll.max_wait_seconds:
                console.print(f"job {job.job_id} is still {job.status} after {poll.max_wait_seconds:.0f} s; it keeps "
                              f"running at the provider: follow it later with `beep finetune --attach {job.job_id}`")
                return FinetuneResult.of(job, reused=reused)
            time.sleep(poll.interval_seconds)
            remote = tuner.retrieve(job.job_id)
            new, rows = _new_events(tuner, job.job_id, known)
            job = _update_from_remote(paths, tuner, job, remote, rows)
    if job.status != "succeeded":
        raise FinetuneFailed(_failure_text(job))
    console.print(f"job {job.job_id} succeeded: {job.fine_tuned_model}" + (
        f" (serve it through Azure deployment {job.hyperparameters['azure_deployment']!r})"
        if job.hyperparameters.get("azure_deployment") else ""))
    return FinetuneResult.of(job, reused=reused)
