"""Reading the examples to export, and the label mapping, from the dbt marts in DuckDB: in batches,
with the split computed in SQL (an export never holds every example)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from beep.db import table_exists
from beep.labels import NIL_LABEL

REFINED_TABLE = "refined_training_examples"
UNREFINED_TABLE = "training_examples"
LABELS_TABLE = "user_labels"
#: The list columns, given as lists (never None) by :func:`stream`.
_LIST_COLUMNS = ("prior_participant_ids", "mentioned_user_ids")
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


# ---------------------------------------------------------------------------------------------
# Streaming: the same rows, read in batches straight from DuckDB (an export's memory does not grow
# with its number of examples). The split is computed in SQL, equal to split.split_examples.
# ---------------------------------------------------------------------------------------------

#: Rows fetched from DuckDB at a time.
BATCH_ROWS = 5_000


def check_source_tables(con: duckdb.DuckDBPyConnection, duckdb_path: Path, *, refined: bool) -> str:
    """The table an export reads; a LookupError saying what to run when it or user_labels is missing."""
    table = REFINED_TABLE if refined else UNREFINED_TABLE
    for name in (table, LABELS_TABLE):
        if not table_exists(con, name):
            hint = (
                "run `beep refine` (and `beep build`) first, or export without refinement (--unrefined)"
                if name == REFINED_TABLE
                else "build the dataset first with `beep build`"
            )
            raise LookupError(f"table {name} is not in {duckdb_path}: {hint}")
    return table


def _base_sql(refined: bool) -> str:
    columns = ", ".join(_COLUMNS)
    if refined:
        return (f"select {columns}, trim(cast(target_label as varchar)) as label, coalesce(verdict, 'no verdict') as verdict "
                f"from {REFINED_TABLE}")
    return f"select {columns}, trim(cast(label as varchar)) as label, cast(null as varchar) as verdict from {UNREFINED_TABLE}"


def _kept_sql(refined: bool) -> str:
    refused = " and verdict is distinct from 'refused'" if refined else ""
    return f"select * from ({_base_sql(refined)}) where label is not null{refused}"


def load_labels(con: duckdb.DuckDBPyConnection) -> dict[str, LabelInfo]:
    labels = {
        str(label): LabelInfo(str(label), user_id, user_name)
        for label, user_id, user_name in con.execute(
            f"select label, user_id, user_name from {LABELS_TABLE} order by label").fetchall()
    }
    labels.setdefault(NIL_LABEL, LabelInfo(NIL_LABEL, None, "nobody (no alert)"))
    return labels


def excluded_counts(con: duckdb.DuckDBPyConnection, *, refined: bool) -> tuple[dict[str, int], int]:
    """Rows left out by reason (in the order they first occur by example_id), and the undecided rows kept."""
    reason = "'verdict: ' || verdict" if refined else "'no label'"
    refused = " or verdict = 'refused'" if refined else ""
    excluded = {
        str(r): int(n) for r, n, _ in con.execute(
            f"select {reason}, count(*), min(example_id) as first from ({_base_sql(refined)}) "
            f"where label is null{refused} group by 1 order by first").fetchall()
    }
    undecided = 0
    if refined:
        undecided = int(con.execute(
            f"select count(*) from ({_kept_sql(refined)}) where verdict not in ('strong', 'weak')").fetchone()[0])
    return excluded, undecided


#: The start of time for a conversation without a target time (the split orders by it).
_NO_TIME = "timestamp '0001-01-01'"


def split_sql(refined: bool, method: str, *, bounded: bool = False) -> str:
    """The kept rows with their split ('train' | 'valid'), the same as split.split_examples gives:
    whole conversations, newest (or by seeded hash) to validation until it holds valid_fraction of
    the rows, at least one conversation left on each side. Parameters: $valid_fraction, $seed (text).

    ``bounded`` (the time split): validation is every conversation at or after a boundary, the
    (start, conversation id) of the oldest conversation in validation (:func:`split_boundary` gives the
    boundary of the split above). Parameters: $valid_from_at (timestamp), $valid_from_conv (text)."""
    conv = "coalesce(cast(conversation_id as varchar), 'None')"
    if bounded:
        if method != "time":
            raise ValueError("only the time split has a boundary")
        return f"""
            with kept as ({_kept_sql(refined)}),
            conversations as (
                select {conv} as conv, coalesce(min(target_at), {_NO_TIME}) as started from kept group by 1
            ),
            splits as (
                select conv,
                       case when started > $valid_from_at or (started = $valid_from_at and conv >= $valid_from_conv)
                            then 'valid' else 'train' end as split
                from conversations
            )
            select kept.*, splits.split
            from kept join splits on {conv} = splits.conv
        """
    if method == "time":
        order = f"coalesce(started, {_NO_TIME}) desc, conv desc"
    else:
        order = "sha256($seed || ':' || conv), conv"
    return f"""
        with kept as ({_kept_sql(refined)}),
        conversations as (
            select {conv} as conv, count(*) as n, min(target_at) as started from kept group by 1
        ),
        ordered as (
            select conv, started,
                   row_number() over (order by {order}) as k,
                   coalesce(sum(n) over (order by {order} rows between unbounded preceding and 1 preceding), 0) as before,
                   count(*) over () as n_conversations,
                   sum(n) over () as n_rows
            from conversations
        ),
        splits as (
            select conv, started,
                   case when before < $valid_fraction * n_rows and k - 1 < n_conversations - 1
                        then 'valid' else 'train' end as split
            from ordered
        )
        select kept.*, splits.split
        from kept join splits on {conv} = splits.conv
    """


@dataclass(frozen=True)
class SplitCounts:
    """The rows and conversations on each side of a time split's boundary."""

    n_rows: int
    n_valid: int
    n_valid_conversations: int
    n_train_conversations: int

    @property
    def valid_share(self) -> float:
        return self.n_valid / self.n_rows if self.n_rows else 0.0


def split_boundary(con: duckdb.DuckDBPyConnection, *, refined: bool, valid_fraction: float) -> tuple[datetime, str] | None:
    """The boundary of the time split of today's rows (:func:`split_sql`): the start and id of the oldest
    conversation it puts in validation; None when it puts none there (fewer than two conversations)."""
    conv = "coalesce(cast(conversation_id as varchar), 'None')"
    row = con.execute(
        f"""
        with splits as ({split_sql(refined, "time")})
        select coalesce(min(target_at), {_NO_TIME}) as started, {conv} as conv
        from splits where split = 'valid' group by 2 order by 1, 2 limit 1
        """,
        split_parameters("time", valid_fraction, 0),
    ).fetchone()
    return (row[0], str(row[1])) if row else None


def split_counts(con: duckdb.DuckDBPyConnection, *, refined: bool, boundary: tuple[datetime, str]) -> SplitCounts:
    """How today's rows fall on each side of ``boundary`` (what deciding to keep a boundary reads)."""
    conv = "coalesce(cast(conversation_id as varchar), 'None')"
    n_rows, n_valid, n_conv_valid, n_conv_train = con.execute(
        f"""
        with splits as ({split_sql(refined, "time", bounded=True)})
        select count(*), count(*) filter (where split = 'valid'),
               count(distinct {conv}) filter (where split = 'valid'),
               count(distinct {conv}) filter (where split = 'train')
        from splits
        """,
        {"valid_from_at": boundary[0], "valid_from_conv": boundary[1]},
    ).fetchone()
    return SplitCounts(int(n_rows), int(n_valid or 0), int(n_conv_valid or 0), int(n_conv_train or 0))


def stream(con: duckdb.DuckDBPyConnection, sql: str, parameters: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The rows of ``sql`` as dicts, fetched BATCH_ROWS at a time, shaped as load_source shapes them."""
    cursor = con.execute(sql, parameters or {})
    names = [d[0] for d in cursor.description]
    while batch := cursor.fetchmany(BATCH_ROWS):
        for values in batch:
            row = dict(zip(names, values))
            row.pop("verdict", None)
            for name in _LIST_COLUMNS:
                if name in row:
                    row[name] = list(row[name] or [])
            yield row


def kept_rows(con: duckdb.DuckDBPyConnection, *, refined: bool) -> Iterator[dict[str, Any]]:
    """The exported rows by example_id (load_source's rows, one batch at a time): what beep.export.split
    splits in Python, the reference tests/python/test_export_streams.py holds :func:`split_sql` to (an
    export itself reads only :func:`kept_digests` and :func:`rows_by_split`)."""
    yield from stream(con, f"{_kept_sql(refined)} order by example_id")


def kept_digests(con: duckdb.DuckDBPyConnection, *, refined: bool) -> Iterator[tuple[str, str, str]]:
    """(example_id, label, md5 of the row) of every exported row, by example_id, one batch at a time:
    what the export id is computed from. The row (every column the files are made from, the lists
    without nulls, as :func:`stream` gives them) is hashed as JSON inside DuckDB: 0.35 s for the
    125,751 rows of the 200,000-message daily bench, where Python's ``json.dumps`` of each took 1.9 s."""
    cursor = con.execute(
        f"""
        select example_id, label, md5(to_json(kept))
        from (select * exclude (verdict, prior_participant_ids, mentioned_user_ids),
                     coalesce(prior_participant_ids, []) as prior_participant_ids,
                     coalesce(mentioned_user_ids, []) as mentioned_user_ids
              from ({_kept_sql(refined)})) as kept
        order by example_id
        """
    )
    while batch := cursor.fetchmany(BATCH_ROWS):
        yield from batch


#: The table of prompt token counts earlier exports made (migrations.m014_export_prompt_tokens).
PROMPT_TOKENS_TABLE = "export_prompt_tokens"
#: The column rows_by_split adds when given an encoding: the prompt's tokens an earlier export counted, or None.
KNOWN_PROMPT_TOKENS = "_known_prompt_tokens"


def rows_by_split(con: duckdb.DuckDBPyConnection, *, refined: bool, method: str, valid_fraction: float,
                  seed: int, encoding: str | None = None, columns: tuple[str, ...] | None = None,
                  valid_from: tuple[datetime, str] | None = None,
                  only_split: str | None = None) -> Iterator[dict[str, Any]]:
    """The exported rows in file order (train then valid, each by example_id), each with its split;
    with ``encoding``, also each prompt's tokens in it that an earlier export counted (KNOWN_PROMPT_TOKENS).
    ``columns``: only these of each row (besides the split and the known tokens): DuckDB converts every
    value it returns to a Python object, and the lists the files do not need cost most of that.
    ``valid_from``: the time split's boundary (:func:`split_sql` bounded); None: the split computed now.
    ``only_split``: the rows of that split only."""
    parameters = split_parameters(method, valid_fraction, seed, valid_from)
    rows = f"({split_sql(refined, method, bounded=valid_from is not None)})"
    if only_split is not None:
        rows = f"(select * from {rows} where split = $only_split)"
        parameters["only_split"] = only_split
    if encoding is not None and table_exists(con, PROMPT_TOKENS_TABLE):
        # one count per (encoding, md5): the table never holds two (beep.export.api records only new ones)
        rows = (f"(select s.*, known.tokens as {KNOWN_PROMPT_TOKENS} from {rows} as s left join "
                f"(select prompt_md5, tokens from {PROMPT_TOKENS_TABLE} where encoding = $encoding) as known "
                "on known.prompt_md5 = md5(s.prompt))")
        parameters["encoding"] = encoding
    elif encoding is not None:
        rows = f"(select *, cast(null as integer) as {KNOWN_PROMPT_TOKENS} from {rows})"
    selected = "*" if columns is None else ", ".join(
        [*columns, "split", *([KNOWN_PROMPT_TOKENS] if encoding is not None else [])])
    yield from stream(con, f"select {selected} from {rows} order by split = 'valid', example_id", parameters)


def split_parameters(method: str, valid_fraction: float, seed: int,
                     valid_from: tuple[datetime, str] | None = None) -> dict[str, Any]:
    """The parameters of :func:`split_sql` (bounded when ``valid_from`` is given)."""
    if valid_from is not None:
        return {"valid_from_at": valid_from[0], "valid_from_conv": valid_from[1]}
    return {"valid_fraction": float(valid_fraction), **({"seed": str(seed)} if method != "time" else {})}
