"""`beep prune`: remove what old exports, evaluation runs and models leave on disk (beep.prune)."""

from __future__ import annotations

from typing import Annotated

import typer

from beep.commands.options import DbOption, make_console, print_error
from beep.config import DEFAULT_KEEP_EXPORTS, default_paths


def register(app: typer.Typer) -> None:
    app.command("prune")(prune_command)


def prune_command(
    db: DbOption = None,
    keep: Annotated[int, typer.Option(min=1, help="How many of the newest exports to keep, with everything they need.")] = DEFAULT_KEEP_EXPORTS,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")] = False,
) -> None:
    """Remove the files and rows that old exports, their evaluation runs and models leave behind.

    Keeps the newest --keep exports, and what a daily run still reads: the exports of fine-tune jobs
    and evaluation runs still running, of the newest model and of its newest evaluation, and the model
    (and export) every kept job's model came from. Of the others it removes the JSONL files and rows of
    export_examples and export_checks, the evaluation runs' predictions, artifacts and reports, and
    the model artifacts no kept job needs. Their exports, eval_runs, metrics, alert_replay_curve and
    finetune_jobs rows stay (marked pruned_at). `beep run --keep` does the same after a run. Two
    DuckDB files sharing one work folder share these files: give a copy its own BEEP_WORKDIR first.
    """
    from beep.locks import StepBusy
    from beep.prune import prune

    console = make_console(stderr=True)
    paths = default_paths(db)
    try:
        done = prune(paths, keep, dry_run=dry_run)
    except (FileNotFoundError, StepBusy, ValueError) as err:
        print_error(console, err)
        raise typer.Exit(2) from err
    console.print(done.summary(dry_run=dry_run), highlight=False, markup=False, soft_wrap=True)
    for export_id, why in done.reasons.items():
        console.print(f"  kept export {export_id}: {why}", highlight=False, markup=False)
    if dry_run:
        for path in done.removed:
            console.print(f"  would remove {path}", highlight=False, markup=False)
