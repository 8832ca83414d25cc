"""Tiny hand-made workspaces for the ranker tests: the two tables the ranker reads
(``int_conversations`` and ``training_examples``), written straight into a DuckDB file."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from beep.db import open_duckdb

T0 = datetime(2024, 3, 4, 9, 0, 0)


@dataclass
class Msg:
    conversation: str
    user: str
    seconds: float  # after T0
    text: str
    channel: str = "C1"
    mentions: list[str] = field(default_factory=list)


_CONVERSATION_COLUMNS = {"conversation_id": "varchar", "channel_folder": "varchar", "ts": "varchar",
                         "position": "bigint", "channel_id": "varchar", "channel_name": "varchar",
                         "user_id": "varchar", "clean_text": "varchar", "mentioned_user_ids": "varchar[]",
                         "message_at": "timestamp"}
_EXAMPLE_COLUMNS = {"example_id": "varchar", "conversation_id": "varchar", "channel_id": "varchar",
                    "target_ts": "varchar", "target_at": "timestamp", "responder_user_id": "varchar"}


def _load_table(con: duckdb.DuckDBPyConnection, folder: Path, table: str, columns: dict[str, str],
                rows: list[tuple]) -> None:
    """(Re)create ``table`` and load ``rows`` through one JSON-lines file (executemany of 1,000 rows
    takes seconds)."""
    con.execute(f"create or replace table {table} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
    if not rows:
        return
    path = folder / f".{table}-rows.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(dict(zip(columns, row)), default=str) + "\n")
    spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in columns.items()) + "}"
    try:
        con.execute(f"insert into {table} select * from read_json(?, format = 'newline_delimited', columns = {spec})",
                    [str(path)])
    finally:
        path.unlink()


def write_world(db: Path, messages: list[Msg]) -> None:
    """Write the messages as int_conversations (positions per conversation, in time order) and one
    training example per reply (a message by someone else than the previous one's author)."""
    ordered = sorted(messages, key=lambda m: m.seconds)
    position: dict[str, int] = {}
    previous: dict[str, str] = {}
    conv_rows, example_rows = [], []
    for m in ordered:
        position[m.conversation] = position.get(m.conversation, 0) + 1
        at = T0 + timedelta(seconds=m.seconds)
        ts = f"{at.replace(tzinfo=timezone.utc).timestamp():.6f}"
        conv_rows.append((m.conversation, m.channel, ts, position[m.conversation], m.channel, f"#{m.channel}", m.user,
                          m.text, m.mentions, at))
        if m.conversation in previous and previous[m.conversation] != m.user:
            example_rows.append((f"ex-{m.conversation}-{position[m.conversation]}", m.conversation, m.channel, ts, at, m.user))
        previous[m.conversation] = m.user
    con = open_duckdb(str(db))
    try:
        # the dbt models' tables in their layer schemas, as a build puts them (macros/layer_schemas.sql)
        con.execute("create schema if not exists intermediate")
        con.execute("create schema if not exists marts")
        _load_table(con, Path(db).parent, "intermediate.int_conversations", _CONVERSATION_COLUMNS, conv_rows)
        _load_table(con, Path(db).parent, "marts.training_examples", _EXAMPLE_COLUMNS, example_rows)
    finally:
        con.close()


TOPICS = {
    "db": "postgres index query slow vacuum replica",
    "net": "dns vpn firewall latency packet route",
    "ui": "css button layout react render modal",
    "ci": "pipeline build runner cache artifact deploy",
}


def synthetic_workspace(n_people: int, n_messages: int, *, seed: int = 0, n_channels: int = 4,
                        nil_rate: float = 0.0) -> tuple[list[Msg], dict[str, str]]:
    """A workspace with learnable structure: experts answer questions on their topic, askers get
    answers from the conversation's participants, and (with ``nil_rate``) some conversations end in
    chatter ("thanks!"). Returns the messages and, per chatter reply, its example id -> 'nil'."""
    rng = random.Random(seed)
    people = [f"U{i:05d}" for i in range(n_people)]
    expertise = {p: rng.choice(list(TOPICS)) for p in people}
    weights = [1.0 / (i + 1) for i in range(n_people)]  # a long tail
    messages: list[Msg] = []
    nil: dict[str, str] = {}
    t = 0.0
    conv = 0
    position: dict[str, int] = {}
    while len(messages) < n_messages:
        conv += 1
        cid = f"c{conv}"
        channel = f"C{rng.randrange(n_channels)}"
        topic = rng.choice(list(TOPICS))
        asker = rng.choices(people, weights)[0]
        experts = [p for p in people[:200] if expertise[p] == topic] or people[:5]
        expert = rng.choice(experts[:8])
        words = TOPICS[topic].split()
        noise = " ".join(f"w{rng.randrange(5000)}" for _ in range(3))  # a large vocabulary
        turns = [(asker, f"how do I fix the {rng.choice(words)} {rng.choice(words)} problem? {noise}", [])]
        mention = [expert] if rng.random() < 0.3 else []
        turns[0] = (asker, turns[0][1], mention)
        turns.append((expert, f"check the {rng.choice(words)} and the {rng.choice(words)} settings", []))
        turns.append((asker, f"the {rng.choice(words)} still fails", []))
        turns.append((expert, f"then restart the {rng.choice(words)}", []))
        chatter = rng.random() < nil_rate
        if chatter:
            turns.append((asker, "thanks!", []))
            turns.append((rng.choice([p for p in people[:20] if p != asker]), "lol ok", []))
        for user, text, mentions in turns:
            t += rng.uniform(20, 200)
            messages.append(Msg(cid, user, t, text, channel, mentions))
            position[cid] = position.get(cid, 0) + 1
        if chatter:
            nil[f"ex-{cid}-{position[cid]}"] = "nil"
        t += rng.uniform(600, 4000)
    return messages[:n_messages], nil
