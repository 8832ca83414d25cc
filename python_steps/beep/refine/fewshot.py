"""The few-shot set: curated strong / weak examples in ``seeds/fewshot_examples.csv``.

Columns: ``text`` (an example's prompt without the ``\\n\\n###\\n\\n`` suffix), ``verdict``
(``strong`` | ``weak``), ``note`` (why, for the next curator), ``example_id`` (where it came from;
may be empty for hand-written examples). The set's content hash (text and verdict of every row, in
file order — the order is part of the prompt) is part of every verdict's key: editing the set
re-refines under the new hash and never mixes verdicts of two sets.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

VERDICTS = ("strong", "weak")
FEWSHOT_COLUMNS = ("text", "verdict", "note", "example_id")
PROMPT_SUFFIX = "\n\n###\n\n"


class FewShotError(ValueError):
    """The few-shot file is missing, malformed or too small."""


@dataclass(frozen=True)
class FewShotExample:
    text: str
    verdict: str
    note: str = ""
    example_id: str = ""


@dataclass(frozen=True)
class FewShotSet:
    examples: tuple[FewShotExample, ...]
    path: Path | None = None

    @property
    def hash(self) -> str:
        """16 hex chars of sha256 over the (text, verdict) rows in order."""
        canonical = json.dumps([[e.text, e.verdict] for e in self.examples], ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def count(self, verdict: str) -> int:
        return sum(1 for e in self.examples if e.verdict == verdict)


def strip_suffix(prompt: str) -> str:
    """An example's text as the classifier sees it: the prompt without its trailing separator."""
    return prompt[: -len(PROMPT_SUFFIX)] if prompt.endswith(PROMPT_SUFFIX) else prompt


def default_fewshot_path(project_dir: Path) -> Path:
    return Path(project_dir) / "seeds" / "fewshot_examples.csv"


def load_fewshot(path: Path, *, min_per_verdict: int = 2) -> FewShotSet:
    """Read and check the few-shot CSV; errors name the file, the line and what to fix."""
    path = Path(path)
    if not path.exists():
        raise FewShotError(
            f"few-shot set {path} not found: create it (columns {', '.join(FEWSHOT_COLUMNS)}), e.g. from "
            f"`beep fewshot suggest` candidates marked strong/weak."
        )
    examples: list[FewShotExample] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("text", "verdict") if c not in (reader.fieldnames or [])]
        if missing:
            raise FewShotError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(FEWSHOT_COLUMNS)})")
        for line, row in enumerate(reader, start=2):
            text = strip_suffix(row.get("text") or "")
            verdict = (row.get("verdict") or "").strip().lower()
            if not text.strip():
                raise FewShotError(f"{path}:{line}: empty text")
            if verdict not in VERDICTS:
                raise FewShotError(f"{path}:{line}: verdict must be strong or weak, got {row.get('verdict')!r}")
            examples.append(FewShotExample(text, verdict, (row.get("note") or "").strip(), (row.get("example_id") or "").strip()))
    fewshot = FewShotSet(tuple(examples), path)
    for verdict in VERDICTS:
        if fewshot.count(verdict) < min_per_verdict:
            raise FewShotError(
                f"{path}: {fewshot.count(verdict)} {verdict} example(s); the classifier needs at least "
                f"{min_per_verdict} of each (20-30 of each is the method's advice)."
            )
    return fewshot


def suggest_candidates(
    con: duckdb.DuckDBPyConnection, *, n: int = 60, seed: int = 7, exclude_ids: set[str] | None = None
) -> list[dict[str, str | int]]:
    """``n`` candidate examples spread over channels and lengths, for a person to mark strong or weak.

    Examples are bucketed by channel x length tercile and taken round-robin across buckets, each
    bucket in a seeded pseudo-random order, so the same data and seed give the same candidates.
    """
    rows = con.execute(
        """
        with e as (
            select example_id, channel_name, prompt, length(prompt) as n_chars,
                   ntile(3) over (order by length(prompt), example_id) as length_bucket
            from training_examples
        )
        select example_id, channel_name, n_chars, length_bucket, prompt,
               row_number() over (partition by channel_name, length_bucket order by md5(example_id || ?::varchar), example_id) as pick
        from e
        order by pick, channel_name, length_bucket
        """,
        [str(seed)],
    ).fetchall()
    exclude_ids = exclude_ids or set()
    out: list[dict[str, str | int]] = []
    for example_id, channel, n_chars, bucket, prompt, _pick in rows:
        if example_id in exclude_ids:
            continue
        out.append(
            {
                "example_id": example_id,
                "channel_name": channel,
                "n_chars": n_chars,
                "length_bucket": ("short", "medium", "long")[bucket - 1],
                "text": strip_suffix(prompt),
                "verdict": "",
                "note": "",
            }
        )
        if len(out) >= n:
            break
    return out


def write_candidates(rows: list[dict[str, str | int]], out: Path) -> None:
    columns = ["text", "verdict", "note", "example_id", "channel_name", "n_chars", "length_bucket"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
