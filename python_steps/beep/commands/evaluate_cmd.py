"""`beep evaluate`: score a fine-tuned model and the baselines on an export's validation split."""

from __future__ import annotations

import json
from typing import Annotated, Literal, Optional

import typer

from beep.commands.options import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_TRIES,
    DEFAULT_TIMEOUT_SECONDS,
    ApiVersionOption,
    AzureEndpointOption,
    BaseUrlOption,
    ConcurrencyOption,
    DbOption,
    MaxTriesOption,
    ProviderOverrideOption,
    RpmOption,
    TimeoutOption,
    TpmOption,
    make_console,
    print_error,
)
from beep.config import default_paths


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)


def evaluate_command(
    db: DbOption = None,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            help="The model to evaluate: a fine-tune job id or its fine-tuned model name (local:<job>, ft:...). "
            "Default: the latest succeeded `beep finetune` job. An OpenAI-compatible model no job knows needs --export.",
            show_default=False,
        ),
    ] = None,
    export: Annotated[
        Optional[str],
        typer.Option("--export", help="The export whose split and label mapping to use (default: the model's own export).", show_default=False),
    ] = None,
    split: Annotated[Literal["valid", "train"], typer.Option("--split", help="Which split of the export to score.")] = "valid",
    provider: ProviderOverrideOption = None,
    top_k: Annotated[
        int,
        typer.Option("--top-k", min=1, max=20, help="Labels ranked and stored per example (OpenAI caps it: 5 for completions, 20 for chat)."),
    ] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Local model: examples per batch (each batch is stored as it finishes).")] = 256,
    new_run: Annotated[
        bool,
        typer.Option("--new-run", help="Start a new run even if this model was already evaluated on this export and split (by default the finished run is reused)."),
    ] = False,
    base_url: BaseUrlOption = None,
    concurrency: ConcurrencyOption = DEFAULT_CONCURRENCY,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_SECONDS,
    max_tries: MaxTriesOption = DEFAULT_MAX_TRIES,
    max_retries: Annotated[Optional[int], typer.Option("--max-retries", min=0, hidden=True, help="Old spelling: --max-tries N+1.")] = None,
    azure_endpoint: AzureEndpointOption = None,
    api_version: ApiVersionOption = None,
    alert_window: Annotated[float, typer.Option(
        "--alert-window", min=1.0, help="Alert replay: an alert is useful when its person writes in the conversation "
                                         "within this many minutes (and a join is recalled when it was alerted at most "
                                         "this long before).")] = 60.0,
    target_precision: Annotated[float, typer.Option(
        "--target-precision", min=0.0, max=1.0,
        help="Alert replay: the operating point is the lowest threshold whose precision on the newest part of the "
             "train period reaches this; `beep slack serve` uses it as its --min-probability.")] = 0.5,
    alert_head: Annotated[bool, typer.Option(
        "--alert-head", help="Alert replay: also train the alert head (a classifier of 'joins within the window' "
                             "for people outside the conversation) and replay it beside the ranker; off by default: "
                             "measured, it served worse than the ranker (docs/evaluation.md).")] = False,
    max_cost: Annotated[Optional[float], typer.Option(
        "--max-cost", min=0.0, help="OpenAI-compatible models: USD this run may spend. No request is sent unless what "
                                    "it spent, plus the most the requests in flight could cost, stays within it; what "
                                    "is left unsent is asked by the next run.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result (run id, headline metrics per model and slice) as JSON on stdout.")] = False,
) -> None:
    """Score a model on its export's validation split beside four baselines, into DuckDB.

    Every metric is computed on all examples and on the newcomer slice (the responder had not written
    in the conversation yet); predictions and metrics go to tables eval_runs / predictions / metrics.
    Rerunning with the same model, export and split reuses the finished run; a killed run resumes
    without predicting any example twice. `beep report` renders a run as HTML."""
    from beep.evaluate.api import EvalOptions, evaluate, headline_table
    from beep.labels import EvaluationInputError

    console = make_console(stderr=True)
    paths = default_paths(db)
    options = EvalOptions(
        provider=provider, top_k=top_k, batch_size=batch_size, new_run=new_run, base_url=base_url,
        concurrency=concurrency, rpm=rpm, tpm=tpm, timeout=timeout,
        max_retries=max_retries if max_retries is not None else max_tries - 1,
        azure_endpoint=azure_endpoint, api_version=api_version,
        alert_window_minutes=alert_window, target_precision=target_precision, alert_head=alert_head,
        max_cost=max_cost,
    )
    try:
        result = evaluate(paths, model=model, export_id=export, split=split, options=options, console=console)
    except (EvaluationInputError, FileNotFoundError) as err:
        print_error(console, err)
        raise typer.Exit(2) from err
    if as_json:
        typer.echo(json.dumps({
            "eval_run_id": result.eval_run_id, "model": result.model, "export_id": result.export_id,
            "split": result.split, "n": result.n, "n_newcomer": result.n_newcomer, "provider": result.provider,
            "reused": result.reused, "cost": result.cost, "headline": result.headline,
        }, indent=2))
        return
    out = make_console()
    from beep.commands.run_cmd import print_alert_replay

    print_alert_replay(result, out)  # what the app would do first (issue 23), then who writes the next reply
    out.print(headline_table(result))
    verb = "reused finished run" if result.reused else "finished run"
    cost = "" if result.cost is None else f", cost ${result.cost:.4f}"
    out.print(f"{verb} {result.eval_run_id} ({result.n} examples{cost}); render it with `beep report --run {result.eval_run_id}`")
