"""The `beep` command line: a thin layer over the step modules.

Every command's --help explains every option; the work happens in the modules they call.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Optional

import typer
import typer.core
import typer.rich_utils

from beep.commands import (build_cmd, evaluate_cmd, export_cmd, finetune_cmd, ingest_cmd, predict_cmd, prune_cmd, refine_cmd,
                           report_cmd, run_cmd, sample_cmd, slack_cmd)

app = typer.Typer(
    name="beep",
    help=(
        "Beep turns a Slack workspace export into training data and a model that predicts who "
        "should be alerted about a conversation. All state lives in one DuckDB file.\n\n"
        "Every environment variable Beep reads, and the options commands share: docs/configuration.md."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
)


def _flags_without_metavar() -> None:
    """An on/off flag takes no value: show nothing where typer would print a misleading ``<bool>``."""
    original = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: typer.Context) -> Optional[str]:
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return original(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_metavar()
if typer.rich_utils.MAX_WIDTH is None and not sys.stdout.isatty():
    # help piped into a file or `less`: 80 columns would cut option names and env vars with "…"
    typer.rich_utils.MAX_WIDTH = 120


def package_version() -> str:
    try:
        return version("beep")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"beep {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print Beep's version and exit."),
    ] = None,
) -> None:
    pass  # no docstring: the help shown is the app's (above)

for _module in (run_cmd, ingest_cmd, build_cmd, sample_cmd, refine_cmd, export_cmd, finetune_cmd, evaluate_cmd, report_cmd, predict_cmd,
                slack_cmd, prune_cmd):
    _module.register(app)


def main() -> None:
    """The console entry point: `app`, with the errors every command can meet about the DuckDB file
    (locked by another process, not a DuckDB file) shown as a message instead of a traceback, and
    Ctrl-C, SIGTERM and SIGHUP turned into an orderly stop (the step records its run as interrupted)
    and the exit codes 130, 143 and 129 (beep.interrupts)."""
    from beep.db import DatabaseBusy, DatabaseUnreadable
    from beep.interrupts import run_stoppable

    def call() -> None:
        try:
            app()
        except (DatabaseBusy, DatabaseUnreadable) as err:
            from rich.console import Console

            from beep.commands.options import print_error

            print_error(Console(stderr=True), err)
            raise SystemExit(1) from None

    run_stoppable(call)


if __name__ == "__main__":  # pragma: no cover
    main()
