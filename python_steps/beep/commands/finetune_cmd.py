"""`beep finetune`: train the local responder model, or run a remote fine-tuning job, on an export."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, Optional

import typer

from beep.commands.options import (
    DEFAULT_POLL_INTERVAL_SECONDS,
    ApiVersionOption,
    AzureEndpointOption,
    BaseUrlOption,
    DbOption,
    FinetuneProvider,
    PollIntervalOption,
    make_console,
    print_error,
)
from beep.config import Paths, default_paths
from beep.providers import describe
from beep.providers import get as get_provider

if TYPE_CHECKING:
    from rich.console import Console

    from beep.finetune.api import FinetuneResult

HF = "Open model (--provider hf)"


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        name="finetune",
        help="Fine-tune on an export: `beep finetune [OPTIONS]` starts (or finds) a job; `beep finetune cancel JOB_ID` cancels one.",
        invoke_without_command=True,
        no_args_is_help=False,
    )
    sub.callback()(finetune_command)
    sub.command("cancel")(cancel_command)
    sub.command("merge")(merge_command)
    app.add_typer(sub)


def finetune_command(
    ctx: typer.Context,
    db: DbOption = None,
    export: Annotated[
        Optional[str], typer.Option("--export", help="The export to train on (default: the latest successful one).", show_default=False)
    ] = None,
    provider: Annotated[
        FinetuneProvider,
        typer.Option("--provider", help="Who trains: " + describe("finetune") + ". local trains Beep's responder "
                     "ranker (the default); hf needs --base-model FOLDER."),
    ] = "local",
    variant: Annotated[
        Literal["ranker", "text", "text+context"],
        typer.Option("--variant", help="Local model: ranker (default: ranks people from candidates - participants, "
                     "mentions, channel activity, text similarity - with LightGBM; any workspace size), or the label "
                     "classifier for comparison: text+context (prompt, channel, participants, mentions) or text (the "
                     "prompt only, what an LLM sees; at most 200 labels)."),
    ] = "ranker",
    attach_job: Annotated[
        Optional[str],
        typer.Option("--attach", help="Follow an existing job (after a crash or Ctrl-C) until it ends, recording its events.",
                     show_default=False),
    ] = None,
    base_model: Annotated[
        Optional[str], typer.Option("--base-model", help="Remote: the base model (default and only choice: the export's). "
                                    "hf: the folder of a model you downloaded (never a hub id: Beep runs offline).",
                                    show_default=False)
    ] = None,
    n_epochs: Annotated[Optional[int], typer.Option("--n-epochs", min=1, help="Remote: epochs (default: the provider's choice). hf: epochs over the train split (default 3).", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Remote: batch size (default: the provider's). hf: examples per step (default 8).", show_default=False)] = None,
    learning_rate_multiplier: Annotated[
        Optional[float], typer.Option("--learning-rate-multiplier", min=0.0, help="Remote: learning rate multiplier.", show_default=False)
    ] = None,
    suffix: Annotated[str, typer.Option("--suffix", help="Remote: suffix of the fine-tuned model's name.")] = "beep",
    seed: Annotated[int, typer.Option("--seed", help="Training seed (local model and remote job).")] = 0,
    max_cost: Annotated[
        Optional[float], typer.Option("--max-cost", min=0.0, help="Remote: refuse to upload when the estimated cost (USD) is above this.", show_default=False)
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Remote: start a new job even though one with these settings failed or was cancelled.")
    ] = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Local ranker: train a new model for this export even when the model of an "
                           "earlier export could be kept (it is kept when nothing it learned from changed, none of its "
                           "examples is in this export's validation split and the new train examples are at most 5% of "
                           "the ones it learned from).")
    ] = False,
    poll_interval: PollIntervalOption = DEFAULT_POLL_INTERVAL_SECONDS,
    max_wait: Annotated[
        Optional[float], typer.Option("--max-wait", min=0.0, help="Remote: stop following after this many seconds (the job keeps running; --attach later).", show_default=False)
    ] = None,
    base_url: BaseUrlOption = None,
    azure_endpoint: AzureEndpointOption = None,
    api_version: ApiVersionOption = None,
    azure_deployment: Annotated[
        Optional[str], typer.Option("--azure-deployment", help="Azure: the deployment name the fine-tuned model will be served under (recorded with the job).", show_default=False)
    ] = None,
    learning_rate: Annotated[
        float, typer.Option("--learning-rate", min=0.0, rich_help_panel=HF,
                            help="hf: peak learning rate of AdamW (linear warm-up over 5% of the steps, then linear decay).")
    ] = 2e-4,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1, rich_help_panel=HF, help="hf: LoRA rank (the adapter's width).")] = 16,
    lora_alpha: Annotated[
        Optional[int], typer.Option("--lora-alpha", min=1, rich_help_panel=HF, show_default=False,
                                    help="hf: LoRA scaling alpha (default: 2 x --lora-r).")
    ] = None,
    lora_dropout: Annotated[float, typer.Option("--lora-dropout", min=0.0, max=0.9, rich_help_panel=HF, help="hf: dropout on the LoRA path.")] = 0.0,
    lora_target_modules: Annotated[
        Optional[str], typer.Option("--lora-target-modules", rich_help_panel=HF, show_default=False,
                                    help="hf: comma-separated module names LoRA adapts (default: the attention "
                                    "projections: q_proj,k_proj,v_proj,o_proj for Llama/Qwen/Mistral; c_attn,c_proj for GPT-2).")
    ] = None,
    train_lm_head: Annotated[
        bool, typer.Option("--train-lm-head", rich_help_panel=HF,
                           help="hf: also train the output layer in full (PEFT modules_to_save). A pretrained base rarely "
                           "needs it; a random-initialised test model does. Adds vocabulary x hidden weights to the adapter.")
    ] = False,
    modules_to_save: Annotated[
        Optional[str], typer.Option("--modules-to-save", rich_help_panel=HF, show_default=False,
                                    help="hf: comma-separated further modules trained in full and saved with the adapter "
                                    "(e.g. embed_tokens).")
    ] = None,
    max_steps: Annotated[
        Optional[int], typer.Option("--max-steps", min=1, rich_help_panel=HF, show_default=False,
                                    help="hf: stop after this many steps (default: every step of --n-epochs).")
    ] = None,
    max_length: Annotated[
        int, typer.Option("--max-length", min=8, rich_help_panel=HF,
                          help="hf: prompt tokens kept at most (a longer prompt keeps its end: the latest messages).")
    ] = 512,
    save_steps: Annotated[
        int, typer.Option("--save-steps", min=1, rich_help_panel=HF,
                          help="hf: write a checkpoint (and the steps' losses to finetune_events) every this many steps; "
                          "after a kill the same command resumes from the last one.")
    ] = 50,
    device: Annotated[
        Literal["auto", "cpu", "cuda"], typer.Option("--device", rich_help_panel=HF,
                                                     help="hf: where to train (auto: a CUDA GPU when torch sees one, in bf16; else the CPU, in float32).")
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Train on an export's train split and record the job in finetune_jobs / finetune_events.

    The same export with the same settings never starts a second job: a rerun returns (or follows)
    the existing one. Remote jobs print the estimated cost before any upload, reuse files already
    uploaded (by sha256), and can be re-attached after a crash."""
    if ctx.invoked_subcommand is not None:
        return
    from beep.finetune.api import PollSettings

    console = make_console(stderr=True)
    paths = default_paths(db)
    if not attach_job and not paths.duckdb.exists():
        print_error(console, f"{paths.duckdb} does not exist yet: build the dataset and export it first "
                             "(`beep build`, `beep refine`, `beep export`, or `beep run`).")
        raise typer.Exit(2)
    hf_options = None
    if provider == "hf" and not attach_job:
        hf_options = _hf_options(console, base_model=base_model, lora_r=lora_r, lora_alpha=lora_alpha,
                                 lora_dropout=lora_dropout, lora_target_modules=lora_target_modules,
                                 train_lm_head=train_lm_head, modules_to_save=modules_to_save, n_epochs=n_epochs,
                                 learning_rate=learning_rate, batch_size=batch_size, max_steps=max_steps,
                                 max_length=max_length, save_steps=save_steps, device=device, seed=seed)
    remote = not get_provider(provider).runs_here or bool(attach_job)  # a job at a provider (can be --attach'ed)
    poll = PollSettings(interval_seconds=poll_interval, max_wait_seconds=max_wait)
    connection = {"base_url": base_url, "azure_endpoint": azure_endpoint, "api_version": api_version,
                  "azure_deployment": azure_deployment}
    try:
        if attach_job:
            from beep.finetune.api import attach

            result = attach(paths, attach_job, provider=None if provider == "local" else provider, export_id=export,
                            poll=poll, console=console, **connection)
        else:
            result = _train(paths, export=export, provider=provider, base_model=base_model, variant=variant,
                            seed=seed, n_epochs=n_epochs, batch_size=batch_size,
                            learning_rate_multiplier=learning_rate_multiplier, suffix=suffix, max_cost_usd=max_cost,
                            retry_failed=retry_failed, poll=poll, console=console, hf_options=hf_options,
                            retrain=retrain, **connection)
    except KeyboardInterrupt as err:
        _interrupted(console, provider, remote, getattr(err, "job_id", None))  # job_id: set once a job exists
    except Exception as err:  # every failure is shown with its own message; the job (if any) is recorded
        _failed(console, err, remote)
    _print_result(result, as_json)


def _hf_options(console: "Console", *, base_model: str | None, lora_target_modules: str | None,
                modules_to_save: str | None, n_epochs: int | None, batch_size: int | None, **settings: Any) -> Any:
    """The hf settings from the options (:class:`beep.finetune.hf.train.HFOptions`); exit 2 without --base-model."""
    if not base_model:
        print_error(console, "--provider hf needs --base-model FOLDER: a model you downloaded yourself, e.g. "
                             "`huggingface-cli download Qwen/Qwen2.5-0.5B --local-dir models/qwen2.5-0.5b` "
                             "(see docs/finetune-open-model.md)")
        raise typer.Exit(2)
    from beep.finetune.hf.train import HFOptions

    def names(value: Optional[str]) -> tuple[str, ...]:
        return tuple(n.strip() for n in (value or "").split(",") if n.strip())

    return HFOptions(base_model=base_model, target_modules=names(lora_target_modules),
                     modules_to_save=names(modules_to_save), n_epochs=n_epochs or 3, batch_size=batch_size or 8,
                     **settings)


class _NoExport(LookupError):
    """There is no successful export to fine-tune on (nothing was started)."""


def _train(paths: Paths, *, export: str | None, **settings: Any) -> "FinetuneResult":
    """Start (or find, or follow) the job on ``export`` (default: the latest successful export)."""
    from beep.export.api import latest_export_id
    from beep.finetune.api import finetune

    if not export:
        try:
            export = latest_export_id(paths)
        except LookupError as err:
            raise _NoExport(str(err)) from None
    return finetune(paths, export_id=export, **settings)


def _interrupted(console: "Console", provider: str, remote: bool, job_id: str | None) -> NoReturn:
    """Ctrl-C: say how to resume (hf: from its checkpoint; remote: the job keeps running), exit 130."""
    if provider == "hf":
        console.print("interrupted: run the same command again to resume from the last checkpoint")
    elif remote and job_id:
        console.print(f"interrupted: job {job_id} keeps running at the provider: follow it again with "
                      f"`beep finetune --attach {job_id}`, or run the same command again")
    elif remote:
        console.print("interrupted before a job was recorded: run the same command again (an upload or a job "
                      "the provider made in the last instant is found by its tag and reused, not made twice)")
    raise typer.Exit(130) from None


def _failed(console: "Console", err: Exception, remote: bool) -> NoReturn:
    """A failure: its message, and for a remote job whether it still runs and how to follow it; exit 1."""
    from beep.finetune.api import CostLimitExceeded, FinetuneFailed
    from beep.finetune.remote import FineTuningUnavailable

    from beep.llm.client import MissingCredentials

    print_error(console, err)
    # refused before anything was uploaded or started (as refine's --max-cost refusal: exit 2)
    if isinstance(err, (MissingCredentials, _NoExport, CostLimitExceeded)):
        raise typer.Exit(2) from err
    if isinstance(err, FineTuningUnavailable):  # the message says what happened and where to go instead
        raise typer.Exit(1) from err
    job_id = getattr(err, "job_id", None)
    if remote and job_id and not isinstance(err, FinetuneFailed):
        console.print(f"Job {job_id} keeps running at the provider: `beep finetune --attach {job_id}` follows it again.")
    elif remote and not job_id:
        console.print("No job was recorded. Run the same command again: a job the provider created before the "
                      "error is found by its settings tag and followed, not started twice.")
    raise typer.Exit(1) from err


def _print_result(result: "FinetuneResult", as_json: bool) -> None:
    """The job on stdout: one line, or JSON with ``--json``."""
    if as_json:
        typer.echo(json.dumps({
            "job_id": result.job_id, "provider": result.provider, "status": result.status,
            "fine_tuned_model": result.fine_tuned_model, "seconds": result.seconds, "export_id": result.export_id,
            "reused": result.reused, "artifact_path": result.artifact_path, "artifact_sha256": result.artifact_sha256,
            "trained_tokens": result.trained_tokens, "error": result.error, "kept_from": result.kept_from,
            "decision": result.decision,
        }, indent=2))
        return
    verb = "existing job" if result.reused else "job"
    typer.echo(f"{verb} {result.job_id} ({result.provider}) {result.status}: {result.fine_tuned_model}"
               + (f" in {result.seconds:.2f} s" if result.seconds is not None else ""))


def cancel_command(
    job_id: Annotated[str, typer.Argument(help="The job to cancel (finetune_jobs.job_id).")],
    db: DbOption = None,
    base_url: BaseUrlOption = None,
    azure_endpoint: AzureEndpointOption = None,
    api_version: ApiVersionOption = None,
) -> None:
    """Cancel a remote fine-tuning job and record its final state."""
    from beep.finetune.api import cancel

    console = make_console(stderr=True)
    try:
        result = cancel(default_paths(db), job_id, base_url=base_url, azure_endpoint=azure_endpoint, api_version=api_version)
    except Exception as err:
        print_error(console, err)
        raise typer.Exit(1) from err
    typer.echo(f"job {result.job_id} {result.status}")


def merge_command(
    job_id: Annotated[str, typer.Argument(help="The hf job (finetune_jobs.job_id, or its model name hf:<job_id>).")],
    out: Annotated[str, typer.Argument(help="A new folder for the merged model (config, weights, tokenizer).")],
    db: DbOption = None,
    device: Annotated[Literal["cpu", "cuda", "auto"], typer.Option("--device", help="Where to merge (cpu needs the model's size in RAM).")] = "cpu",
) -> None:
    """Merge an hf job's LoRA adapter into its base model and save the result: a plain model folder to
    serve with `vllm serve OUT` or convert to GGUF with llama.cpp's convert_hf_to_gguf.py."""
    from pathlib import Path

    from beep.finetune.tracking import get_job

    console = make_console(stderr=True)
    paths = default_paths(db)
    job = get_job(paths.duckdb, job_id.removeprefix("hf:")) if paths.duckdb.exists() else None
    if job is None or job.provider != "hf" or job.status != "succeeded" or not job.artifact_path:
        print_error(console, f"no succeeded `--provider hf` job {job_id!r} in {paths.duckdb} "
                             "(select job_id, provider, status from finetune_jobs)")
        raise typer.Exit(1)
    from beep.finetune.hf.artifacts import merge_adapter

    try:
        merged = merge_adapter(Path(job.artifact_path), job.artifact_sha256, Path(out), device=device)
    except Exception as err:
        print_error(console, err)
        raise typer.Exit(1) from err
    typer.echo(f"merged {job.job_id} into {job.base_model}: {merged}")


def main() -> None:  # pragma: no cover - `python -m beep.commands.finetune_cmd finetune ...`
    """Only the finetune commands, without importing every other step (quick to start in subprocess tests)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
