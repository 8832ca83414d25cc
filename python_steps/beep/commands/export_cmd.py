"""`beep export`: validated train/validation JSONL from the dataset in DuckDB."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Literal, Optional

import typer
from rich.table import Table

from beep.commands.options import BAD_OPTION_EXIT, DbOption, ExportFormat, make_console, print_error
from beep.config import default_paths
from beep.export.models import DEFAULT_BASE_MODEL


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


def export_command(
    db: DbOption = None,
    format: Annotated[
        ExportFormat,
        typer.Option("--format", help="chat: {messages: \\[system, user = prompt, assistant = label]} (gpt-4o/4.1 family); "
                     "completion: {prompt, completion} (babbage-002 / davinci-002)."),
    ] = "chat",
    base_model: Annotated[
        str,
        typer.Option("--base-model", help="The model to fine-tune: its tokenizer counts tokens, sets the token limit and "
                     "the label form (each label must be one token); its training price gives the cost estimate."),
    ] = DEFAULT_BASE_MODEL,
    unrefined: Annotated[
        bool,
        typer.Option("--unrefined", help="Export training_examples as built, instead of refined_training_examples "
                     "(where `beep refine` turned weak examples into nil)."),
    ] = False,
    split: Annotated[
        Literal["time", "conversation"],
        typer.Option("--split", help="time: the newest conversations go to validation; conversation: conversations "
                     "drawn by a hash seeded with --seed. Never a conversation on both sides."),
    ] = "time",
    valid_fraction: Annotated[
        float, typer.Option("--valid-fraction", min=0.01, max=0.99, help="Share of examples (in whole conversations) for validation.")
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --split conversation.")] = 0,
    resplit: Annotated[
        bool,
        typer.Option("--resplit", help="--split time: compute the boundary between train and validation anew. Without it "
                     "an export keeps the boundary of the latest export with the same --valid-fraction while validation "
                     "holds within 25% of that fraction, so a new day's examples only add to validation."),
    ] = False,
    system_prompt: Annotated[
        Optional[str],
        typer.Option("--system-prompt", help="System message of every chat example (default: Beep's task description).",
                     show_default=False),
    ] = None,
    no_system_prompt: Annotated[bool, typer.Option("--no-system-prompt", help="Write chat examples without a system message.")] = False,
    max_example_tokens: Annotated[
        Optional[int],
        typer.Option("--max-example-tokens", min=1, help="Token limit of one example (default: the base model's documented "
                     "training context; required for models Beep does not know).", show_default=False),
    ] = None,
    n_epochs: Annotated[
        Optional[int],
        typer.Option("--n-epochs", min=1, help="Epochs assumed by the cost estimate (default: the number OpenAI picks for "
                                               "a job without n_epochs, by the size of the training file: 3, fewer for large "
                                               "files, more for tiny ones).", show_default=False),
    ] = None,
    min_train_examples: Annotated[int, typer.Option("--min-train-examples", min=1, help="Fewer training examples is an error.")] = 10,
    max_majority_share: Annotated[
        float, typer.Option("--max-majority-share", min=0.0, max=1.0, help="Warn when one label has more than this share of train.")
    ] = 0.5,
    min_label_examples: Annotated[int, typer.Option("--min-label-examples", min=1, help="Warn about labels with fewer training examples.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Split without leakage, render, check and write train/valid JSONL; record everything in tables
    exports, export_checks, export_examples and export_labels.

    The same inputs and settings give the same export id and byte-identical files (nothing is
    rewritten on a rerun). An error check stops the export (nothing written); warnings are kept."""
    from beep.export.api import ExportFailed, export
    from beep.export.checks import Thresholds
    from beep.export.cost import estimate_cost
    from beep.export.render import DEFAULT_SYSTEM_PROMPT
    from beep.llm.pricing import UnknownModelPrice

    console = make_console(stderr=True)
    paths = default_paths(db)
    try:
        result = export(
            paths,
            format=format,
            base_model=base_model,
            refined=not unrefined,
            split_method=split,
            valid_fraction=valid_fraction,
            seed=seed,
            system_prompt=None if no_system_prompt else (system_prompt or DEFAULT_SYSTEM_PROMPT),
            max_example_tokens=max_example_tokens,
            thresholds=Thresholds(min_train_examples, max_majority_share, min_label_examples),
            resplit=resplit,
        )
    except ExportFailed as err:
        console.print(checks_table(err.checks))
        print_error(console, err)
        raise typer.Exit(1) from err
    except (LookupError, ValueError, FileNotFoundError) as err:
        print_error(console, err)
        raise typer.Exit(BAD_OPTION_EXIT) from err
    try:
        estimate = estimate_cost(paths.project_dir, base_model, result.tokens_per_epoch, n_epochs,
                                 n_train=result.n_train).describe()
    except (UnknownModelPrice, ValueError) as err:
        estimate = f"no cost estimate: {err}"
    if as_json:
        typer.echo(json.dumps({
            "export_id": result.export_id, "status": result.status, "reused": result.reused, "format": result.format,
            "base_model": result.base_model, "train_path": str(result.train_path), "valid_path": str(result.valid_path),
            "train_sha256": result.train_sha256, "valid_sha256": result.valid_sha256, "n_train": result.n_train,
            "n_valid": result.n_valid, "n_excluded": result.n_excluded, "label_prefix": result.label_prefix,
            "tokens_per_epoch": result.tokens_per_epoch, "estimate": estimate, "summary": result.summary,
            "label_counts": result.label_counts,
            "token_lengths": asdict(result.token_lengths) if result.token_lengths else None,
            "prompts_counted": result.prompts_counted, "split": result.split_note,
            "train_kept_from": result.train_kept_from, "train_relabelled": result.train_relabelled,
            "valid_from": result.settings.get("valid_from"),
        }, indent=2))
        return
    out = make_console()
    out.print(checks_table(result.checks))
    out.print(labels_table(result.label_counts))
    verb = "unchanged (files already written, checksums match)" if result.reused else "written"
    out.print(f"export {result.export_id} {verb}: {result.n_train} train / {result.n_valid} valid examples "
              f"({result.n_excluded} left out), {result.summary['warnings']} warning(s)")
    out.print(f"  train {result.train_path}\n  valid {result.valid_path}")
    if result.split_note:
        out.print(f"  {result.split_note}", highlight=False)
    if result.train_kept_from:
        out.print(f"  train split: that of export {result.train_kept_from}: {_kept_train(result.train_relabelled)}, "
                  "only the validation split rendered", highlight=False)
    if result.token_lengths:
        out.print(f"  {result.token_lengths.describe()}")
    if result.prompts_counted is not None:
        total = result.n_train + result.n_valid
        out.print(f"  tokenizer: counted {result.prompts_counted:,} of {total:,} prompts"
                  + (", the others' counts known from earlier exports" if result.prompts_counted < total else ""))
    out.print(f"  {estimate}")


def checks_table(checks: list) -> Table:
    table = Table(title="export checks")
    for column in ("check", "severity", "result", "count", "message"):
        table.add_column(column)
    for c in checks:
        status = "[green]ok[/green]" if c.passed else ("[red]FAILED[/red]" if c.severity == "error" else "[yellow]warn[/yellow]")
        table.add_row(c.check, c.severity, status, str(c.count), c.message)
    return table


def labels_table(label_counts: dict[str, dict[str, int]]) -> Table:
    table = Table(title="stratification per label")
    for column in ("label", "train", "valid", "valid share"):
        table.add_column(column, justify="right")
    for label, counts in label_counts.items():
        total = counts["train"] + counts["valid"]
        table.add_row(label, str(counts["train"]), str(counts["valid"]), f"{counts['valid'] / total:.0%}" if total else "-")
    return table


def _kept_train(relabelled: int) -> str:
    """What happened to a kept train split's file and checks (ExportResult.train_relabelled)."""
    if not relabelled:
        return "its file and checks copied"
    return (f"its file and checks copied with the labels of {relabelled:,} example{'s' if relabelled != 1 else ''} "
            "moved (a person entered or left the labels, or a verdict changed)")
