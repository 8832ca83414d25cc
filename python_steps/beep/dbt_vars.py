"""The dbt vars `beep build` / `beep run` accept with ``--var KEY=VALUE``, checked before dbt starts.

dbt itself accepts any name in ``--vars`` (a misspelt one is silently unused) and meets a value of
the wrong type while it renders the models, as a Jinja error far from its cause. So Beep checks each
``--var`` against the vars dbt_project.yml declares: an unknown name is refused with the nearest
known one, and a value must have the type of the declared default (a whole number where the default
is one, true/false where it is a boolean, text where it is text or null). The rules on the values
themselves (at least 1, one of 'name'/'remove', …) are macros/check_vars.sql's, which dbt runs first;
Beep renders that same macro here (:func:`beep.rules.project_vars.load_project_vars`), so a value it
refuses is refused before dbt starts, with dbt's words, as a bad option (exit 2).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path

from beep.rules.project_vars import VarError, declared_vars, load_project_vars

__all__ = ["VarError", "declared_vars", "parse_var_options"]

#: Declared with a whole-number default, but any number above 0 is fine.
_FRACTIONAL = frozenset({"conversation_gap_minutes"})


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _kind(name: str, default: object) -> str:
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, (int, float)):
        return "number" if name in _FRACTIONAL or isinstance(default, float) else "whole number"
    return "text"


def _fits(kind: str, value: object) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "whole number":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str) or value is None


_WANTED = {"boolean": "true or false", "whole number": "a whole number (e.g. 3)",
           "number": "a number (e.g. 10 or 7.5)", "text": "text"}


def parse_var_options(items: Iterable[str], project_dir: Path, *, option: str = "--var") -> dict[str, object]:
    """``KEY=VALUE`` strings (JSON values allowed) as a dict of vars; :class:`VarError` on a bad one."""
    declared = declared_vars(project_dir)
    found: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise VarError(f"{option} takes KEY=VALUE, e.g. {option} context_messages=3; got {item!r}")
        if key not in declared:
            near = difflib.get_close_matches(key, list(declared), n=1, cutoff=0.6)
            hint = f" Did you mean {near[0]}?" if near else ""
            raise VarError(
                f"{option} {key}: no such dbt var.{hint} Known vars (dbt_project.yml): {', '.join(sorted(declared))}."
            )
        value = _value(text)
        kind = _kind(key, declared[key])
        if not _fits(kind, value):
            raise VarError(f"{option} {key}={text}: {key} takes {_WANTED[kind]}, got {json.dumps(value)}.")
        found[key] = value
    if found:  # the values themselves, by macros/check_vars.sql (dbt's own check, the same words)
        load_project_vars(project_dir, found)
    return found
