"""The `beep` command line: a thin layer over the step modules.

Every command's --help explains every option; the work happens in the modules they call.
"""

from __future__ import annotations

import typer

from beep.commands import build_cmd, evaluate_cmd, export_cmd, finetune_cmd, ingest_cmd, predict_cmd, refine_cmd, report_cmd, run_cmd, sample_cmd

app = typer.Typer(
    name="beep",
    help=(
        "Beep turns a Slack workspace export into training data and a model that predicts who "
        "should be alerted about a conversation. All state lives in one DuckDB file."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (run_cmd, ingest_cmd, build_cmd, sample_cmd, refine_cmd, export_cmd, finetune_cmd, evaluate_cmd, report_cmd, predict_cmd):
    _module.register(app)


def main() -> None:
    """The console entry point: `app`, with the errors every command can meet about the DuckDB file
    (locked by another process, not a DuckDB file) shown as a message instead of a traceback."""
    from beep.db import DatabaseBusy, DatabaseUnreadable

    try:
        app()
    except (DatabaseBusy, DatabaseUnreadable) as err:
        from rich.console import Console

        from beep.commands.options import print_error

        print_error(Console(stderr=True), err)
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
