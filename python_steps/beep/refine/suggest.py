"""`beep fewshot suggest`: candidate few-shot examples from the user's own dataset, for a person to mark.

A few dozen examples picked to cover what a workspace's chat is made of, not a random draw (a random
draw of a support channel is mostly questions): examples are sorted into kinds by their shape —
short acknowledgements and thanks, questions, problem reports, technical messages, long messages,
the rest — plus the ``borderline`` ones the current set is least sure about, and taken round-robin
over kinds and, within a kind, over channels, each in a seeded pseudo-random order. Every
candidate carries the current set's verdict, so the file is a valid few-shot set as written: the
person corrects the verdicts that are wrong, deletes rows they are unsure of, and passes it to
`beep refine --fewshot FILE`.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import duckdb
import numpy as np

from beep.refine.fewshot import FEWSHOT_COLUMNS, FewShotSet, strip_suffix

#: The kinds candidates are spread over, in the order a candidate is assigned to the first that fits.
KINDS = ("borderline", "short_ack", "chatter", "question", "problem", "technical", "long", "other")
CANDIDATE_COLUMNS = (*FEWSHOT_COLUMNS, "kind", "confidence", "channel_name", "n_chars")
#: How many examples (a seeded draw) the kinds are computed on: enough for every kind, fast on any size.
POOL = 20_000


def _kinds(texts: list[str], confidence: np.ndarray) -> list[str]:
    from beep.refine.local import SHAPE_FEATURES, shape_features

    f = shape_features(texts)
    col = {name: f[:, i] for i, name in enumerate(SHAPE_FEATURES)}
    long_cut = np.quantile(col["log_chars"], 0.8) if len(texts) else 0.0
    tech_cut = max(0.15, float(np.quantile(col["share_technical_tokens"], 0.8))) if len(texts) else 1.0
    borderline = set(np.argsort(confidence)[: max(1, len(texts) // 20)].tolist()) if len(texts) else set()
    out = []
    for i in range(len(texts)):
        if i in borderline:
            out.append("borderline")
        elif col["last_is_chatter"][i] and col["share_chatter"][i] >= 0.5:
            out.append("short_ack")
        elif col["last_is_chatter"][i] or col["last_laughs"][i]:
            out.append("chatter")
        elif col["last_has_question"][i] or col["open_question_anywhere"][i]:
            out.append("question")
        elif col["share_with_problem_word"][i] > 0:
            out.append("problem")
        elif col["share_technical_tokens"][i] >= tech_cut:
            out.append("technical")
        elif col["log_chars"][i] >= long_cut:
            out.append("long")
        else:
            out.append("other")
    return out


def suggest_candidates(
    con: duckdb.DuckDBPyConnection, fewshot: FewShotSet, *, n: int = 60, seed: int = 7,
    exclude_ids: set[str] | None = None,
) -> list[dict[str, str | int | float]]:
    """``n`` candidates spread over kinds and channels, each with ``fewshot``'s current verdict.

    Deterministic: the same data, set and ``seed`` give the same candidates. Examples in
    ``exclude_ids`` (already in a set) and repeated texts are skipped.
    """
    from beep.refine.local import LocalClassifier

    rows = con.execute(
        """
        select example_id, channel_name, prompt from training_examples
        order by md5(example_id || ?::varchar), example_id limit ?
        """,
        [str(seed), POOL],
    ).fetchall()
    exclude_ids = exclude_ids or set()
    seen_texts = {e.text.strip().lower() for e in fewshot.examples}
    pool = []
    for example_id, channel, prompt in rows:
        text = strip_suffix(prompt)
        key = text.strip().lower()
        if example_id in exclude_ids or key in seen_texts or not key:
            continue
        seen_texts.add(key)
        pool.append((example_id, channel or "", text))
    if not pool:
        return []
    verdicts, confidence = LocalClassifier.fit(fewshot).predict([t for _, _, t in pool])
    kinds = _kinds([t for _, _, t in pool], np.asarray(confidence))
    # kind -> channel -> candidates (in the seeded order); then round-robin kinds, channels within a kind
    buckets: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (kind, (_, channel, _)) in enumerate(zip(kinds, pool)):
        buckets[kind][channel].append(i)
    cursors = {kind: 0 for kind in buckets}
    picked: list[int] = []
    while len(picked) < n and any(buckets.values()):
        for kind in KINDS:
            channels = buckets.get(kind)
            if not channels or len(picked) >= n:
                continue
            names = sorted(channels)
            name = names[cursors[kind] % len(names)]
            cursors[kind] += 1
            picked.append(channels[name].pop(0))
            if not channels[name]:
                del channels[name]
    out: list[dict[str, str | int | float]] = []
    for i in picked:
        example_id, channel, text = pool[i]
        out.append({
            "text": text, "verdict": verdicts[i], "note": "", "example_id": example_id, "kind": kinds[i],
            "confidence": round(float(confidence[i]), 3), "channel_name": channel, "n_chars": len(text),
        })
    return out


def write_candidates(rows: list[dict[str, str | int | float]], out: Path) -> None:
    """The candidates as a CSV that `beep refine --fewshot` reads as it is (extra columns are ignored)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CANDIDATE_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in CANDIDATE_COLUMNS})
