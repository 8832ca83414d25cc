"""Reading the examples to export, and the label mapping, from the dbt marts in DuckDB."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beep.db import connect, table_exists
from beep.labels import NIL_LABEL

REFINED_TABLE = "refined_training_examples"
UNREFINED_TABLE = "training_examples"
LABELS_TABLE = "user_labels"
_COLUMNS = (
    "example_id",
    "conversation_id",
    "channel_id",
    "target_at",
    "responder_user_id",
    "prompt",
    "prior_participant_ids",
    "mentioned_user_ids",
)


@dataclass(frozen=True)
class LabelInfo:
    label: str
    user_id: str | None
    user_name: str | None


@dataclass
class SourceData:
    table: str
    rows: list[dict[str, Any]]  # the _COLUMNS plus "label" (text: '3', 'nil')
    labels: dict[str, LabelInfo]
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> how many rows were left out
    undecided: int = 0  # refined export: rows kept with their label although no refine verdict covers them


def load_source(duckdb_path: Path, *, refined: bool) -> SourceData:
    """The examples in a stable order (example_id), with their label text, and the label mapping.

    Refined examples the refiner refused to judge (``verdict = 'refused'``: e.g. a content policy,
    so not something to send to a fine-tuning provider either) and rows without a label are left
    out and counted by reason, never dropped silently. ``undecided`` rows (no verdict from the chosen
    refine run) keep their label and are counted.
    """
    table = REFINED_TABLE if refined else UNREFINED_TABLE
    with connect(duckdb_path, read_only=True) as con:
        for name in (table, LABELS_TABLE):
            if not table_exists(con, name):
                hint = (
                    "run `beep refine` (and `beep build`) first, or export without refinement (--unrefined)"
                    if name == REFINED_TABLE
                    else "build the dataset first with `beep build`"
                )
                raise LookupError(f"table {name} is not in {duckdb_path}: {hint}")
        columns = ", ".join(_COLUMNS)
        if refined:
            query = (
                f"select {columns}, target_label as label, coalesce(verdict, 'no verdict') as verdict "
                f"from {table} order by example_id"
            )
        else:
            query = f"select {columns}, cast(label as varchar) as label, null as verdict from {table} order by example_id"
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description]
        raw = [dict(zip(names, values)) for values in cursor.fetchall()]
        labels = {
            str(label): LabelInfo(str(label), user_id, user_name)
            for label, user_id, user_name in con.execute(
                f"select label, user_id, user_name from {LABELS_TABLE} order by label"
            ).fetchall()
        }
    labels.setdefault(NIL_LABEL, LabelInfo(NIL_LABEL, None, "nobody (no alert)"))
    rows: list[dict[str, Any]] = []
    excluded: dict[str, int] = {}
    undecided = 0
    for row in raw:
        verdict = row.pop("verdict")
        if row["label"] is None or (refined and verdict == "refused"):
            reason = f"verdict: {verdict}" if refined else "no label"
            excluded[reason] = excluded.get(reason, 0) + 1
            continue
        if refined and verdict not in ("strong", "weak"):
            undecided += 1
        row["label"] = str(row["label"]).strip()
        row["prior_participant_ids"] = list(row["prior_participant_ids"] or [])
        row["mentioned_user_ids"] = list(row["mentioned_user_ids"] or [])
        rows.append(row)
    return SourceData(table, rows, labels, excluded, undecided)
