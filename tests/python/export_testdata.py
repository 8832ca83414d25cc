"""Small, hand-made dataset tables (the dbt marts' contract) for the export and fine-tune tests."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from beep.config import Paths
from beep.db import open_duckdb
from beep.export.store import insert_rows

TOPICS = {
    0: "deploy kubernetes helm cluster pod rollout",
    1: "invoice billing refund payment card charge",
    2: "design figma mockup colour font layout",
}
USERS = {0: ("U0", "ana"), 1: ("U1", "bo"), 2: ("U2", "cy")}
SUFFIX = "\n\n###\n\n"


def make_rows(n_conversations: int = 12, per_conversation: int = 3, seed: int = 7) -> list[dict[str, Any]]:
    """Rows with every training_examples column; each conversation is about one topic / responder."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, 9, 0, 0)
    rows = []
    for c in range(n_conversations):
        label = c % 3
        conv = f"conv{c:03d}"
        channel = f"C{label}"
        for k in range(per_conversation):
            words = TOPICS[label].split()
            text = " ".join(rng.choice(words) for _ in range(8))
            example_id = hashlib.sha256(f"{conv}:{k}".encode()).hexdigest()[:16]
            rows.append(
                {
                    "example_id": example_id,
                    "conversation_id": conv,
                    "channel_id": channel,
                    "channel_name": f"chan-{label}",
                    "target_ts": f"{1704099600 + c * 3600 + k}.000100",
                    "target_at": start + timedelta(hours=c, minutes=k),
                    "responder_user_id": USERS[label][0],
                    "label": label,
                    "prompt": f"message {c}-{k}: {text}{SUFFIX}",
                    "completion": f" {label}",
                    "n_context_messages": k + 1,
                    "responder_spoke_before": k > 0,
                    "prior_participant_ids": ["U9", USERS[label][0]] if k else ["U9"],
                    "mentioned_user_ids": [],
                }
            )
    return rows


def write_tables(
    db: Path, rows: list[dict[str, Any]], *, refined_verdicts: dict[str, str | None] | None = None,
    users: dict[int, tuple[str, str]] | None = None,
) -> None:
    """(Re)create training_examples, user_labels and refined_training_examples in ``db``.

    ``refined_verdicts`` maps example_id -> 'strong' | 'weak' | 'refused' | 'undecided' | None
    (None: no label at all); default strong. Like the dbt model, only weak changes the label (to nil).
    ``users``: user_labels' label -> (user id, name) (default USERS).
    """
    db.parent.mkdir(parents=True, exist_ok=True)
    con = open_duckdb(str(db))
    try:
        # the dbt models' tables in their layer schema, as a build puts them (macros/layer_schemas.sql)
        con.execute("create schema if not exists marts")
        con.execute("drop table if exists marts.training_examples")
        con.execute("drop table if exists marts.user_labels")
        con.execute("drop table if exists marts.refined_training_examples")
        con.execute(
            """
            create table marts.training_examples (
                example_id varchar, conversation_id varchar, channel_id varchar, channel_name varchar,
                target_ts varchar, target_at timestamp, responder_user_id varchar, label integer,
                prompt varchar, completion varchar, n_context_messages integer, responder_spoke_before boolean,
                prior_participant_ids varchar[], mentioned_user_ids varchar[])
            """
        )
        cols = list(rows[0].keys()) if rows else []
        insert_rows(con, "marts.training_examples", cols, [[row[c] for c in cols] for row in rows])
        con.execute("create table marts.user_labels (user_id varchar, user_name varchar, label integer, n_examples integer)")
        for label, (uid, name) in (users or USERS).items():
            con.execute("insert into marts.user_labels values (?, ?, ?, ?)", [uid, name, label, 0])
        verdicts = refined_verdicts or {}
        con.execute("create table verdicts (example_id varchar, verdict varchar)")
        insert_rows(con, "verdicts", ["example_id", "verdict"],
                    [[row["example_id"], verdicts.get(row["example_id"], "strong")] for row in rows])
        con.execute(
            """
            create table marts.refined_training_examples as
            select t.*, v.verdict,
                   case when v.verdict = 'weak' then 'nil' when v.verdict is not null then cast(t.label as varchar) end
                       as target_label
            from marts.training_examples t join verdicts v using (example_id)
            """
        )
        con.execute("drop table verdicts")
    finally:
        con.close()


def make_paths(tmp_path: Path) -> Paths:
    return Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / "work")


def exported_workspace(tmp_path: Path, **rows: Any) -> tuple[Paths, Any]:
    """A DuckDB file with ``make_rows(**rows)`` as the dataset, exported: (paths, the export result)."""
    from beep.export.api import export

    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(**rows))
    return paths, export(paths)


def fast_remote_settings() -> dict[str, Any]:
    """finetune() keyword arguments that poll and retry in milliseconds, for the fake OpenAI server."""
    from beep.finetune.api import PollSettings
    from beep.llm.retry import RetryPolicy

    return dict(poll=PollSettings(interval_seconds=0.01, show_progress=False),
                retry=RetryPolicy(max_tries=3, base_seconds=0.01, cap_seconds=0.02))
