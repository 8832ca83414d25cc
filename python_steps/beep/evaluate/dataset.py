"""What an evaluation reads from DuckDB: an export's examples (the export itself: :mod:`beep.labels`).

The true label of an example is the label the export wrote for it (``export_examples.label``: a
label of the export's own mapping ``export_labels``, ``nil`` for an example refinement judged weak),
never whatever ``dbt build`` numbers that user today. What a predictor may use besides the prompt
(channel, earlier participants, mentions) and the newcomer flag come from ``training_examples``.
"""

from __future__ import annotations

import sys

import duckdb

from beep.db import table_exists
from beep.evaluate.baselines import TrainRow
# the export facts live in beep.labels (finetune reads them too); EvaluationInputError is also imported
# from here by the tests and the commands
from beep.labels import EvalExample, EvaluationInputError, ExportInfo

__all__ = ["EvalExample", "EvaluationInputError", "load_examples", "load_train_rows"]


#: Rows read from DuckDB at a time (never the whole split as rows and examples at once).
_BATCH = 20_000


def _ids(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(sys.intern(str(v)) for v in value if v is not None)  # type: ignore[union-attr]


def _name(value: object) -> str | None:
    """A user, channel or label id, one string object however many examples name it."""
    return None if value is None else sys.intern(str(value))


def load_examples(con: duckdb.DuckDBPyConnection, export: ExportInfo, split: str | None, *,
                  with_prompt: bool = True) -> list[EvalExample]:
    """The export's examples of ``split`` (all splits when None), sorted by example id.

    ``with_prompt=False`` leaves the prompts out (what the baselines learn from needs none: on a
    real workspace the train prompts alone are hundreds of megabytes)."""
    _require_training_examples(con)
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
    cursor = con.execute(sql, params)
    out: list[EvalExample] = []
    missing: list[str] = []
    while rows := cursor.fetchmany(_BATCH):
        for example_id, split_, found, channel_id, prompt, prior, mentioned, spoke_before, responder, label, line in rows:
            if not found:
                missing.append(str(example_id))
                continue
            out.append(
                EvalExample(
                    example_id=str(example_id),
                    split=sys.intern(str(split_)),
                    true_label=sys.intern(str(label)),
                    newcomer=spoke_before is False,
                    channel_id=_name(channel_id),
                    prompt=prompt or "",
                    responder_user_id=_name(responder),
                    prior_participant_ids=_ids(prior),
                    mentioned_user_ids=_ids(mentioned),
                    line=line,
                )
            )
    if missing:
        raise _gone(export, len(missing), missing[0])
    return out


def load_train_rows(con: duckdb.DuckDBPyConnection, export: ExportInfo) -> list[TrainRow]:
    """What the baselines learn from: each train example's channel, label and responder, read as
    three columns rather than whole examples (they are counted, so their order is free): 0.3 s of
    CPU against 4.7 s for the 507,612 train examples of a 1,000,000-message workspace (docs/evaluation.md).
    The same error as :func:`load_examples` when an example is gone from training_examples."""
    _require_training_examples(con)
    rows = con.execute(
        """
        select coalesce(ee.channel_id, te.channel_id), ee.label, coalesce(ee.responder_user_id, te.responder_user_id),
               te.example_id is not null, ee.example_id
        from export_examples ee
        left join training_examples te on te.example_id = ee.example_id
        where ee.export_id = ? and ee.split = 'train'
        """,
        [export.export_id],
    ).fetchall()
    missing = sorted(str(example_id) for *_, found, example_id in rows if not found)
    if missing:
        raise _gone(export, len(missing), missing[0])
    return [TrainRow(_name(channel), sys.intern(str(label)), _name(responder)) for channel, label, responder, _f, _e in rows]


def _require_training_examples(con: duckdb.DuckDBPyConnection) -> None:
    if not table_exists(con, "training_examples"):
        raise EvaluationInputError("table training_examples is missing: build the dataset with `beep build`")


def _gone(export: ExportInfo, n: int, example_id: str) -> EvaluationInputError:
    return EvaluationInputError(
        f"{n} example(s) of export {export.export_id} are no longer in training_examples "
        f"(e.g. {example_id}): the dataset was rebuilt with other settings or another Slack export. "
        "Rebuild it as it was, or run `beep export` again and evaluate a model trained on that export."
    )
