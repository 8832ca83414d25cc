"""Reading and writing ``eval_runs`` / ``predictions`` / ``metrics`` in short transactions.

Every write opens the DuckDB file, writes one batch in one transaction and closes it again, so an
analyst's session or a `dbt run` can get in between two batches of a long evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from beep.db import connect
if TYPE_CHECKING:  # types only: the metrics import scikit-learn (0.9 s), which reading a run never needs
    from beep.evaluate.metrics import MetricRow, Scored

#: Rows per multi-row INSERT statement (DuckDB's executemany is slow row by row).
_CHUNK = 200


@dataclass(frozen=True)
class PredictionRow:
    """One row of the ``predictions`` table."""

    model: str
    example_id: str
    true_label: str
    predicted_label: str | None
    ranked: tuple[tuple[str, float | None], ...]
    true_label_rank: int | None
    raw_output: str | None
    newcomer: bool
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    responder_user_id: str | None = None
    people: tuple[tuple[str, float | None, str | None], ...] = ()  # (user id, probability, reason), best first
    responder_rank: int | None = None
    outsider_rank: int | None = None
    nobody_probability: float | None = None


@dataclass(frozen=True)
class RunRow:
    """One row of ``eval_runs``."""

    eval_run_id: str
    model: str
    job_id: str | None
    export_id: str
    split: str
    n: int | None
    provider: str
    status: str
    settings: dict[str, Any]
    started_at: Any
    finished_at: Any
    cost: float | None
    error: str | None
    run_kind: str | None = None
    context: dict[str, Any] | None = None


def _insert_many(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` as one list per column, zipped by ``unnest`` in one statement: a run's 32,240
    metric rows (the 200,000-message daily bench) took 1.49 s as VALUES with a parameter per value,
    0.14 s so."""
    if not rows:
        return
    lists = [list(column) for column in zip(*rows)]
    con.execute(f"insert into {table} ({', '.join(columns)}) select "
                + ", ".join(f"unnest(${i + 1})" for i in range(len(columns))), lists)


def get_run(con: duckdb.DuckDBPyConnection, eval_run_id: str) -> RunRow | None:
    row = con.execute(
        """
        select eval_run_id, model, job_id, export_id, split, n, provider, status, settings,
               started_at, finished_at, cost, error, run_kind, context
        from eval_runs where eval_run_id = ?
        """,
        [eval_run_id],
    ).fetchone()
    if row is None:
        return None
    settings = json.loads(row[8]) if isinstance(row[8], str) and row[8] else {}
    context = json.loads(row[14]) if isinstance(row[14], str) and row[14] else None
    (run_id, model, job_id, export_id, split, n, provider, status, _settings,
     started_at, finished_at, cost, error, run_kind, _context) = row
    return RunRow(run_id, model, job_id, export_id, split, n, provider, status, settings, started_at, finished_at,
                  cost, error, run_kind=run_kind, context=context)


def start_run(db: Path, run: RunRow) -> None:
    """Insert the run row, or mark an unfinished one as running again (a resume)."""
    with connect(db) as con:
        con.execute("begin")
        existing = con.execute("select status from eval_runs where eval_run_id = ?", [run.eval_run_id]).fetchone()
        if existing is None:
            con.execute(
                """
                insert into eval_runs (eval_run_id, model, job_id, export_id, split, n, provider, status, settings, cost,
                                       run_kind, context)
                values (?, ?, ?, ?, ?, ?, ?, 'running', cast(? as json), ?, ?, cast(? as json))
                """,
                [run.eval_run_id, run.model, run.job_id, run.export_id, run.split, run.n, run.provider,
                 json.dumps(run.settings, sort_keys=True), run.cost, run.run_kind,
                 json.dumps(run.context or {}, sort_keys=True, default=str)],
            )
        else:
            con.execute(
                "update eval_runs set status = 'running', error = null, n = ? where eval_run_id = ?",
                [run.n, run.eval_run_id],
            )
        con.execute("commit")


def discard_pruned_run(db: Path, eval_run_id: str) -> bool:
    """When `beep prune` removed this run's predictions, remove what it left of the run too (its row,
    metrics and alert replay rows), so that the run is made again under its id, whole; True when it did.
    (A run's id is its model, export and split: an export pruned and then made again, from the same
    data and settings, gets the same id back.)"""
    with connect(db) as con:
        row = con.execute("select pruned_at from eval_runs where eval_run_id = ?", [eval_run_id]).fetchone()
        if row is None or row[0] is None:
            return False
        con.execute("begin")
        for table in ("predictions", "metrics", "alert_replay_curve", "alert_replay_alerts", "eval_runs"):
            con.execute(f"delete from {table} where eval_run_id = ?", [eval_run_id])
        con.execute("commit")
    return True


def previous_run_of_kind(con: duckdb.DuckDBPyConnection, eval_run_id: str) -> str | None:
    """The finished run of the same kind and split that finished last before ``eval_run_id``."""
    row = con.execute(
        """
        select prev.eval_run_id from eval_runs as this
        inner join eval_runs as prev
            on prev.run_kind = this.run_kind and prev.split = this.split and prev.status = 'finished'
            and prev.eval_run_id <> this.eval_run_id and prev.finished_at < coalesce(this.finished_at, now())
        where this.eval_run_id = ?
        order by prev.finished_at desc limit 1
        """,
        [eval_run_id],
    ).fetchone()
    return str(row[0]) if row else None


def predicted_ids(db: Path, eval_run_id: str, model: str) -> set[str]:
    """Example ids that already have a prediction of ``model`` in this run (what a resume skips)."""
    with connect(db, read_only=True) as con:
        rows = con.execute(
            "select example_id from predictions where eval_run_id = ? and model = ?", [eval_run_id, model]
        ).fetchall()
    return {r[0] for r in rows}


def _prediction_values(eval_run_id: str, row: PredictionRow) -> list[Any]:
    # compact, as DuckDB writes JSON read from a file: the same row reads the same either way
    top = json.dumps([{"label": label, "logprob": lp} for label, lp in row.ranked], separators=(",", ":"))
    people = json.dumps([{"user_id": u, "probability": p, "reason": r} for u, p, r in row.people], separators=(",", ":"),
                        ensure_ascii=False)
    return [eval_run_id, row.model, row.example_id, row.true_label, row.predicted_label, top,
            row.true_label_rank, row.raw_output, row.newcomer, row.prompt_tokens, row.completion_tokens,
            row.responder_user_id, people, row.responder_rank, row.outsider_rank, row.nobody_probability]


_PRED_COLUMNS = ("eval_run_id", "model", "example_id", "true_label", "predicted_label", "top_k",
                 "true_label_rank", "raw_output", "newcomer", "prompt_tokens", "completion_tokens",
                 "responder_user_id", "top_people", "responder_rank", "outsider_rank", "nobody_probability")
_JSON_COLUMNS = ("top_k", "top_people")
_SCALAR_COLUMNS = tuple(c for c in _PRED_COLUMNS if c not in _JSON_COLUMNS)


#: Batches larger than this go through a temporary JSON-lines file that DuckDB reads in one
#: vectorised insert (a statement with thousands of parameters is parsed and bound row by row;
#: measured: docs/benchmarks.md, "Measurements that were code comments"; lowered from 2,000 to 200 for the
#: baselines' 1,525-row batches of the daily bench: 0.41 s -> 0.11 s CPU each, the same rows, docs/evaluation.md).
_BULK = 200
#: The rows of ``new`` that ``predictions`` does not hold yet: what ``insert or ignore`` inserts (a batch
#: stored again, a resumed batch overlapping a stored one), at about 2/3 of its CPU time (127,000 rows:
#: 2.1-2.4 s with ``or ignore``, 1.4-1.6 s so; docs/evaluation.md). A row repeated within a batch is written
#: once, the first (:func:`_insert_bulk`), as ``or ignore`` kept it.
_NOT_STORED = ("not exists (select 1 from predictions as stored where stored.eval_run_id = new.eval_run_id "
               "and stored.model = new.model and stored.example_id = new.example_id)")
_PRED_TYPES = {
    "eval_run_id": "VARCHAR", "model": "VARCHAR", "example_id": "VARCHAR", "true_label": "VARCHAR",
    "predicted_label": "VARCHAR", "top_k": "JSON", "true_label_rank": "INTEGER", "raw_output": "VARCHAR",
    "newcomer": "BOOLEAN", "prompt_tokens": "INTEGER", "completion_tokens": "INTEGER", "responder_user_id": "VARCHAR",
    "top_people": "JSON", "responder_rank": "INTEGER", "outsider_rank": "INTEGER", "nobody_probability": "DOUBLE",
}


def _insert_bulk(con: duckdb.DuckDBPyConnection, db: Path, eval_run_id: str, rows: Sequence[PredictionRow]) -> None:
    """insert ``rows`` through a temporary JSON-lines file (one ``json.dumps`` a row), but not those the run
    already has (kept as they are: :data:`_NOT_STORED`)."""
    import os
    import tempfile

    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False).encode
    # a ranking many rows share (a baseline's of a channel: the same tuple object) is encoded once; the
    # cache holds the tuple itself, so its id is never another's while cached
    encoded: dict[int, tuple[object, str]] = {}

    def once(value: tuple[Any, ...], build: Callable[[tuple[Any, ...]], str]) -> str:
        hit = encoded.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        if len(encoded) >= 4096:
            encoded.clear()
        text = build(value)
        encoded[id(value)] = (value, text)
        return text

    # a label or person without a number (a baseline's: no probabilities) is the same JSON in every row: made
    # once a label or person (read_json below stores the values, re-serialised, not the file's text:
    # tests/python/test_predictions_store.py)
    label_parts: dict[str, str] = {}
    person_parts: dict[str, str] = {}

    def top_k(ranked: tuple[Any, ...]) -> str:
        if any(lp is not None for _, lp in ranked):
            return dumps([{"label": label, "logprob": lp} for label, lp in ranked])
        parts = []
        for label, _ in ranked:
            part = label_parts.get(label)
            if part is None:
                part = label_parts[label] = dumps({"label": label, "logprob": None})
            parts.append(part)
        return "[" + ",".join(parts) + "]"

    def top_people(people: tuple[Any, ...]) -> str:
        if any(p is not None or why is not None for _, p, why in people):
            return dumps([{"user_id": u, "probability": p, "reason": why} for u, p, why in people])
        parts = []
        for u, _, _ in people:
            part = person_parts.get(u)
            if part is None:
                part = person_parts[u] = dumps({"user_id": u, "probability": None, "reason": None})
            parts.append(part)
        return "[" + ",".join(parts) + "]"

    fd, name = tempfile.mkstemp(prefix=".beep-predictions-", suffix=".jsonl", dir=Path(db).parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            written: set[tuple[str, str]] = set()
            for r in rows:
                if (r.model, r.example_id) in written:  # the first of a row repeated in the batch, as or ignore kept
                    continue
                written.add((r.model, r.example_id))
                scalars = dumps(dict(zip(_SCALAR_COLUMNS, (
                    eval_run_id, r.model, r.example_id, r.true_label, r.predicted_label, r.true_label_rank, r.raw_output,
                    r.newcomer, r.prompt_tokens, r.completion_tokens, r.responder_user_id, r.responder_rank,
                    r.outsider_rank, r.nobody_probability))))
                out.write(f'{scalars[:-1]},"top_k":{once(r.ranked, top_k)},"top_people":{once(r.people, top_people)}}}\n')
        path_literal = "'" + name.replace("'", "''") + "'"
        columns = "{" + ", ".join(f"'{c}': '{t}'" for c, t in _PRED_TYPES.items()) + "}"
        con.execute(
            f"insert into predictions ({', '.join(_PRED_COLUMNS)}) "
            f"select {', '.join(_PRED_COLUMNS)} from read_json({path_literal}, format = 'newline_delimited', "
            f"columns = {columns}) as new where {_NOT_STORED}"
        )
    finally:
        os.unlink(name)


def write_predictions(db: Path, eval_run_id: str, rows: Sequence[PredictionRow], *, add_cost: float = 0.0, replace_models: Sequence[str] = (), set_cost_if_null: float | None = None) -> None:
    """Store a batch of predictions (and what it cost) in one transaction.

    ``replace_models``: first delete those models' predictions in the run (baselines are recomputed
    whole). Otherwise rows already stored are kept (insert or ignore), so a resumed batch that
    overlaps a stored one never duplicates.
    """
    with connect(db) as con:
        con.execute("begin")
        for model in replace_models:
            con.execute("delete from predictions where eval_run_id = ? and model = ?", [eval_run_id, model])
        _insert_predictions(con, db, eval_run_id, rows)
        if set_cost_if_null is not None:
            con.execute("update eval_runs set cost = coalesce(cost, ?) where eval_run_id = ?", [set_cost_if_null, eval_run_id])
        if add_cost:
            con.execute("update eval_runs set cost = coalesce(cost, 0) + ? where eval_run_id = ?", [add_cost, eval_run_id])
        con.execute("commit")


def write_models_predictions(db: Path, eval_run_id: str, by_model: Iterable[tuple[str, Sequence[PredictionRow]]], *,
                             replace: bool = True) -> None:
    """Store each model's predictions in place of the ones the run had of that model (the baselines,
    recomputed whole), in one transaction: one checkpoint of the DuckDB file instead of one a model
    (each took 0.05-2.2 s at 200,000 messages: docs/evaluation.md). ``by_model`` is read one model at a
    time (a generator holds one baseline's rows in memory, not four). ``replace=False`` adds them to
    the ones the run has (rows of other examples: those kept from an earlier run)."""
    with connect(db) as con:
        con.execute("begin")
        for model, rows in by_model:
            if replace:
                con.execute("delete from predictions where eval_run_id = ? and model = ?", [eval_run_id, model])
            _insert_predictions(con, db, eval_run_id, rows)
            del rows  # before the generator makes the next model's
        con.execute("commit")


def _insert_predictions(con: duckdb.DuckDBPyConnection, db: Path, eval_run_id: str, rows: Sequence[PredictionRow]) -> None:
    """insert or ignore ``rows``: a large batch through a JSON-lines file (:func:`_insert_bulk`), a small
    one as parameters."""
    if len(rows) > _BULK:
        _insert_bulk(con, db, eval_run_id, rows)
        return
    values = [_prediction_values(eval_run_id, r) for r in rows]
    if values:
        one = "(" + ", ".join("cast(? as json)" if c in _JSON_COLUMNS else "?" for c in _PRED_COLUMNS) + ")"
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            con.execute(
                f"insert or ignore into predictions ({', '.join(_PRED_COLUMNS)}) values " + ", ".join([one] * len(chunk)),
                [v for row in chunk for v in row],
            )


def copy_predictions(db: Path, *, from_run: str, to_run: str, model: str, example_ids: Sequence[str]) -> int:
    """Copy ``model``'s stored predictions of ``example_ids`` from run ``from_run`` into ``to_run`` (every
    column, ``predicted_at`` too: when they were made), in one transaction; rows ``to_run`` already has are
    kept. Returns how many were copied (beep.evaluate.reuse decides which may be)."""
    return copy_models_predictions(db, from_run=from_run, to_run=to_run, models=[model], example_ids=example_ids)[model]


def copy_models_predictions(db: Path, *, from_run: str, to_run: str, models: Sequence[str],
                            example_ids: Sequence[str]) -> dict[str, int]:
    """:func:`copy_predictions` of several models in one transaction (one checkpoint of the DuckDB file,
    not one a model: the four baselines' copies took 3.8 s at 200,000 messages, mostly their checkpoints);
    how many rows each model got."""
    columns = ", ".join(c for c in (*_PRED_COLUMNS, "predicted_at") if c != "eval_run_id")
    count = ("select model, count(*) from predictions where eval_run_id = ? and model in (select unnest(cast(? as varchar[]))) "
             "group by model")
    with connect(db) as con:
        con.execute("begin")
        before = dict(con.execute(count, [to_run, list(models)]).fetchall())
        con.execute(
            f"insert into predictions (eval_run_id, {columns}) select * from ("
            f"select ? as eval_run_id, {columns} from predictions "
            "where eval_run_id = ? and model in (select unnest(cast(? as varchar[]))) "
            "and example_id in (select unnest(cast(? as varchar[])))"
            f") as new where {_NOT_STORED}",
            [to_run, from_run, list(models), list(example_ids)],
        )
        after = dict(con.execute(count, [to_run, list(models)]).fetchall())
        con.execute("commit")
    return {m: int(after.get(m, 0) - before.get(m, 0)) for m in models}


def scored_predictions(con: duckdb.DuckDBPyConnection, eval_run_id: str,
                       mentions: Mapping[str, tuple[bool, bool]] | None = None) -> dict[str, list[Scored]]:
    """Every model's predictions in a run, as the metrics need them. ``mentions``: per example id,
    whether its window @-mentions someone and whether the responder is among them (the mention
    slices; an example not in it is in neither)."""
    from beep.evaluate.metrics import Scored

    no_mention = (False, False)
    mention_of = (mentions or {}).get

    rows = con.execute(
        """
        select model, true_label, predicted_label, true_label_rank, coalesce(newcomer, false),
               responder_rank, outsider_rank, example_id
        from predictions where eval_run_id = ? order by model, example_id
        """,
        [eval_run_id],
    ).fetchall()
    out: dict[str, list[Scored]] = {}
    for model, true, pred, rank, newcomer, person_rank, outsider_rank, example_id in rows:
        mentioned, responder_mentioned = mention_of(example_id, no_mention)
        out.setdefault(model, []).append(Scored(true, pred, rank, bool(newcomer), person_rank, outsider_rank,
                                                mentioned, responder_mentioned))
    return out


def add_to_context(db: Path, eval_run_id: str, name: str, value: Any) -> None:
    """Set ``name`` in the run's ``context`` (what a later run compares before keeping this run's work)."""
    with connect(db) as con:
        row = con.execute("select context from eval_runs where eval_run_id = ?", [eval_run_id]).fetchone()
        if row is None:
            return
        context = json.loads(row[0]) if isinstance(row[0], str) and row[0] else (row[0] or {})
        context[name] = value
        con.execute("update eval_runs set context = cast(? as json) where eval_run_id = ?",
                    [json.dumps(context, sort_keys=True, default=str), eval_run_id])


def finish_run(db: Path, eval_run_id: str, metric_rows: Iterable[tuple[str, MetricRow]], *, n: int) -> None:
    """Replace the run's metric rows and mark it finished, in one transaction."""
    values = [[eval_run_id, model, m.slice, m.metric, m.label, m.value, m.support] for model, m in metric_rows]
    with connect(db) as con:
        con.execute("begin")
        con.execute("delete from metrics where eval_run_id = ?", [eval_run_id])
        _insert_many(con, "metrics", ("eval_run_id", "model", "slice", "metric", "label", "value", "support"), values)
        con.execute(
            """
            update eval_runs set status = 'finished', finished_at = current_timestamp, n = ?, error = null
            where eval_run_id = ?
            """,
            [n, eval_run_id],
        )
        con.execute("commit")


def fail_run(db: Path, eval_run_id: str, error: str, *, status: str = "failed") -> None:
    """Record why a run stopped (``failed``, or ``interrupted`` by Ctrl-C or a signal); it stays resumable."""
    with connect(db) as con:
        con.execute("update eval_runs set status = ?, error = ? where eval_run_id = ?", [status, error[:2000], eval_run_id])


def recover_stale_runs(db: Path) -> list[tuple[str, str, int, float | None]]:
    """Mark runs left ``running`` by a process that is gone (SIGKILL, a crash) ``interrupted``;
    call it holding the evaluate lock (beep.locks), which proves no other evaluate is alive. Returns
    (run id, model, predictions stored, cost recorded) of each, for the user to be told."""
    with connect(db) as con:
        rows = con.execute(
            """
            select r.eval_run_id, r.model, r.cost,
                   (select count(*) from predictions p where p.eval_run_id = r.eval_run_id and p.model = r.model)
            from eval_runs r where r.status = 'running' order by r.started_at
            """
        ).fetchall()
        if rows:
            con.execute(
                "update eval_runs set status = 'interrupted', error = 'its process ended without recording the run "
                "(killed?); found by the next evaluate' where status = 'running'"
            )
    return [(run_id, model, int(n), cost) for run_id, model, cost, n in rows]


def headline(con: duckdb.DuckDBPyConnection, eval_run_id: str, metrics: Sequence[str]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{model: {slice: {metric: value}}} of the overall (label is null) metrics named."""
    rows = con.execute(
        """
        select model, slice, metric, value from metrics
        where eval_run_id = ? and label is null and list_contains(?, metric)
        """,
        [eval_run_id, list(metrics)],
    ).fetchall()
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for model, slice_, metric, value in rows:
        out.setdefault(model, {}).setdefault(slice_, {})[metric] = value
    return out


def write_alert_curve(db: Path, eval_run_id: str, result: Any) -> None:
    """Replace the run's rows of ``alert_replay_curve`` with ``result``'s (an alert_replay.ReplayResult)."""
    chosen = {(name, op.min_probability) for name, op in result.operating.items()}
    rows = [[eval_run_id, c.model, c.period, c.min_probability, c.alerts, c.useful, c.precision, c.joins,
             c.joins_alerted, c.recall, c.alerts_per_person_day, (c.model, c.min_probability) in chosen]
            for c in result.curve]
    with connect(db) as con:
        con.execute("begin")
        con.execute("delete from alert_replay_curve where eval_run_id = ?", [eval_run_id])
        _insert_many(con, "alert_replay_curve", ("eval_run_id", "model", "period", "min_probability", "alerts", "useful",
                                                 "precision", "joins", "joins_alerted", "recall",
                                                 "alerts_per_person_day", "is_operating_point"), rows)
        con.execute("commit")


def operating_point(con: duckdb.DuckDBPyConnection, model: str) -> tuple[float, str] | None:
    """The model's operating point from its latest finished evaluation with an alert replay:
    (min_probability, eval run id), or None."""
    try:
        row = con.execute(
            """
            select m.value, r.eval_run_id
            from metrics m inner join eval_runs r on r.eval_run_id = m.eval_run_id
            where m.model = ? and m.slice = 'alert_replay' and m.metric = 'min_probability' and m.label is null
              and r.status = 'finished' and m.value is not null
            order by r.finished_at desc nulls last limit 1
            """,
            [model],
        ).fetchone()
    except duckdb.Error:
        return None
    return (float(row[0]), str(row[1])) if row else None
