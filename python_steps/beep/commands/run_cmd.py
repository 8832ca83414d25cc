"""`beep run`: the whole chain in one command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from beep.evaluate.api import EvalResult
    from beep.pipeline import RunResult

from beep.commands.options import (
    DEFAULT_POLL_INTERVAL_SECONDS,
    AnyProvider,
    DbOption,
    ExportFormat,
    PollIntervalOption,
    bad_option,
    make_console,
    print_error,
)
from beep.commands.vars_option import VarOption, var_options
from beep.config import DEFAULT_KEEP_EXPORTS, default_paths
from beep.providers import CHAIN, ProviderCannot, describe
from beep.providers import get as get_provider

#: The headline columns printed at the end, in order.
_COLUMNS = (("person_top_1", "top-1"), ("person_top_5", "top-5"), ("outsider_top_5", "top-5 not in conv."),
            ("alert_precision_person", "next-reply precision"), ("alert_recall_person", "next-reply recall"),
            ("f1_macro", "label macro F1"))


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _fmt_small(value: float | None) -> str:
    """A rate that may be far below 0.001 (alerts per person per day in a workspace of thousands)."""
    return "–" if value is None else f"{value:.3f}" if value == 0 or value >= 0.001 else f"{value:.1e}"


def _priced(provider: str) -> bool:
    """Whether the registry says ``provider`` charges (an unknown name counts as charging: say what it cost)."""
    try:
        return get_provider(provider).priced
    except ValueError:
        return True


def spend_line(result: RunResult) -> str | None:
    """What the paid steps of this run cost, when any step used a provider that charges."""
    refine, finetune, evaluation = result.refine, result.finetune, result.evaluation
    paid = [s for s in (refine and refine.provider, finetune and finetune.provider, evaluation and evaluation.provider)
            if s and _priced(s)]
    if not paid:
        return None
    parts = [f"refine ${refine.cost:.4f}" if refine else "refine –"]
    if finetune is not None and _priced(finetune.provider):
        est = finetune.estimate
        what = "reused job, nothing new" if finetune.reused else (f"≈ ${est.usd:.2f} estimated" if est else "price unknown")
        parts.append(f"fine-tune {what}")
    if evaluation is not None:
        parts.append("evaluate " + ("reused run, nothing new" if evaluation.reused
                                    else f"${evaluation.cost:.4f}" if evaluation.cost is not None else "price unknown"))
    return "spent: " + ", ".join(parts)


def print_alert_replay(evaluation: EvalResult, console: Console) -> None:
    """What the app would do, first: each ranker at its operating point on the evaluated period
    (beep.evaluate.alert_replay), the model first, then the alert head, then the baselines."""
    rows = {name: slices["alert_replay"] for name, slices in evaluation.headline.items() if "alert_replay" in slices}
    if not rows:
        return
    table = Table(title="alerts the app would send (replayed on the evaluated period, each at its operating point)",
                  title_justify="left")
    for header in ("model", "min prob.", "precision", "recall (joins)", "alerts / person / day", "alerts",
                   "target met on tune"):
        table.add_column(header, justify="left" if header == "model" else "right", no_wrap=True)
    order = sorted(rows, key=lambda n: (not n.startswith(evaluation.model), "baseline" in n, n))
    for name in order:
        v = rows[name]
        table.add_row(name, _fmt(v.get("min_probability")), _fmt(v.get("precision")), _fmt(v.get("recall")),
                      _fmt_small(v.get("alerts_per_person_day")), f"{int(v.get('alerts') or 0):,}",
                      "yes" if v.get("target_reached") else "no",
                      style="bold" if name == evaluation.model else None)
    console.print(table)
    console.print("precision: the alerted person wrote in the conversation, or reacted to one of its messages, within "
                  "the alert window; recall: of the "
                  "people who joined a conversation someone else started, the share alerted before; the operating "
                  "point is the lowest threshold whose precision reached the target on the newest part of the train "
                  "period (\"target met on tune\": it did there; the evaluated period's precision, in this table, may "
                  "still fall short; docs/evaluation.md)", highlight=False)


def mention_line(headline: dict[str, dict[str, dict[str, float | None]]], model: str) -> str | None:
    """Person top-1 of ``model`` beside the mention rule's on the two mention slices (metrics.MENTION_SLICES),
    or None when the split has no @-mention (or the run predates the slices)."""
    from beep.evaluate.baselines import MENTIONED_THEN_CHANNEL

    parts = []
    for slice_name, where in (("mentioned", "where the window @-mentions someone"),
                              ("responder_mentioned", "where the responder was @-mentioned")):
        mine = headline.get(model, {}).get(slice_name, {}).get("person_top_1")
        rule = headline.get(MENTIONED_THEN_CHANNEL, {}).get(slice_name, {}).get("person_top_1")
        if mine is not None and rule is not None:
            parts.append(f"{where} {_fmt(mine)}{' ▼' if rule > mine else ''} (the mention rule {_fmt(rule)})")
    return "person top-1 " + "; ".join(parts) if parts else None


def print_headline(result: RunResult, console: Console,
                   comparison: tuple[str | None, dict[str, dict[str, tuple[float | None, float | None]]]] | None = None) -> None:
    """The model's headline metrics beside the baselines, overall and for newcomers; with
    ``comparison`` (see beep.evaluate.api.compare_with_previous), the change since the previous run
    of the same kind."""
    evaluation = result.evaluation
    if evaluation is None:
        return
    print_alert_replay(evaluation, console)
    for slice_name, title in (("all", "all replies"), ("newcomer", "newcomers only (responder had not written yet)")):
        columns = [(m, label) for m, label in _COLUMNS if slice_name == "newcomer" or not m.startswith("outsider")]
        n = evaluation.n if slice_name == "all" else evaluation.n_newcomer
        table = Table(title=f"{evaluation.model} on {n:,} validation examples — who writes the next reply, {title}", title_justify="left")
        table.add_column("model", no_wrap=True)
        for _, label in columns:
            table.add_column(label, justify="right", no_wrap=True)
        best_baseline = {m: max((v.get(slice_name, {}).get(m) or 0.0) for k, v in evaluation.headline.items()
                                if k != evaluation.model) for m, _ in columns}
        for name, slices in sorted(evaluation.headline.items(), key=lambda kv: (kv[0] != evaluation.model, kv[0])):
            if "all" not in slices and "newcomer" not in slices:
                continue  # a ranker of the alert replay only (the alert head, its baselines): in the table above
            values = slices.get(slice_name, {})
            style = "bold" if name == evaluation.model else None
            cells = [_fmt(values.get(metric)) for metric, _ in columns]
            if name == evaluation.model:
                cells = [c + (" ▼" if values.get(m) is not None and values[m] < best_baseline[m] else "")
                         for c, (m, _) in zip(cells, columns)]
            table.add_row(name, *cells, style=style)
        console.print(table)
    console.print("top-k: the person who answered is among the first k people ranked; not in conv.: only people not "
                  "yet in the conversation are ranked; ▼: a baseline beats the model on this column", highlight=False)
    mentions = mention_line(evaluation.headline, evaluation.model)
    if mentions:
        console.print(mentions, highlight=False)
    if comparison is not None:
        previous, values = comparison
        if previous is None:
            console.print("first evaluation of this kind (provider, model variant, export settings, split): nothing to compare with")
        else:
            parts = []
            for slice_name in ("all", "newcomer"):
                for metric, label in _COLUMNS:
                    now, before = values.get(slice_name, {}).get(metric, (None, None))
                    if now is not None and before is not None:
                        change = round(now - before, 3) + 0.0  # + 0.0: a change that rounds to zero is never "-0.000"
                        parts.append(f"{label}{' (new)' if slice_name == 'newcomer' else ''} {change:+.3f}")
            console.print(f"since the previous run of this kind ({previous}): " + (", ".join(parts) or "no metric in common"),
                          highlight=False)
    steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.seconds.items())
    console.print(f"steps: {steps}")
    spend = spend_line(result)
    if spend:
        console.print(spend)
    console.print(f"[bold]report:[/bold] {result.report_path}")


def run_command(
    export: Annotated[
        Optional[Path],
        typer.Argument(help="The Slack export (.zip or folder). Default: the export this DuckDB file was last built from "
                            "(refused, naming it, when that ingest was refused or the export is gone); the bundled "
                            "sample workspace only on a fresh DB.", show_default=False),
    ] = None,
    db: DbOption = None,
    provider: Annotated[
        AnyProvider,
        typer.Option(help="Who refines, fine-tunes and predicts: one provider that does the whole chain: "
                          + describe(*CHAIN) + ". A provider that cannot (hf: no refine classifier) is refused, "
                          "saying what to run instead."),
    ] = "local",
    refine_model: Annotated[
        Optional[str], typer.Option(help="Chat model of the few-shot strong/weak classifier (openai provider).", show_default=False)
    ] = None,
    base_model: Annotated[
        Optional[str], typer.Option(help="Model to fine-tune and whose tokenizer the export checks (openai provider).", show_default=False)
    ] = None,
    export_format: Annotated[
        ExportFormat, typer.Option("--format", help="JSONL format: 'chat' (messages) or 'completion' (prompt/completion).")
    ] = "chat",
    tests: Annotated[bool, typer.Option(help="Run dbt's data and unit tests during the build.")] = True,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the dataset even when the export and the dbt project are unchanged, "
                                               "every table included (dbt --full-refresh).")] = False,
    retrain: Annotated[bool, typer.Option(help="Train a new local ranker for the new export even when the model of an "
                                               "earlier export could be kept (see `beep finetune --retrain`).")] = False,
    resplit: Annotated[bool, typer.Option(help="Compute the boundary between train and validation anew, instead of keeping "
                                               "the previous export's while validation holds within 25% of its fraction "
                                               "(see `beep export --resplit`); a new train split usually retrains.")] = False,
    keep: Annotated[int, typer.Option(
        min=0, help="After the run, keep the newest KEEP exports (with what their models and evaluations need) and remove "
                    "the JSONL files, example rows, predictions and model artifacts older ones left, as `beep prune` "
                    "does; 0 keeps everything.")] = DEFAULT_KEEP_EXPORTS,
    var: VarOption = None,
    max_cost: Annotated[
        Optional[float],
        typer.Option(min=0.0, help="Budget in USD for the paid steps (openai provider): refine refuses to start when its "
                                   "estimate is above it, fine-tuning refuses to upload when its estimate is above what "
                                   "refine left, and evaluation stops sending before it would pass what the two left "
                                   "(it keeps its answers: a rerun with a larger budget asks only the rest).",
                     show_default=False),
    ] = None,
    poll_interval: PollIntervalOption = DEFAULT_POLL_INTERVAL_SECONDS,
) -> None:
    """Run the whole chain: ingest → dbt build → refine → export → fine-tune → evaluate → report.

    Offline with the local provider by default. Rerunning does no step twice; if a step fails, the
    message names it, and the same command resumes from there.
    """
    # wrong choices (Literal: checked by click), a provider that cannot do the chain and bad vars are
    # refused now, not after minutes of ingest and build
    console = make_console(stderr=True)
    try:
        get_provider(provider).require(*CHAIN)
    except ProviderCannot as err:
        bad_option(console, f"--provider {provider}: {err}")
    dbt_vars = var_options(var)
    from beep.pipeline import RunOptions, StepFailed, run_pipeline  # heavy: keeps `beep --help` fast
    options = RunOptions(export=export, provider=provider, refine_model=refine_model, base_model=base_model,
                         export_format=export_format, run_tests=tests, rebuild=rebuild, dbt_vars=dbt_vars,
                         max_cost=max_cost, poll_interval=poll_interval, retrain=retrain, keep=keep,
                         resplit=resplit)
    paths = default_paths(db)
    try:
        result = run_pipeline(paths, options, console)
    except StepFailed as err:
        from beep.build import BuildRefused
        from beep.ingest import IngestError

        if isinstance(err.__cause__, (IngestError, BuildRefused)):
            # the export was refused before any work (as `beep ingest` or `beep build` refuses it: the last
            # ingest was refused, or the export is gone): nothing to resume, exit 2
            print_error(console, err.__cause__)
            raise typer.Exit(code=2) from err
        print_error(console, err)
        raise typer.Exit(code=1) from err
    comparison = None
    if result.evaluation is not None:
        from beep.evaluate.api import compare_with_previous

        comparison = compare_with_previous(paths, result.evaluation.eval_run_id, [m for m, _ in _COLUMNS])
    print_headline(result, make_console(), comparison)
