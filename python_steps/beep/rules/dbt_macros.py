"""Beep's own dbt macros rendered in Python, so the live path runs the SQL the models run.

dbt renders a macro with Jinja: each macro is its own template, calls between macros go through the
context, ``{{ return(x) }}`` ends a macro with the value ``x``, and ``adapter.dispatch('name',
'beep')`` picks ``<adapter>__name`` (else ``default__name``). This module does the same for the
macros of the files it is given (the rules' files: no ``ref``, ``source``, ``run_query`` or ``dbt.*``
there), with ``var()`` reading the project's vars. Rendering takes milliseconds, where ``dbt
compile`` takes seconds: the Slack app and `beep predict` render the rules once when they start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

#: The macro files holding the rules the live path runs (relative to the project).
RULE_FILES = ("macros/message_rules.sql", "macros/clean_slack_text.sql", "macros/list_helpers.sql",
              "macros/conversation_links.sql",
              "macros/check_vars.sql")
_MACRO = re.compile(r"\{%-?\s*macro\s+(\w+)\s*\(.*?\{%-?\s*endmacro\s*-?%\}", re.DOTALL)


class MacroError(RuntimeError):
    """A macro raised a compiler error (its message is for the user) or could not be rendered."""


class _Return(Exception):
    def __init__(self, value: object) -> None:
        super().__init__("macro return")
        self.value = value


class _Adapter:
    def __init__(self, renderer: MacroRenderer) -> None:
        self._renderer = renderer

    def dispatch(self, name: str, package: str | None = None) -> _Macro:
        for candidate in (f"{self._renderer.adapter}__{name}", f"default__{name}"):
            if candidate in self._renderer.sources:
                return _Macro(self._renderer, candidate)
        raise MacroError(f"no macro {self._renderer.adapter}__{name} or default__{name} in {', '.join(RULE_FILES)}")


class _Exceptions:
    @staticmethod
    def raise_compiler_error(message: str) -> None:
        raise MacroError(message)


class _Macro:
    def __init__(self, renderer: MacroRenderer, name: str) -> None:
        self._renderer, self._name = renderer, name

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._renderer.call(self._name, *args, **kwargs)


class MacroRenderer:
    """Calls the macros of ``files`` (default :data:`RULE_FILES`) as dbt would on ``adapter``."""

    def __init__(self, project_dir: Path, variables: Mapping[str, object], *,
                 files: Sequence[str] = RULE_FILES, adapter: str = "duckdb") -> None:
        self.adapter = adapter
        self.variables = dict(variables)
        self.sources: dict[str, str] = {}
        for name in files:
            text = (project_dir / name).read_text()
            for match in _MACRO.finditer(text):
                self.sources[match.group(1)] = match.group(0)
        self._env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined,
                                       autoescape=False)
        self._context: dict[str, Any] = {
            "var": self._var, "return": self._return, "adapter": _Adapter(self), "exceptions": _Exceptions(),
            "execute": True, "target": {"type": adapter, "name": adapter},
            **{name: _Macro(self, name) for name in self.sources},
        }
        self._compiled: dict[str, Any] = {}

    def _var(self, name: str, *default: object) -> object:
        if name in self.variables:
            return self.variables[name]
        if default:
            return default[0]
        raise MacroError(f"Required var '{name}' not found: dbt_project.yml declares no such var")

    @staticmethod
    def _return(value: object) -> str:
        raise _Return(value)

    def call(self, name: str, *args: object, **kwargs: object) -> Any:
        """The macro's value: what it ``return``s, else its rendered text."""
        macro = self._compiled.get(name)
        if macro is None:
            if name not in self.sources:
                raise MacroError(f"no macro {name} in {', '.join(RULE_FILES)}")
            module = self._env.from_string(self.sources[name]).make_module(vars=self._context)
            macro = self._compiled[name] = getattr(module, name)
        try:
            return str(macro(*args, **kwargs))
        except _Return as returned:
            return returned.value
