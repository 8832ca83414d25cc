"""Labels and export facts: what an exported label means, and an export as its readers see it.

The one place for the facts that the export, fine-tuning, the ranker, predictors and evaluation all
read (before, ``nil`` was defined three times). Low level: it imports only :mod:`beep.db`, and
:mod:`beep.config` and :mod:`beep.rules.project_vars` for the prompt suffix.

* ``nil`` is the label of "nobody needs to be alerted"; ``other`` the one label of every responder past
  the export's label limit (nobody in particular; its ``user_id`` in ``export_labels`` is ``__other__``);
* every exported prompt ends with :data:`PROMPT_SUFFIX` once (the dataset's default ``prompt_suffix``,
  read from dbt_project.yml by :func:`beep.rules.project_vars.load_project_vars` when first asked
  for, never a copy of it; `beep export` checks it);
* labels sort numerically, then ``nil`` / ``other`` alphabetically (:func:`label_sort_key`);
* :class:`ExportInfo` / :func:`load_export`: an export's format, label mapping and files, read back
  from DuckDB; :class:`EvalExample`: one of its examples with what a model may use.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from beep.db import table_exists

#: The label text that means "nobody needs to be alerted".
NIL_LABEL = "nil"
#: The label an export gives the responders past its label limit (nobody in particular).
OTHER_LABEL = "other"
#: The ``export_labels.user_id`` of :data:`OTHER_LABEL` (no real user).
OTHER_USER_ID = "__other__"


@functools.lru_cache(maxsize=1)
def declared_prompt_suffix() -> str:
    """The suffix every exported prompt ends with, once (the separator a fine-tuned model answers
    after): dbt_project.yml's ``prompt_suffix``, read (and checked by macros/check_vars.sql) by the one
    vars loader. Read once per process (dbt_project.yml is part of the installed project)."""
    from beep.config import PROJECT_DIR
    from beep.rules.project_vars import load_project_vars

    return load_project_vars(PROJECT_DIR).prompt_suffix


def __getattr__(name: str) -> str:
    """``PROMPT_SUFFIX``: :func:`declared_prompt_suffix`, read when a module first imports it."""
    if name == "PROMPT_SUFFIX":
        return declared_prompt_suffix()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def label_sort_key(label: str) -> tuple[int, int, str]:
    """Numeric labels in numeric order, then the others ('nil', 'other') alphabetically."""
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


class EvaluationInputError(ValueError):
    """The DuckDB file lacks something an evaluation or a prediction needs; the message says what to run."""


@dataclass(frozen=True)
class ExportLabel:
    """One label of an export's mapping."""

    label: str
    user_id: str | None
    user_name: str | None


@dataclass(frozen=True)
class ExportInfo:
    """An export as its readers (fine-tuning, predictors, evaluation) need it."""

    export_id: str
    format: str
    base_model: str
    refined: bool
    labels: tuple[ExportLabel, ...]
    label_prefix: str = ""  # what precedes the label in the trained answer ('' or ' ')
    paths: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # split -> (path, sha256)
    settings: dict = field(default_factory=dict)  # exports.settings (system_prompt, seed, ...)

    @property
    def label_texts(self) -> list[str]:
        return [lab.label for lab in self.labels]

    @property
    def label_of_user(self) -> dict[str, str]:
        return {lab.user_id: lab.label for lab in self.labels if lab.user_id}

    def split_records(self, split: str) -> dict[int, dict]:
        """The export's JSONL records of ``split`` by 1-based line number, when the file is still there
        and its sha256 is the recorded one; else {} (callers then render the record from the prompt)."""
        path_text, sha = self.paths.get(split, (None, None))
        records: dict[int, dict] = {}
        if path_text and Path(path_text).exists():
            data = Path(path_text).read_bytes()
            if not sha or hashlib.sha256(data).hexdigest() == sha:
                for i, line in enumerate(data.decode("utf-8").splitlines(), start=1):
                    if line.strip():
                        records[i] = json.loads(line)
        return records

    def describe(self, label: str | None) -> str:
        """A person-readable name for a label: the user's name, 'nobody' for nil."""
        if label is None:
            return "(unreadable output)"
        if label == NIL_LABEL:
            return "nobody (nil)"
        for lab in self.labels:
            if lab.label == label:
                return lab.user_name or lab.user_id or label
        return label


@dataclass(frozen=True, slots=True)
class EvalExample:
    """One example of an export's split, with everything predictors and baselines may use (slots: an
    evaluation holds every example of the export, 634,517 at 1,000,000 messages)."""

    example_id: str
    split: str
    true_label: str
    newcomer: bool
    channel_id: str | None
    prompt: str
    responder_user_id: str | None = None
    prior_participant_ids: Sequence[str] = field(default_factory=tuple)
    mentioned_user_ids: Sequence[str] = field(default_factory=tuple)
    line: int | None = None  # 1-based line of the example in its split's JSONL file

    def as_model_row(self) -> dict:
        """The row dict the local responder model predicts from."""
        return {
            "prompt": self.prompt,
            "channel_id": self.channel_id,
            "prior_participant_ids": list(self.prior_participant_ids),
            "mentioned_user_ids": list(self.mentioned_user_ids),
        }


def load_export(con: duckdb.DuckDBPyConnection, export_id: str) -> ExportInfo:
    """The export and its label mapping; a clear error when either is missing."""
    if not table_exists(con, "exports"):
        raise EvaluationInputError("no exports in this DuckDB file yet: run `beep export` first")
    row = con.execute(
        "select export_id, format, base_model, refined, status, coalesce(label_prefix, ''), "
        "train_path, train_sha256, valid_path, valid_sha256, settings from exports "
        "where export_id = ?",
        [export_id],
    ).fetchone()
    if row is None:
        known = [r[0] for r in con.execute("select export_id from exports order by created_at desc limit 5").fetchall()]
        raise EvaluationInputError(
            f"export {export_id!r} is not in table exports"
            + (f" (recent exports: {', '.join(known)})" if known else "")
            + ": run `beep export` or pass an existing --export"
        )
    if row[4] != "ok":
        raise EvaluationInputError(
            f"export {export_id} has status {row[4]!r}: an error check stopped it, so it has no files or model. "
            "See `select * from export_checks where export_id = ...`, fix the data and run `beep export` again"
        )
    labels = con.execute(
        "select label, user_id, user_name from export_labels where export_id = ?", [export_id]
    ).fetchall()
    if not labels:
        raise EvaluationInputError(
            f"export {export_id!r} has no label mapping in table export_labels: export again with `beep export`"
        )
    ordered = sorted((ExportLabel(str(text), u, n) for text, u, n in labels), key=lambda lab: label_sort_key(lab.label))
    return ExportInfo(
        str(row[0]), str(row[1]), str(row[2]), bool(row[3]), tuple(ordered), str(row[5]),
        {"train": (row[6], row[7]), "valid": (row[8], row[9])},
        _settings(row[10]),
    )


def _settings(value: object) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def latest_export_id(con: duckdb.DuckDBPyConnection) -> str:
    """The id of the export the user asked for last (a reused export counts as asked for)."""
    row = None
    if table_exists(con, "exports"):
        row = con.execute(
            "select export_id from exports where status = 'ok' "
            "order by coalesce(last_exported_at, created_at) desc, created_at desc, export_id limit 1"
        ).fetchone()
    if row is None:
        raise EvaluationInputError("no exports in this DuckDB file yet: run `beep export` first")
    return str(row[0])
