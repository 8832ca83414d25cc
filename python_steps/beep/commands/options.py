"""Options several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DbOption = Annotated[
    Optional[Path],
    typer.Option(
        "--db",
        envvar="BEEP_DUCKDB_PATH",
        help="The DuckDB file that holds all of Beep's state (default: beep.duckdb at the repo root).",
        show_default=False,
    ),
]
