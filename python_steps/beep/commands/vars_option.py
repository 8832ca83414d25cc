"""``--var KEY=VALUE``, shared by `beep build` and `beep run`: checked against dbt_project.yml before dbt runs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from beep.config import PROJECT_DIR
from beep.dbt_vars import VarError, parse_var_options

VarOption = Annotated[
    Optional[list[str]],
    typer.Option("--var", help="A dbt var for the build, KEY=VALUE (JSON values allowed), e.g. --var context_messages=3. "
                               "Repeatable. Names and value types are checked against dbt_project.yml's vars.",
                 show_default=False, metavar="KEY=VALUE"),
]


def var_options(items: list[str] | None) -> dict[str, object]:
    """The ``--var`` items as dbt vars; a misspelt name or a value of the wrong type is a bad option (exit 2)."""
    try:
        return parse_var_options(items or [], PROJECT_DIR)
    except VarError as err:
        raise typer.BadParameter(str(err), param_hint="--var") from err
