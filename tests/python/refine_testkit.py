"""Helpers for the refine tests: a small training_examples table and a responder for the fake server."""

from __future__ import annotations

import json
import re
from pathlib import Path

from beep.config import PROJECT_DIR, Paths
from beep.db import open_duckdb

SUFFIX = "\n\n###\n\n"
_BLOCK = re.compile(r"### (\d+)\n(.*?)(?=\n### \d+\n|\Z)", re.S)
_ID = re.compile(r"\[(ex\d+)\]")


def example_text(i: int) -> str:
    """Every third example is small talk; the others name a system. Each carries its id in brackets."""
    if i % 3 == 0:
        return f"[ex{i:05d}] thanks!\n\nlunch?"
    return f"[ex{i:05d}] the staging cluster {i} is timing out on health checks, should we restart the ingress pods?"


def make_examples_db(path: Path, n: int) -> Paths:
    """A DuckDB file with a training_examples table of ``n`` rows following the data contract."""
    con = open_duckdb(str(path))
    con.execute("create schema if not exists marts")  # the model's layer schema, as a build puts it
    con.execute(
        """
        create table marts.training_examples as
        select
            printf('ex%05d', i) as example_id,
            printf('c%04d', i // 3) as conversation_id,
            'C' || (i % 4)::varchar as channel_id,
            ['general', 'deploys', 'random', 'engineering'][(i % 4) + 1] as channel_name,
            (1700000000 + i)::varchar || '.000100' as target_ts,
            to_timestamp(1700000000 + i)::timestamp as target_at,
            'U' || (i % 5)::varchar as responder_user_id,
            (i % 5)::integer as label,
            text || ? as prompt,
            ' ' || (i % 5)::varchar as completion,
            2 as n_context_messages,
            (i % 2 = 0) as responder_spoke_before,
            ['U1'] as prior_participant_ids,
            []::varchar[] as mentioned_user_ids
        from (select unnest(?::varchar[]) as text, unnest(range(?)) as i)
        """,
        [SUFFIX, [example_text(i) for i in range(n)], n],
    )
    con.close()
    return Paths(duckdb=path, workdir=path.parent / "work", project_dir=PROJECT_DIR)


def blocks(body: dict) -> list[tuple[str, str]]:
    """(number, text) of the examples in a refine request."""
    return _BLOCK.findall(body["messages"][-1]["content"])


def example_ids(body: dict) -> list[str]:
    """The example ids a refine request asked about."""
    return [_ID.search(text).group(1) for _, text in blocks(body)]


def judge(text: str) -> str:
    return "strong" if "cluster" in text else "weak"


def responder(body: dict) -> str:
    """A well-behaved classifier: strong when the text names the cluster."""
    return json.dumps({num: judge(text) for num, text in blocks(body)})


def verdicts(db: Path) -> dict[str, tuple[str, str | None]]:
    """example id -> (verdict, reason) over all keys (each test uses one key)."""
    con = open_duckdb(str(db), read_only=True)
    try:
        rows = con.execute("select example_id, verdict, reason from refine_verdicts").fetchall()
    finally:
        con.close()
    out: dict[str, tuple[str, str | None]] = {}
    for eid, verdict, reason in rows:
        assert eid not in out, f"{eid} has two verdicts"
        out[eid] = (verdict, reason)
    return out
