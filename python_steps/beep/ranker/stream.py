"""The chronological pass: read the workspace's messages from DuckDB in time order, feed a
:class:`WorkspaceState`, and stop right after each requested example's last context message to
take its candidates.

An example's *last context message* is the message just before its target in the conversation
(``int_conversations.position - 1``): a reply target is by someone other than the previous
message's author, so that message is in every prompt form. The query is answered after that
message and before any later one, so what the target's author did next is never seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import duckdb

from beep.ranker.features import Candidates, candidates
from beep.ranker.state import Message, WorkspaceState
from beep.ranker.text import TextEmbedder

#: Messages fetched from DuckDB (and embedded) per chunk.
CHUNK = 20_000


@dataclass(frozen=True)
class Query:
    """One example to score: where it sits in the stream and (for training) who answered."""

    example_id: str
    conversation_id: str
    last_position: int  # position of the last context message in its conversation
    target_at: float  # epoch seconds of the target (only to order and split examples, never a feature)
    responder_user_id: str | None
    label: str | None = None
    last_at: float | None = None  # epoch seconds of the last context message (where the query is answered)


_MESSAGES_SQL = """
    select conversation_id, position, epoch(message_at) as at, user_id,
           coalesce(channel_id, channel_folder) as channel, clean_text, mentioned_user_ids,
           coalesce(channel_name, channel_folder) as channel_name
    from int_conversations
    {where}
    order by message_at, ts, conversation_id
"""


def load_queries(con: duckdb.DuckDBPyConnection, example_ids: Iterable[str]) -> dict[str, Query]:
    """The stream position of each example (by id); examples no longer in the dataset are absent."""
    wanted = set(example_ids)
    rows = con.execute(
        """
        select te.example_id, te.conversation_id, c.position - 1, epoch(te.target_at), te.responder_user_id,
               epoch(last.message_at)
        from training_examples te
        inner join int_conversations c on c.conversation_id = te.conversation_id and c.ts = te.target_ts
        left join int_conversations last on last.conversation_id = c.conversation_id and last.position = c.position - 1
        """
    ).fetchall()
    return {str(r[0]): Query(str(r[0]), str(r[1]), int(r[2]), float(r[3]), r[4],
                             last_at=None if r[5] is None else float(r[5]))
            for r in rows if str(r[0]) in wanted}


def sample_texts(con: duckdb.DuckDBPyConnection, until: float, limit: int = 50_000) -> list[str]:
    """A deterministic sample of message texts written at or before ``until`` (the training period)."""
    rows = con.execute(
        """
        select clean_text from int_conversations
        where epoch(message_at) <= ? and clean_text is not null and length(clean_text) > 0
        order by hash(conversation_id || '|' || ts) limit ?
        """,
        [until, limit],
    ).fetchall()
    return [r[0] for r in rows]


def _chunks(con: duckdb.DuckDBPyConnection, until: float | None, since: float | None = None) -> Iterator[list[tuple]]:
    conditions, params = [], []
    if since is not None:
        conditions.append("epoch(message_at) > ?")
        params.append(since)
    if until is not None:
        conditions.append("epoch(message_at) <= ?")
        params.append(until)
    where = ("where " + " and ".join(conditions)) if conditions else ""
    cursor = con.execute(_MESSAGES_SQL.format(where=where), params)
    while True:
        rows = cursor.fetchmany(CHUNK)
        if not rows:
            return
        yield rows


def replay(
    con: duckdb.DuckDBPyConnection,
    state: WorkspaceState,
    embedder: TextEmbedder,
    queries: Iterable[Query],
    on_query: Callable[[Query, Candidates], None],
    *,
    until: float | None = None,
    since: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    every: int = 0,
    on_every: Callable[[float], None] | None = None,
) -> int:
    """Feed every message (after ``since``, up to ``until``) to ``state``; after each query's last
    context message, call ``on_query(query, candidates)``. Returns the number of messages observed.
    ``since`` resumes a state that already observed every message up to then. ``on_every(t)`` is
    called, once at least ``every`` messages were observed since its last call, before the first
    message written after ``t``: the state has then observed exactly the messages written up to ``t``
    (a checkpoint a replay with ``since=t`` can resume from)."""
    by_position: dict[tuple[str, int], list[Query]] = {}
    for query in queries:
        by_position.setdefault((query.conversation_id, query.last_position), []).append(query)
    total_queries = sum(len(v) for v in by_position.values())
    answered = 0
    observed = 0
    since_mark = 0
    last_at: float | None = None
    for rows in _chunks(con, until, since):
        vectors = embedder.embed([r[5] or "" for r in rows])
        for row, vector in zip(rows, vectors):
            conversation_id, position, at, user_id, channel, text, mentioned, channel_name = row
            if user_id is None:
                continue
            text = text or ""
            if on_every is not None and since_mark >= every and last_at is not None and float(at) > last_at:
                on_every(last_at)
                since_mark = 0
            since_mark += 1
            last_at = float(at)
            message = Message(
                conversation_id=conversation_id,
                position=int(position),
                at=float(at),
                user=state.intern(user_id),
                channel=channel,
                vector=vector,
                mentions=tuple(state.intern(u) for u in (mentioned or ()) if u and u != user_id),
                text_chars=len(text),
                has_question="?" in text,
            )
            state.observe(message)
            observed += 1
            waiting = by_position.pop((conversation_id, int(position)), None)
            if waiting:
                conv = state.conversations[conversation_id]
                found = candidates(state, conv, message.at, channel_name=channel_name)
                for query in waiting:
                    on_query(query, found)
                    answered += 1
        if progress is not None:
            progress(answered, total_queries)
    return observed
