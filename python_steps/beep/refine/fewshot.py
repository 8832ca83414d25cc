"""The few-shot set: curated strong / weak examples, and which set a dataset gets.

Two sets ship: ``seeds/fewshot_examples.csv``, curated from the bundled sample (its rows name the
sample's examples), and ``seeds/fewshot_generic.csv``, hand-written generic workplace and
support-chat examples (substantive messages vs chatter) for every other workspace.
:func:`choose_fewshot` picks: the file given (``--fewshot`` or ``BEEP_FEWSHOT``), else the
sample's set when the dataset holds the examples it was curated from, else the generic set, and
says which and why.

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
import os
from dataclasses import dataclass
from pathlib import Path

from beep.labels import PROMPT_SUFFIX

VERDICTS = ("strong", "weak")
FEWSHOT_COLUMNS = ("text", "verdict", "note", "example_id")


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
    """The bundled sample's few-shot set (curated from its examples)."""
    return Path(project_dir) / "seeds" / "fewshot_examples.csv"


def generic_fewshot_path(project_dir: Path) -> Path:
    """The generic default set for any workspace other than the sample."""
    return Path(project_dir) / "seeds" / "fewshot_generic.csv"


CURATE_HINT = (
    "to curate one for this workspace: `beep fewshot suggest --out fewshot.csv`, correct its verdict "
    "column, then `beep refine --fewshot fewshot.csv` (or BEEP_FEWSHOT=fewshot.csv for `beep run`)"
)


@dataclass(frozen=True)
class FewShotChoice:
    """The set a refine uses, where it came from (``given`` | ``sample`` | ``generic``) and a line saying so."""

    fewshot: FewShotSet
    source: str
    message: str


def dataset_is_sample(db: Path, sample: FewShotSet, *, min_share: float = 0.5) -> bool:
    """Whether ``training_examples`` holds at least ``min_share`` of the examples the sample's set was
    curated from (its ``example_id``s: hashes of channel, conversation and message ts): true for a
    dataset built from the bundled sample, however it was built, and for no other workspace."""
    ids = sorted({e.example_id for e in sample.examples if e.example_id})
    if not ids or not Path(db).exists():
        return False
    from beep.db import connect, table_exists

    with connect(db, read_only=True) as con:
        if not table_exists(con, "training_examples"):
            return False
        found = con.execute(
            "select count(*) from training_examples where example_id in (select unnest(?::varchar[]))", [ids]
        ).fetchone()[0]
    return found >= min_share * len(ids)


def choose_fewshot(db: Path, project_dir: Path, given: Path | None = None) -> FewShotChoice:
    """The few-shot set for the dataset in ``db``: ``given`` (else the file named by the environment
    variable ``BEEP_FEWSHOT``, so that `beep run` uses it too), else the sample's set for the bundled
    sample, else the generic set, never the sample's set silently on another workspace."""
    how = "given with --fewshot"
    if given is None and os.environ.get("BEEP_FEWSHOT"):
        given, how = Path(os.environ["BEEP_FEWSHOT"]), "given with BEEP_FEWSHOT"
    if given is not None:
        fewshot = load_fewshot(given)
        return FewShotChoice(fewshot, "given", f"few-shot set: {given} ({len(fewshot.examples)} examples, {how})")
    sample_path = default_fewshot_path(project_dir)
    sample = load_fewshot(sample_path)
    if dataset_is_sample(db, sample):
        return FewShotChoice(sample, "sample", f"few-shot set: the bundled sample's ({sample_path.name}, "
                                               f"{len(sample.examples)} examples curated from this dataset)")
    generic_path = generic_fewshot_path(project_dir)
    generic = load_fewshot(generic_path)
    return FewShotChoice(
        generic, "generic",
        f"few-shot set: the generic default ({generic_path.name}, {len(generic.examples)} hand-written workplace "
        f"examples: substantive messages vs chatter), not curated for this workspace; {CURATE_HINT}",
    )


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
