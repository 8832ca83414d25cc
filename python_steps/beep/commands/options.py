"""Options several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

DbOption = Annotated[
    Optional[Path],
    typer.Option(
        "--db",
        envvar="BEEP_DUCKDB_PATH",
        help="The DuckDB file that holds all of Beep's state (default: beep.duckdb at the repo root).",
        show_default=False,
    ),
]


def print_error(console: "Console", message: object, hint: str = "") -> None:
    """``error: <message>`` in red, the message printed as it is: dbt output, file names and prompts
    hold text such as ``[email]`` or ``:+1:`` that rich would otherwise read as markup or emoji."""
    from rich.markup import escape

    text = str(message) + (f"\n{hint}" if hint else "")
    console.print(f"[red]error:[/red] {escape(text)}", emoji=False, highlight=False)
