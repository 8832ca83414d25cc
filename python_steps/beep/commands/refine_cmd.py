"""`beep refine` (strong / weak verdicts for every training example); `beep fewshot suggest` is in fewshot_cmd."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from beep.commands.options import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_TRIES,
    DEFAULT_POLL_INTERVAL_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    BaseUrlOption,
    ConcurrencyOption,
    DbOption,
    MaxTriesOption,
    PollIntervalOption,
    RefineProvider,
    RpmOption,
    TimeoutOption,
    TpmOption,
    make_console,
    print_error,
)
from beep.config import default_paths
from beep.providers import describe


# The step modules (openai, scikit-learn) are imported inside the commands: `beep --help` stays fast.

from beep.commands.fewshot_cmd import fewshot_app  # `beep fewshot suggest`


def register(app: typer.Typer) -> None:
    app.command("refine")(refine_command)
    app.add_typer(fewshot_app, name="fewshot")


def refine_command(
    provider: Annotated[RefineProvider, typer.Option(help="Who decides: " + describe("refine") + ". 'local' is a scikit-learn classifier fitted on the few-shot set (deterministic).")] = "local",
    model: Annotated[Optional[str], typer.Option(help="Chat model (openai) or deployment name (azure); default gpt-4o-mini. Ignored by 'local'.", show_default=False)] = None,
    fewshot: Annotated[Optional[Path], typer.Option(help="Few-shot CSV (text, verdict, note, example_id), e.g. one curated from `beep fewshot suggest`. Default: the bundled sample's set (seeds/fewshot_examples.csv) when the dataset is the sample, else the generic set (seeds/fewshot_generic.csv); refine says which it used. The environment variable BEEP_FEWSHOT names a file too (then `beep run` uses it as well).", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per request; answers are JSON keyed by the examples' numbers.")] = 20,
    concurrency: ConcurrencyOption = DEFAULT_CONCURRENCY,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    rate_window: Annotated[float, typer.Option(min=0.001, help="Length in seconds of the window --rpm/--tpm apply to (60 = per minute; smaller only to simulate).")] = 60.0,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_SECONDS,
    max_tries: MaxTriesOption = DEFAULT_MAX_TRIES,
    retry_base: Annotated[float, typer.Option(min=0.0, help="First backoff wait in seconds (doubles, full jitter) when the server gives no retry-after.")] = 1.0,
    retry_cap: Annotated[float, typer.Option(min=0.0, help="Longest backoff wait in seconds.")] = 60.0,
    max_reasks: Annotated[int, typer.Option(min=0, help="How often ids missing from a malformed or partial answer are asked again.")] = 3,
    max_example_tokens: Annotated[int, typer.Option(min=1, help="Examples longer than this are recorded as refused (too long) without being sent.")] = 4000,
    logprobs: Annotated[bool, typer.Option("--logprobs", help="Ask for token log-probabilities and record the probability of each verdict as its confidence (some OpenAI-compatible servers don't support it).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be sent (requests, tokens counted with a real tokenizer, cost from seeds/model_prices.csv) and send nothing.")] = False,
    max_cost: Annotated[Optional[float], typer.Option(min=0.0, help="Budget in USD: refuse to start when the estimated cost (no caching, longest answers, no re-asks) is above it, and stop sending once what was spent plus the most the requests in flight could cost would pass it (the rest stays undecided; rerun with a larger budget).", show_default=False)] = None,
    batch_api: Annotated[bool, typer.Option("--batch-api", help="Submit through the Batch API (JSONL upload, poll, download; half price). Resumable: rerun to collect.")] = False,
    wait: Annotated[bool, typer.Option(help="With --batch-api: wait for the batches to finish (--no-wait submits and returns; rerun to collect).")] = True,
    poll_interval: PollIntervalOption = DEFAULT_POLL_INTERVAL_SECONDS,
    poll_seconds: Annotated[Optional[float], typer.Option(min=0.01, hidden=True, help="Old spelling of --poll-interval.")] = None,
    summarize_fewshot: Annotated[bool, typer.Option("--summarize-fewshot", help="Summarise long few-shot examples once (cached in DuckDB) so the prefix stays small.")] = False,
    summarize_over: Annotated[int, typer.Option(min=1, help="With --summarize-fewshot: summarise examples longer than this many tokens.")] = 120,
    base_url: BaseUrlOption = None,
    price_as: Annotated[Optional[str], typer.Option(help="Price the run as this model of seeds/model_prices.csv (e.g. an Azure deployment named otherwise).", show_default=False)] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (rate, spend, ETA).")] = True,
    refresh_models: Annotated[bool, typer.Option(help="Afterwards, (re)build the dbt views refined_training_examples / refine_verdict_counts when they are missing or were built before refine_verdicts existed.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Mark every training example strong or weak with a few-shot classifier; weak ones become ' nil'.

    Verdicts are stored in DuckDB (refine_verdicts) as they arrive, keyed by example x few-shot hash
    x provider x model: a rerun (even after kill -9) sends only examples still undecided. The model
    refined_training_examples shows the result.
    """
    from beep.db import DatabaseBusy
    from beep.dbt_runner import DbtFailed
    from beep.llm.client import MissingCredentials
    from beep.llm.pricing import UnknownModelPrice
    from beep.llm.runner import RunAborted
    from beep.refine.api import CostLimitExceeded, refine
    from beep.refine.fewshot import FewShotError
    from beep.refine.store import NoTrainingExamples

    err = make_console(stderr=True)
    try:
        summary = refine(
            default_paths(db), provider=provider, model=model, fewshot_path=fewshot, batch_size=batch_size,
            concurrency=concurrency, rpm=rpm, tpm=tpm, window_seconds=rate_window, timeout_seconds=timeout,
            max_tries=max_tries, retry_base_seconds=retry_base, retry_cap_seconds=retry_cap, max_reasks=max_reasks,
            max_example_tokens=max_example_tokens, logprobs=logprobs, dry_run=dry_run, max_cost=max_cost, batch_api_mode=batch_api,
            wait=wait, poll_seconds=poll_seconds if poll_seconds is not None else poll_interval, summarize=summarize_fewshot, summarize_over_tokens=summarize_over,
            base_url=base_url, price_model=price_as, progress=progress, refresh_dbt=refresh_models, console=err,
        )
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", None)  # beep.refine.api.Terminated: SIGTERM / SIGHUP
        err.print(
            f"[yellow]interrupted{f' ({exc})' if signum else ''}:[/] every answer received so far is stored in "
            "refine_verdicts and the run is recorded as interrupted with its cost; "
            "run the same command again to decide the rest."
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(128 + signum if signum else 130)  # don't wait for requests still in flight (their answers would be lost anyway)
    except CostLimitExceeded as exc:
        err.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    except (MissingCredentials, FewShotError, NoTrainingExamples, UnknownModelPrice, RunAborted, DatabaseBusy, DbtFailed, ValueError) as exc:
        print_error(err, exc)
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), default=str, indent=2))
    else:
        make_console().print(summary.line())
    if summary.n_failed or summary.n_unsent:
        for line in summary.failures[:10]:
            err.print(f"  undecided {line}", markup=False, emoji=False)
        left = summary.n_failed + summary.n_unsent
        err.print(f"[yellow]{left} example(s) still undecided: run the same command again to retry them "
                  f"(with a larger --max-cost if the budget stopped it). Until then refined_training_examples "
                  f"keeps using the last complete run.[/]")
        raise typer.Exit(code=3)


def main() -> None:  # pragma: no cover - `python -m beep.commands.refine_cmd refine ...`
    """Only the refine commands, without importing every other step (quick to start in subprocess tests)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
    register(app)
    from beep.interrupts import run_stoppable

    run_stoppable(app)  # signals as `beep refine` gets them (beep.cli.main)


if __name__ == "__main__":  # pragma: no cover
    main()
