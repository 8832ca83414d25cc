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
# the export facts live in beep.labels (finetune reads them too); EvaluationInputError is also imported
# from here by the tests and the commands
from beep.labels import EvalExample, EvaluationInputError, ExportInfo

__all__ = ["EvalExample", "EvaluationInputError", "load_examples"]


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
        raise EvaluationInputError(
            f"{len(missing)} example(s) of export {export.export_id} are no longer in training_examples "
            f"(e.g. {missing[0]}): the dataset was rebuilt with other settings or another Slack export. "
            "Rebuild it as it was, or run `beep export` again and evaluate a model trained on that export."
        )
    return out
