"""A fingerprint per day of what the ranker's replay reads (``int_conversations``), so that a later run
can tell which days are exactly as an earlier run saw them.

The responder ranker's answer for an example is a function of every message written up to the
example's last context message (one chronological replay, :mod:`beep.ranker.stream`) and of the model's
saved states. When the messages of every day up to an example's day are as they were, the answer is the
one given before: a daily run keeps the model (:mod:`beep.finetune.keep`) and the stored predictions of
unchanged examples (:mod:`beep.evaluate.api`) only then.

A day's fingerprint is its row count with the sum and the xor of a 64-bit hash of every column the
replay reads (conversation, position, time, ts, author, channel, channel name, text, mentions). DuckDB's
``hash`` may change between DuckDB versions: then every day differs, and nothing is reused (safe).
"""

from __future__ import annotations

import duckdb

#: The columns of int_conversations the ranker's replay reads (beep.ranker.stream._MESSAGES_SQL).
_COLUMNS = ("conversation_id", "position", "message_at", "ts", "user_id", "channel_id", "channel_folder",
            "channel_name", "clean_text", "mentioned_user_ids")


def message_day_digests(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """{'YYYY-MM-DD': fingerprint} of every day with messages in ``int_conversations`` (UTC days of
    ``message_at``)."""
    row_hash = f"hash({', '.join(_COLUMNS)})"
    rows = con.execute(
        f"""
        select strftime(message_at, '%Y-%m-%d') as day, count(*) as n,
               cast(sum(cast({row_hash} as hugeint)) as varchar) as total, bit_xor({row_hash}) as x
        from int_conversations
        where message_at is not null
        group by 1 order by 1
        """
    ).fetchall()
    return {str(day): f"{n}:{total}:{x}" for day, n, total, x in rows}


def first_changed_day(before: dict[str, str], now: dict[str, str]) -> str | None:
    """The first day (``YYYY-MM-DD``) whose messages differ between ``before`` and ``now`` (a day
    added, removed or changed); None when every day is the same."""
    changed = [day for day in set(before) | set(now) if before.get(day) != now.get(day)]
    return min(changed) if changed else None


def same_until(before: dict[str, str], now: dict[str, str], last_day: str) -> str | None:
    """None when every day up to and including ``last_day`` is the same in ``before`` and ``now``; else
    the first day that differs."""
    first = first_changed_day(before, now)
    return first if first is not None and first <= last_day else None
