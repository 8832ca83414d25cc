"""What an evaluation reads from DuckDB: the export (format, label mapping) and its examples.

The true label of an example is the label the export wrote for it (``export_examples.label``: a
label of the export's own mapping ``export_labels``, ``nil`` for an example refinement judged weak),
never whatever ``dbt build`` numbers that user today. What a predictor may use besides the prompt
(channel, earlier participants, mentions) and the newcomer flag come from ``training_examples``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from beep.db import table_exists
from beep.evaluate.metrics import NIL_LABEL, label_sort_key

class EvaluationInputError(ValueError):
    """The DuckDB file lacks something an evaluation needs; the message says what to run."""


@dataclass(frozen=True)
class ExportLabel:
    """One label of an export's mapping."""

    label: str
    user_id: str | None
    user_name: str | None


@dataclass(frozen=True)
class ExportInfo:
    """An export as an evaluation needs it."""

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


@dataclass(frozen=True)
class EvalExample:
    """One example of an export's split, with everything predictors and baselines may use."""

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
    ordered = sorted((ExportLabel(str(l), u, n) for l, u, n in labels), key=lambda lab: label_sort_key(lab.label))
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


def _ids(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in value if v is not None)  # type: ignore[union-attr]


def load_examples(con: duckdb.DuckDBPyConnection, export: ExportInfo, split: str | None, *,
                  with_prompt: bool = True) -> list[EvalExample]:
    """The export's examples of ``split`` (all splits when None), sorted by example id.

    ``with_prompt=False`` leaves the prompts out (what the baselines learn from needs none: on a
    real workspace the train prompts alone are hundreds of megabytes)."""
    if not table_exists(con, "training_examples"):
        raise EvaluationInputError("table training_examples is missing: build the dataset with `beep build`")
    sql = f"""
        select ee.example_id, ee.split, te.example_id is not null as found,
               coalesce(ee.channel_id, te.channel_id), {"te.prompt" if with_prompt else "null"},
               coalesce(ee.prior_participant_ids, te.prior_participant_ids),
               coalesce(ee.mentioned_user_ids, te.mentioned_user_ids), te.responder_spoke_before,
               coalesce(ee.responder_user_id, te.responder_user_id), ee.label, ee.line
        from export_examples ee
        left join training_examples te on te.example_id = ee.example_id
        where ee.export_id = ? {"and ee.split = ?" if split else ""}
        order by ee.example_id
    """
    params: list[object] = [export.export_id] + ([split] if split else [])
    rows = con.execute(sql, params).fetchall()
    missing = [r[0] for r in rows if not r[2]]
    if missing:
        raise EvaluationInputError(
            f"{len(missing)} example(s) of export {export.export_id} are no longer in training_examples "
            f"(e.g. {missing[0]}): the dataset was rebuilt with other settings or another Slack export. "
            "Rebuild it as it was, or run `beep export` again and evaluate a model trained on that export."
        )
    out = []
    for example_id, split_, _found, channel_id, prompt, prior, mentioned, spoke_before, responder, label, line in rows:
        out.append(
            EvalExample(
                example_id=str(example_id),
                split=str(split_),
                true_label=str(label),
                newcomer=spoke_before is False,
                channel_id=channel_id,
                prompt=prompt or "",
                responder_user_id=responder,
                prior_participant_ids=_ids(prior),
                mentioned_user_ids=_ids(mentioned),
                line=line,
            )
        )
    return out
