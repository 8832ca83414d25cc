"""`beep report`: render an evaluation run as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from beep.commands.options import DbOption, make_console, print_error
from beep.config import default_paths


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)


def report_command(
    db: DbOption = None,
    run: Annotated[
        Optional[str],
        typer.Option("--run", help="The eval run to render (eval_runs.eval_run_id). Default: the latest finished run.", show_default=False),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", help="Where to write the HTML file: a file name, or a folder to write <run>.html into (default: <workdir>/artifacts/reports/<run>.html).", show_default=False),
    ] = None,
) -> None:
    """Write a self-contained HTML report of an evaluation run and print its path.

    First the alerts the app would send (the alert replay: precision-recall curve with each ranker's
    operating point, alerts per person per day, a sample of alerts with reasons and outcomes), then
    model vs baselines on the next reply (all examples and newcomer slice), top-k curve, per-label F1
    and support, confusion matrix, and what the numbers mean. Charts are embedded PNGs: the file is
    all there is."""
    from beep.labels import EvaluationInputError
    from beep.evaluate.report import latest_run_id, write_report

    console = make_console(stderr=True)
    paths = default_paths(db)
    try:
        eval_run_id = run or latest_run_id(paths)
        path = write_report(paths, eval_run_id, out)
    except (EvaluationInputError, FileNotFoundError) as err:
        print_error(console, err)
        raise typer.Exit(2) from err
    typer.echo(str(path))
