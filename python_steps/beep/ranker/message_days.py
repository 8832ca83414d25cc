"""A fingerprint per day of what the ranker's replay reads (``int_conversations``), so that a later run
can tell whether the messages an earlier run read are still exactly as it read them.

The responder ranker's answer for an example is a function of every message written up to the
example's last context message (one chronological replay, :mod:`beep.ranker.stream`) and of the model's
saved states. When every message up to an example's day is as it was, the answer is the one given
before: a daily run keeps the model (:mod:`beep.finetune.keep`) and the stored predictions of unchanged
examples (:mod:`beep.evaluate.reuse`) only then.

:func:`read_snapshot` records, for the messages in the table now, the time of the last one (``until``)
and per UTC day of ``message_at`` its row count with the sum and the xor of a 64-bit hash of every
column the replay reads (conversation, position, time, ts, author, channel, channel name, text,
mentions). :func:`first_change` compares it with the table later, over the messages written up to
``until`` only: messages added after it (the rest of a day a partial export ended in, new days) are not
a change; an edited, deleted or late-inserted message at or before it is. DuckDB's ``hash`` may change
between DuckDB versions: then every day differs, and nothing is reused (safe).
"""

from __future__ import annotations

from typing import Any

import duckdb

#: The columns of int_conversations the ranker's replay reads (beep.ranker.stream._MESSAGES_SQL).
_COLUMNS = ("conversation_id", "position", "message_at", "ts", "user_id", "channel_id", "channel_folder",
            "channel_name", "clean_text", "mentioned_user_ids")


def day_digests(con: duckdb.DuckDBPyConnection, until: str | None = None) -> dict[str, str]:
    """{'YYYY-MM-DD': fingerprint} of every day with messages in ``int_conversations`` (UTC days of
    ``message_at``), over the messages written at or before ``until`` (a timestamp's text) when given."""
    row_hash = f"hash({', '.join(_COLUMNS)})"
    rows = con.execute(
        f"""
        select strftime(message_at, '%Y-%m-%d') as day, count(*) as n,
               cast(sum(cast({row_hash} as hugeint)) as varchar) as total, bit_xor({row_hash}) as x
        from int_conversations
        where message_at is not null and (cast(? as varchar) is null or message_at <= cast(? as timestamp))
        group by 1 order by 1
        """,
        [until, until],
    ).fetchall()
    return {str(day): f"{n}:{total}:{x}" for day, n, total, x in rows}


def read_snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """``{"until": the last message's time, "days": day_digests(con)}`` of the table now (JSON-ready)."""
    until = con.execute("select cast(max(message_at) as varchar) from int_conversations").fetchone()[0]
    return {"until": until, "days": day_digests(con)}


def first_change(snapshot: dict[str, Any], con: duckdb.DuckDBPyConnection) -> str | None:
    """The first day (``YYYY-MM-DD``) whose messages up to ``snapshot["until"]`` differ now from when the
    snapshot was read (added, removed or changed); None when every one is the same."""
    before = {str(k): str(v) for k, v in (snapshot.get("days") or {}).items()}
    now = day_digests(con, snapshot.get("until")) if snapshot.get("until") else {}
    changed = [day for day in set(before) | set(now) if before.get(day) != now.get(day)]
    return min(changed) if changed else None


def is_snapshot(value: Any) -> bool:
    """Whether ``value`` is what :func:`read_snapshot` returns (as stored in JSON)."""
    return isinstance(value, dict) and isinstance(value.get("days"), dict) and "until" in value
