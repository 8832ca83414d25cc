"""Train / validation split by whole conversations, so no conversation's text is on both sides.

Neighbouring windows of one conversation share most of their text, so a random split by example
leaks. Two methods:

* ``time`` (default): conversations ordered by when they started; the newest go to validation —
  what a model trained today meets tomorrow.
* ``conversation``: conversations ordered by a seeded hash of their id (reproducible on any
  machine, unlike a seeded shuffle whose algorithm may change).

Either way whole conversations are added to validation until it holds ``valid_fraction`` of the
examples; both sides keep at least one conversation when there are two or more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

SPLIT_METHODS: tuple[str, ...] = ("time", "conversation")
#: A later export keeps the time split's boundary of the export before it while validation holds within
#: this share of --valid-fraction (0.15–0.25 of the examples for 0.2; beep.export.api._time_boundary):
#: a daily run's new examples then land in validation and the train split stays the same.
SPLIT_ANCHOR_TOLERANCE = 0.25


def split_examples(
    rows: Sequence[dict[str, Any]], *, method: str = "time", valid_fraction: float = 0.2, seed: int = 0
) -> dict[str, str]:
    """``example_id -> 'train' | 'valid'`` for every row (rows need example_id, conversation_id, target_at)."""
    if method not in SPLIT_METHODS:
        raise ValueError(f"unknown split method {method!r}: choose one of {', '.join(SPLIT_METHODS)}")
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"--valid-fraction must be between 0 and 1 (exclusive), got {valid_fraction}")
    by_conversation: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_conversation.setdefault(str(row["conversation_id"]), []).append(row)

    if method == "time":
        def started(conv: str) -> tuple[datetime, str]:
            times = [r["target_at"] for r in by_conversation[conv] if r.get("target_at") is not None]
            return (min(times) if times else datetime.min, conv)

        newest_first = sorted(by_conversation, key=started, reverse=True)
    else:
        def draw(conv: str) -> str:
            return hashlib.sha256(f"{seed}:{conv}".encode()).hexdigest()

        newest_first = sorted(by_conversation, key=lambda conv: (draw(conv), conv))

    target = valid_fraction * len(rows)
    valid: set[str] = set()
    n_valid = 0
    for conv in newest_first:
        if n_valid >= target or len(valid) >= len(newest_first) - 1:
            break
        valid.add(conv)
        n_valid += len(by_conversation[conv])
    return {
        str(row["example_id"]): ("valid" if str(row["conversation_id"]) in valid else "train") for row in rows
    }
