"""`--provider hf` as a fine-tune job: found or trained, resumed after a kill, recorded like the others.

The job id is ``hf-`` + the hash of the export, the base model folder (path and fingerprint) and every
setting that shapes the weights, so the same command finds the finished job instead of training again,
and after a kill (or Ctrl-C, or a crash) resumes from the checkpoint under
``.beep/artifacts/finetune/<job_id>/checkpoint.pt``. ``finetune_jobs`` holds the run (status,
settings, device, the artifact's path and sha256, the checkpoints written); ``finetune_events`` a row
per training step with its loss, written with each checkpoint (so events and checkpoint always agree).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from beep.config import Paths
from beep.finetune.hf.train import CHECKPOINT_NAME, HFOptions, StepLog
from beep.finetune.tracking import Event, JobRecord, get_job, save_job, settings_hash
from beep.interrupts import interruption
from beep.progress import HEARTBEAT_SECONDS

PROVIDER = "hf"


def hf_settings(export_id: str, base: Path, base_fingerprint: str, options: HFOptions) -> dict[str, Any]:
    return {"provider": PROVIDER, "export_id": export_id, "base_model": str(base), "base_fingerprint": base_fingerprint,
            "hyperparameters": options.shaping()}


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _step_event(job_id: str, log: StepLog, total: int) -> Event:
    return Event(f"{job_id}-step-{log.step:07d}", _now(), "info",
                 f"Step {log.step}/{total}: training loss={log.loss:.4f}",
                 {"step": log.step, "total_steps": total, "train_loss": round(log.loss, 6),
                  "learning_rate": log.learning_rate, "epoch": log.epoch})


class TrainingProgress:
    """Step, loss and ETA: a bar on a terminal, a line every 10 s (and at the end) anywhere else."""

    def __init__(self, console: Console, job_id: str, total: int, done: int, batch_size: int) -> None:
        self.console = console
        self.total = total
        self.batch_size = batch_size
        self.first = done
        self.started = time.monotonic()
        self.last_line = self.started
        self.recent: list[float] = []
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console, disable=not console.is_terminal, transient=False)
        self.task = self.bar.add_task(f"{job_id} training", total=total, completed=done, loss="–")

    def __enter__(self) -> "TrainingProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def line(self, step: int) -> str:
        elapsed = time.monotonic() - self.started
        done = step - self.first
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        loss = sum(self.recent) / len(self.recent) if self.recent else float("nan")
        return (f"  step {step}/{self.total} ({step / self.total:.0%}): loss {loss:.4f} (mean of the last "
                f"{len(self.recent)} steps), {rate * self.batch_size:.1f} examples/s, ETA {_duration(eta)}")

    def update(self, log: StepLog) -> None:
        self.recent = (self.recent + [log.loss])[-20:]
        mean = sum(self.recent) / len(self.recent)
        self.bar.update(self.task, completed=log.step, loss=f"{mean:.4f}")
        if not self.console.is_terminal and (time.monotonic() - self.last_line >= HEARTBEAT_SECONDS
                                             or log.step == self.total):
            self.last_line = time.monotonic()
            self.console.print(self.line(log.step), markup=False, highlight=False, emoji=False)


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # nan: not known yet
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")


def train_hf(paths: Paths, export_id: str, options: HFOptions, *, console: Console,
             say: Callable[[str], None]) -> tuple[JobRecord, bool]:
    """Train (or find, or resume) the LoRA adapter for this export and these settings; (job, reused)."""
    from beep.db import connect
    from beep.finetune.export_data import export_rows
    from beep.finetune.hf.artifacts import ArtifactError, job_folder, save_adapter, verified_manifest
    from beep.finetune.hf.data import examples_of, label_tokens, read_records, scored_labels
    from beep.finetune.hf.loading import (
        check_base_model,
        dtype_for,
        fingerprint,
        load_base_model,
        load_tokenizer,
        pick_device,
        require_extra,
    )
    from beep.labels import load_export

    require_extra()
    base = check_base_model(options.base_model)
    base_print = fingerprint(base)
    digest = settings_hash(hf_settings(export_id, base, base_print, options))
    job_id = f"hf-{digest[:16]}"
    existing = get_job(paths.duckdb, job_id)
    if existing is not None and existing.status == "succeeded" and existing.artifact_path:
        try:
            verified_manifest(Path(existing.artifact_path), existing.artifact_sha256)
            return existing, True
        except ArtifactError as err:
            say(f"{job_id} finished before, but {err}: training it again")

    with connect(paths.duckdb, read_only=True) as con:
        export = load_export(con, export_id)
    rows = export_rows(paths, export_id, "train")  # verifies the file (sha256, line count)
    records = read_records(Path(export.paths["train"][0] or ""))
    tokenizer = load_tokenizer(base)
    forms = label_tokens(tokenizer, scored_labels(export.label_texts), name=f"the tokenizer of {base}")
    examples = examples_of(records, [str(r["label"]) for r in rows], tokenizer, forms, options.max_length)
    device = pick_device(options.device)
    folder = job_folder(paths.artifacts_dir, job_id)
    checkpoint = folder / CHECKPOINT_NAME
    job = JobRecord(
        job_id=job_id, provider=PROVIDER, base_model=str(base), export_id=export_id, settings_hash=digest,
        status="running",
        hyperparameters={**options.shaping(), "device": device, "dtype": str(dtype_for(device)).replace("torch.", ""),
                         "save_steps": options.save_steps, "label_prefix": forms.prefix, "n_labels": len(forms.ids),
                         "base_fingerprint": base_print, "variant": "lora"},
        created_at=existing.created_at if existing else None,
        checkpoints=list(existing.checkpoints) if existing else [],
    )
    save_job(paths.duckdb, job)
    lengths = sorted(len(ex.input_ids) for ex in examples)
    say(f"{job_id}: LoRA on {base.name} ({device}, {job.hyperparameters['dtype']}), {len(examples)} examples of "
        f"{export_id}, {len(forms.ids)} labels answered as {forms.prefix!r}+label, prompts of {lengths[0]}-"
        f"{lengths[-1]} tokens (median {lengths[len(lengths) // 2]})")
    started = time.perf_counter()
    try:
        model, losses = _train(paths, job, options, examples, tokenizer, base, device, checkpoint, console, say,
                               load_base_model)
        seconds = time.perf_counter() - started
        manifest_path, sha = save_adapter(
            model, tokenizer, folder, job_id=job_id, base_model=base, base_fingerprint=base_print,
            export_id=export_id, fmt=export.format,
            system_prompt=export.settings.get("system_prompt") if export.format == "chat" else None,
            forms=forms, max_length=options.max_length)
    except BaseException as err:
        stopped = interruption(err)
        interrupted = stopped is not None
        job.status = "interrupted" if interrupted else "failed"
        job.error = ("interrupted" if interrupted else f"{type(err).__name__}: {err}") + (
            f"; run the same command again to resume from step {job.checkpoints[-1]['step']}"
            if job.checkpoints and checkpoint.exists() else "")
        job.finished_at = _now()
        save_job(paths.duckdb, job)
        if stopped is not None and stopped is not err:
            raise stopped from err
        raise
    job.status = "succeeded"
    job.fine_tuned_model = f"hf:{job_id}"
    job.artifact_path, job.artifact_sha256 = str(manifest_path), sha
    job.seconds = round(seconds + float(existing.seconds or 0) if existing and existing.status != "succeeded"
                        else seconds, 3)
    job.finished_at = _now()
    job.error = None
    job.result_files = [{"path": str(manifest_path), "sha256": sha, "adapter": str(folder / "adapter"),
                         "n_train": len(examples), "steps": len(losses),
                         "first_train_loss": round(_mean(losses[:10]), 6), "last_train_loss": round(_mean(losses[-10:]), 6)}]
    save_job(paths.duckdb, job, [Event(f"{job_id}-saved", _now(), "info", f"saved {manifest_path} (sha256 {sha})")])
    checkpoint.unlink(missing_ok=True)
    return job, False


def _train(paths: Paths, job: JobRecord, options: HFOptions, examples: list, tokenizer: Any, base: Path,
           device: str, checkpoint: Path, console: Console, say: Callable[[str], None],
           load_base_model: Callable[[Path, str], Any]) -> tuple[Any, list[float]]:
    """Train ``job`` (recording checkpoints and step events in it); the trained model and every step's loss."""
    from beep.finetune.hf.train import LoraTrainer, lora_model

    model = lora_model(load_base_model(base, device), options)
    trainer = LoraTrainer(model, examples, options, pad_id=int(tokenizer.pad_token_id), device=device,
                          settings_hash=job.settings_hash)
    resumed = trainer.load(checkpoint)
    total = trainer.total_steps
    if resumed:
        say(f"resuming {job.job_id} from its checkpoint at step {trainer.state.step}/{total}")
    trainable = sum(p.numel() for p in trainer.params)
    say(f"training {trainable:,} parameters for {total} steps ({options.n_epochs} epoch(s) of "
        f"{trainer.steps_per_epoch} steps, batch {options.batch_size}, lr {options.learning_rate:g})")
    # The first record after a resume writes the checkpoint's own step losses too: a kill between the
    # checkpoint's rename and its events' write loses none (events already there are skipped by id).
    written = 0

    def record(step: int) -> None:
        nonlocal written
        logs = [log for log in trainer.state.losses if log.step > written]
        job.checkpoints = [c for c in job.checkpoints if c["step"] < step] + [
            {"step": step, "path": str(checkpoint), "train_loss": round(logs[-1].loss, 6) if logs else None}]
        save_job(paths.duckdb, job, [_step_event(job.job_id, log, total) for log in logs])
        written = step

    first_step, started = trainer.state.step, time.perf_counter()
    with TrainingProgress(console, job.job_id, total, trainer.state.step, options.batch_size) as progress:
        trainer.run(progress.update, checkpoint=checkpoint, on_checkpoint=record)
    seconds = time.perf_counter() - started
    record(trainer.state.step)
    job.checkpoints = [c for c in job.checkpoints if c["step"] < trainer.state.step]  # the final one is the adapter
    losses = [log.loss for log in trainer.state.losses]
    first, last = _mean(losses[:10]), _mean(losses[-10:])
    rate = (total - first_step) * options.batch_size / seconds if seconds > 0 else float("nan")
    say(f"trained {total} steps: loss {first:.4f} (first 10 steps) -> {last:.4f} (last 10); "
        f"{total - first_step} steps in this run, {seconds:.1f} s, {rate:.1f} examples/s")
    return model, losses


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
