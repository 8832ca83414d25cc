"""The project's dbt vars, typed: defaults only from dbt_project.yml, overrides from a build.

dbt_project.yml is the one place a var and its default are declared; Python reads it here and
nowhere else. A build's ``--var`` overrides (recorded by `beep build`, :func:`beep.build.last_build_vars`)
go on top, so the live path shapes messages with the vars the training data was built with. The
values are checked by macros/check_vars.sql, the very macro dbt runs before a build
(:mod:`beep.rules.dbt_macros` renders it), so Python and dbt refuse the same values with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml


class VarError(ValueError):
    """A dbt var Beep refuses; the message says what is wrong and what to pass."""


def declared_vars(project_dir: Path) -> dict[str, object]:
    """The vars dbt_project.yml declares, with their defaults."""
    path = project_dir / "dbt_project.yml"
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise VarError(f"cannot read the dbt project's vars: {path}: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise VarError(f"{path} is not valid YAML ({err}); fix it and run again") from err
    return dict(loaded.get("vars") or {})


@dataclass(frozen=True)
class ProjectVars:
    """The vars the dataset's rules read, as dbt sees them (dbt_project.yml, then the overrides)."""

    conversation_split: str
    conversation_quiet_messages: int
    conversation_gap_minutes: float
    context_messages: int
    context_excludes_responder: bool
    max_prompt_chars: int
    prompt_suffix: str
    max_labels: int
    clean_links: bool
    clean_code: bool
    clean_emoji: bool
    clean_channel_ids: bool
    mask_pii: bool
    mention_style: str
    #: every var (also those not typed above), for dbt's ``var()`` when Python renders a macro
    values: Mapping[str, object] = field(repr=False, compare=False)

    @property
    def gap_seconds(self) -> float:
        return self.conversation_gap_minutes * 60.0


_CASTS = {"int": int, "float": float, "bool": bool, "str": str}


def load_project_vars(project_dir: Path, overrides: Mapping[str, object] | None = None) -> ProjectVars:
    """dbt_project.yml's vars with ``overrides`` on top, checked by macros/check_vars.sql.

    :class:`VarError` when a value is wrong or dbt_project.yml lacks a var the rules read."""
    from beep.rules.dbt_macros import MacroError, MacroRenderer

    merged = {**declared_vars(project_dir), **(overrides or {})}
    typed = [f for f in fields(ProjectVars) if f.name != "values"]
    missing = [f.name for f in typed if f.name not in merged]
    if missing:
        raise VarError(f"dbt_project.yml declares no var {', '.join(missing)}: Beep's rules read "
                       f"{'it' if len(missing) == 1 else 'them'}; declare {'it' if len(missing) == 1 else 'them'} "
                       "under vars: with a default")
    try:
        MacroRenderer(project_dir, merged).call("check_beep_vars")
    except MacroError as err:
        raise VarError(str(err)) from err
    return ProjectVars(**{f.name: _CASTS[str(f.type)](merged[f.name]) for f in typed}, values=merged)
