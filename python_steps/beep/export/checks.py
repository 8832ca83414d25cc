"""Every check an export runs on exactly what it is about to write, one row each in ``export_checks``.

A check has a severity (error stops the export, warning is printed and kept, info is reported);
it *passes* when it flagged nothing. Checks read the rendered records, not the source rows, so they
prove what the files contain. They stream (CheckAccumulator): an export of any size is checked in
the same memory.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import duckdb

from beep.export.render import record_answer, record_prompt, record_tokens
from beep.labels import PROMPT_SUFFIX
from beep.tokens import count_tokens, encoding_name_for

#: How many flagged example ids a check row keeps.
MAX_IDS = 20
VALID_ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class Item:
    """One example as it will be written: its ids, split, label text and rendered record."""

    example_id: str | None
    conversation_id: str | None
    split: str
    label: str | None
    record: dict[str, Any]
    target_at: Any = None
    tokens: int | None = None  # the record's token count, when the caller already counted it


@dataclass(frozen=True)
class Thresholds:
    """Limits of the checks that are a matter of judgement."""

    min_train_examples: int = 10
    max_majority_share: float = 0.5
    min_label_examples: int = 3


@dataclass(frozen=True)
class CheckResult:
    check: str
    severity: str  # error | warning | info
    passed: bool
    count: int
    example_ids: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def is_blocking(self) -> bool:
        return self.severity == "error" and not self.passed


def _result(check: str, severity: str, flagged: Sequence[Any], ok: str, bad: str, count: int | None = None) -> CheckResult:
    ids = [str(x) for x in flagged]
    n = len(ids) if count is None else count
    return CheckResult(check, severity, n == 0, n, ids[:MAX_IDS], ok if n == 0 else bad)


def _id(item: Item) -> str:
    return item.example_id or "<no example_id>"


class _Flagged:
    """A check's flagged examples: how many, and the first MAX_IDS ids (with their position)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[tuple[int, str]] = []

    def add(self, seq: int, example_id: str) -> None:
        self.count += 1
        if len(self.first) < MAX_IDS:
            self.first.append((seq, example_id))

    @staticmethod
    def merged(groups: Sequence[_Flagged]) -> tuple[int, list[str]]:
        """Several groups' flagged examples as one, in the order they came (the first MAX_IDS ids)."""
        first = sorted(pair for g in groups for pair in g.first)[:MAX_IDS]
        return sum(g.count for g in groups), [example_id for _, example_id in first]

    def result(self, check: str, severity: str, ok: str, bad: str) -> CheckResult:
        return CheckResult(check, severity, self.count == 0, self.count, [i for _, i in self.first],
                           ok if self.count == 0 else bad)


def _flagged(groups: dict[Any, _Flagged], key: Any) -> _Flagged:
    """The group of ``key``, made on first use (``setdefault`` would make a discarded one per call)."""
    group = groups.get(key)
    if group is None:
        group = groups[key] = _Flagged()
    return group


#: Rows a check store buffers before it writes them to its DuckDB tables.
_FLUSH_ROWS = 20_000


class CheckAccumulator:
    """Every check of an export, fed one item at a time in the order the files hold them.

    Memory does not grow with the number of examples: per-example checks keep a count and the first
    MAX_IDS ids; the checks over labels and answers keep one entry per label (bounded by max_labels);
    the two checks that compare every example with every other (duplicate prompts, conversations on
    both sides of the split) write one short row per example to a private DuckDB database in memory
    that spills to ``spill_dir`` past its memory limit, and query it at the end. ``results()`` gives
    what :func:`run_checks` gives for the same items, in the same order.
    """

    def __init__(
        self,
        *,
        fmt: str,
        base_model: str,
        label_prefix: str,
        token_limit: int,
        split_method: str,
        thresholds: Thresholds = Thresholds(),
        spill_dir: Path | None = None,
        memory_limit: str = "64MB",  # 256MB held 76 MB more at 634,517 examples, no faster
    ) -> None:
        self.fmt, self.base_model, self.label_prefix = fmt, base_model, label_prefix
        self.token_limit, self.split_method, self.thresholds = token_limit, split_method, thresholds
        self._tmp = None if spill_dir else tempfile.TemporaryDirectory(prefix="beep-export-checks-")
        spill = spill_dir if spill_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        #: a spill folder made here is removed on close (a folder that was there is left as it was)
        self._made: Path | None = spill if spill_dir and not spill.exists() else None
        spill.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(config={"memory_limit": memory_limit, "threads": 1,
                                           "temp_directory": str(spill), "preserve_insertion_order": False})
        # one row per example, in file order: what the duplicate and leakage checks compare
        self._con.execute("create table items (seq bigint, prompt_key varchar, label_key varchar, "
                          "conversation varchar, split varchar, example_id varchar)")
        self._rows: list[tuple[int, str, str, str, str, str]] = []
        self.n_items = self.n_train = self.n_valid = 0
        self._required, self._empty, self._too_long = _Flagged(), _Flagged(), _Flagged()
        self._suffix, self._leading, self._shape = _Flagged(), _Flagged(), _Flagged()
        self._answers: dict[str, _Flagged] = {}
        self._train_labels: dict[str | None, _Flagged] = {}
        self._valid_labels: dict[str | None, _Flagged] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)

    def add(self, item: Item) -> None:
        seq = self.n_items
        self.n_items += 1
        eid = _id(item)
        record = item.record
        prompt, answer = record_prompt(record), record_answer(record)
        if item.split == "train":
            self.n_train += 1
            _flagged(self._train_labels, item.label).add(seq, eid)
        elif item.split == "valid":
            self.n_valid += 1
            _flagged(self._valid_labels, item.label).add(seq, eid)
        if (item.example_id is None or item.conversation_id is None or item.label is None or prompt is None
                or answer is None or (self.split_method == "time" and item.target_at is None)):
            missing = [name for name, value in (("example_id", item.example_id), ("conversation_id", item.conversation_id),
                                                ("label", item.label), ("prompt", prompt), ("answer", answer))
                       if value is None]
            if self.split_method == "time" and item.target_at is None:
                missing.append("target_at")
            self._required.add(seq, f"{eid} ({', '.join(missing)})")
        if not (prompt or "").strip() or not (answer or "").strip():
            self._empty.add(seq, eid)
        tokens = item.tokens if item.tokens is not None else record_tokens(record, self.base_model)
        if tokens > self.token_limit:
            self._too_long.add(seq, eid)
        text = prompt or ""
        if text.count(PROMPT_SUFFIX) != 1 or not text.endswith(PROMPT_SUFFIX):
            self._suffix.add(seq, eid)
        if answer is not None and item.label is not None and (
                answer != self.label_prefix + item.label or answer[len(self.label_prefix):][:1].isspace()):
            self._leading.add(seq, eid)
        if not _shape_ok(record, self.fmt):
            self._shape.add(seq, eid)
        if answer is not None:
            _flagged(self._answers, answer).add(seq, eid)
        key = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        self._rows.append((seq, key, "\x00" if item.label is None else item.label, item.conversation_id or "",
                           item.split, eid))
        if len(self._rows) >= _FLUSH_ROWS:
            self._flush()

    #: What :meth:`save_state` keeps besides the items table: every count and flagged id so far.
    _STATE = ("n_items", "n_train", "n_valid", "_required", "_empty", "_too_long", "_suffix", "_leading", "_shape",
              "_answers", "_train_labels", "_valid_labels")

    def save_state(self, folder: Path) -> None:
        """Write what the items added so far left (their counts, flagged ids and rows of the items table)
        to ``folder``: an export whose train split is the same starts from it (:meth:`load_state`) and adds
        only its validation items. Only the checker's settings (format, base model, label form, token limit,
        split method) must be the same; the caller keys the state by them and by the items."""
        import pickle

        self._flush()
        folder.mkdir(parents=True, exist_ok=True)
        target = str(folder / "items.parquet").replace("'", "''")
        self._con.execute(f"copy items to '{target}' (format parquet)")
        (folder / "state.pickle").write_bytes(pickle.dumps({name: getattr(self, name) for name in self._STATE},
                                                           protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def state_ok(cls, folder: Path, *, n_items: int) -> bool:
        """Whether ``folder`` holds a whole state of ``n_items`` items that :meth:`load_state` can read."""
        import pickle

        try:
            state = pickle.loads((folder / "state.pickle").read_bytes())
            with duckdb.connect() as con:
                rows = con.execute("select count(*) from read_parquet(?)", [str(folder / "items.parquet")]).fetchone()
        except Exception:  # noqa: BLE001 - missing, truncated or foreign: not a state to start from
            return False
        return (isinstance(state, dict) and all(name in state for name in cls._STATE)
                and state.get("n_items") == n_items and rows is not None and rows[0] == n_items)

    def load_state(self, folder: Path) -> None:
        """Start from the state :meth:`save_state` wrote (before any item was added here)."""
        import pickle

        if self.n_items or self._rows:
            raise RuntimeError("load_state: items were added already")
        state = pickle.loads((folder / "state.pickle").read_bytes())
        for name in self._STATE:
            setattr(self, name, state[name])
        self._con.execute("insert into items select * from read_parquet(?)", [str(folder / "items.parquet")])

    def relabel(self, labels: Path) -> None:
        """Give the train items of a loaded state (:meth:`load_state`, before any validation item) the
        labels of ``labels`` (a Parquet file of seq, example_id, label: one row per item), as if they had
        been added with them: the items table's labels are replaced, and the per-label and per-answer groups
        made again in item order, read back in batches. The caller makes sure nothing else an item was
        checked for depends on its label: every old and new label is non-blank text without leading
        whitespace whose answer has as many tokens as the other's (beep.export.api._relabel_train)."""
        if self.n_valid or self.n_items != self.n_train:
            raise RuntimeError("relabel: only the train items of a loaded state")
        self._flush()
        path = str(labels)
        matched = self._con.execute("select count(*) from items join read_parquet(?) as now using (seq) "
                                    "where items.example_id = now.example_id", [path]).fetchone()
        if matched is None or matched[0] != self.n_items:
            raise RuntimeError("relabel: the items are not these examples")
        self._con.execute("update items set label_key = now.label from read_parquet(?) as now where items.seq = now.seq",
                          [path])
        self._train_labels, self._answers = {}, {}
        cursor = self._con.execute("select seq, label_key, example_id from items order by seq")
        while batch := cursor.fetchmany(_FLUSH_ROWS):
            for seq, label, eid in batch:
                _flagged(self._train_labels, label).add(seq, eid)
                _flagged(self._answers, self.label_prefix + label).add(seq, eid)

    def _flush(self) -> None:
        if self._rows:
            self._con.execute("insert into items select unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), "
                              "unnest($6)", [list(column) for column in zip(*self._rows)])
            self._rows.clear()

    def _duplicates(self) -> tuple[CheckResult, CheckResult]:
        self._flush()
        groups = """
            groups as (select prompt_key, min(seq) as group_first, count(distinct label_key) as n_labels
                       from items group by prompt_key having count(*) > 1),
            labels as (select prompt_key, label_key, min(seq) as label_first, count(*) as n
                       from items semi join groups using (prompt_key) group by prompt_key, label_key)"""
        exact = self._con.execute(f"""
            with {groups}
            select p.example_id, count(*) over () from items as p join groups using (prompt_key)
            join labels using (prompt_key, label_key) where labels.n > 1
            order by group_first, label_first, seq limit {MAX_IDS}""").fetchall()
        conflicting = self._con.execute(f"""
            with {groups}
            select p.example_id, count(*) over () from items as p join groups using (prompt_key)
            where n_labels > 1 order by group_first, seq limit {MAX_IDS}""").fetchall()
        n_exact = exact[0][1] if exact else 0
        n_conflicting = conflicting[0][1] if conflicting else 0
        return (
            _result("exact_duplicates", "warning", [r[0] for r in exact], "no duplicate examples",
                    f"{n_exact} examples share their prompt and label with another", n_exact),
            _result("conflicting_duplicates", "warning", [r[0] for r in conflicting], "no prompt appears with two labels",
                    f"{n_conflicting} examples share their prompt with an example of another label", n_conflicting),
        )

    def _leakage(self) -> CheckResult:
        self._flush()
        n_conversations, n_crossing = self._con.execute(
            "select count(*), count(*) filter (where n_splits > 1) from "
            "(select conversation, count(distinct split) as n_splits from items group by conversation)").fetchone()
        flagged = self._con.execute(f"""
            with crossing as (select conversation from items group by conversation having count(distinct split) > 1)
            select example_id, count(*) over () from items semi join crossing using (conversation)
            order by seq limit {MAX_IDS}""").fetchall()
        n = flagged[0][1] if flagged else 0
        return _result("conversation_leakage", "error", [r[0] for r in flagged],
                       f"no conversation in both splits ({n_conversations} conversations)",
                       f"{n_crossing} conversations are in both splits", n)

    def results(self) -> list[CheckResult]:
        """All checks, in a fixed order (the order of :func:`run_checks`)."""
        t = self.thresholds
        exact, conflicting = self._duplicates()
        ok_min = self.n_train >= t.min_train_examples
        min_examples = CheckResult(
            "min_examples", "error", ok_min, 0 if ok_min else self.n_train, [],
            f"{self.n_train} training examples (at least {t.min_train_examples} needed)" if ok_min
            else f"only {self.n_train} training examples of {self.n_items}; fine-tuning needs at least "
            f"{t.min_train_examples}: export more data (a bigger Slack export, --unrefined, or fewer exclusions)",
        )
        validation = CheckResult(
            "validation_not_empty", "error", self.n_valid > 0, 0 if self.n_valid else 1, [],
            f"{self.n_valid} validation examples" if self.n_valid
            else "the validation split is empty (all examples come from one conversation?): raise --valid-fraction or add data",
        )
        enc = encoding_name_for(self.base_model)
        answers = sorted(self._answers)
        bad = [a for a in answers if count_tokens(a, self.base_model) != 1]
        n_bad, bad_ids = _Flagged.merged([self._answers[a] for a in bad])
        single = _result("label_single_token", "error", bad_ids, f"all {len(answers)} answers are one {enc} token each",
                         f"answers {sorted(bad)!r} are not one {enc} token: {n_bad} examples", n_bad)
        unseen = sorted((lab for lab in self._valid_labels if lab not in self._train_labels), key=str)
        n_unseen, unseen_ids = _Flagged.merged([self._valid_labels[lab] for lab in unseen])
        missing_from_train = _result(
            "labels_missing_from_train", "warning", unseen_ids, "every validation label occurs in train",
            f"validation labels never seen in train: {', '.join(map(str, unseen))} ({n_unseen} examples)", n_unseen)
        train = {label: flagged.count for label, flagged in self._train_labels.items()}
        total = sum(train.values())
        if total:
            label, n = max(train.items(), key=lambda kv: (kv[1], str(kv[0])))
            share = n / total
        else:
            label, n, share = None, 0, 0.0
        imbalance = CheckResult(
            "class_imbalance", "warning", share <= t.max_majority_share, 0 if share <= t.max_majority_share else n, [],
            f"the most frequent training label {label!r} has {share:.0%} of {total} examples "
            f"(limit {t.max_majority_share:.0%})"
            + ("" if share <= t.max_majority_share else ": a model predicting it always would look good; compare with the baselines"),
        )
        rare = sorted((lab for lab, c in train.items() if c < t.min_label_examples), key=str)
        _, rare_ids = _Flagged.merged([self._train_labels[lab] for lab in rare])
        rare_result = CheckResult(
            "rare_labels", "warning", not rare, len(rare), rare_ids,
            f"every training label has at least {t.min_label_examples} examples" if not rare
            else f"{len(rare)} labels have fewer than {t.min_label_examples} training examples: {', '.join(map(str, rare))}",
        )
        what = ("chat messages with valid roles (system first, user, then one assistant answer)"
                if self.fmt == "chat" else "completion records with exactly a prompt and a completion string")
        form = "one leading space" if self.label_prefix == " " else "no leading space (the spaced form is two tokens)"
        return [
            min_examples,
            validation,
            self._required.result("required_fields", "error", "every example has all required fields",
                                  f"{self._required.count} examples miss required fields"),
            self._empty.result("empty_prompt_or_completion", "error", "no empty prompt or answer",
                               f"{self._empty.count} examples have an empty prompt or answer"),
            exact,
            conflicting,
            self._too_long.result("prompt_too_long", "error",
                                  f"every example fits {self.token_limit} tokens ({enc}, {self.base_model})",
                                  f"{self._too_long.count} examples exceed {self.token_limit} tokens for "
                                  f"{self.base_model} ({enc}): shorten the context window in dbt (var "
                                  "context_messages) or drop them upstream"),
            self._suffix.result("prompt_suffix", "error", r"every prompt ends with '\n\n###\n\n', once",
                                rf"{self._suffix.count} prompts do not end with '\n\n###\n\n' exactly once"),
            self._leading.result("completion_leading_space", "error", f"every answer is the label with {form}",
                                 f"{self._leading.count} answers are not the label with {form}"),
            single,
            self._shape.result("record_shape", "error", f"every record is {what}",
                               f"{self._shape.count} records are not {what}"),
            self._leakage(),
            missing_from_train,
            imbalance,
            rare_result,
        ]


def _shape_ok(rec: dict[str, Any], fmt: str) -> bool:
    if fmt == "completion":
        return len(rec) == 2 and isinstance(rec.get("prompt"), str) and isinstance(rec.get("completion"), str)
    messages = rec.get("messages")
    if not (isinstance(messages, list) and len(rec) == 1 and len(messages) >= 2):
        return False
    roles = []
    for m in messages:  # each exactly {"role": str, "content": str}
        if not (isinstance(m, dict) and len(m) == 2 and isinstance(m.get("content"), str)):
            return False
        role = m.get("role")
        if not isinstance(role, str):
            return False
        roles.append(role)
    return _roles_ok(tuple(roles))


@functools.lru_cache(maxsize=256)
def _roles_ok(roles: tuple[str, ...]) -> bool:
    """Valid roles, a system message only first, a user message, one assistant answer, last."""
    return (
        all(r in VALID_ROLES for r in roles)
        and roles.count("assistant") == 1
        and roles[-1] == "assistant"
        and "user" in roles
        and all(r != "system" for r in roles[1:])
    )


def run_checks(
    items: Iterable[Item],
    *,
    fmt: str,
    base_model: str,
    label_prefix: str,
    token_limit: int,
    split_method: str,
    thresholds: Thresholds = Thresholds(),
) -> list[CheckResult]:
    """All checks, in a fixed order (a :class:`CheckAccumulator` fed every item)."""
    with CheckAccumulator(fmt=fmt, base_model=base_model, label_prefix=label_prefix, token_limit=token_limit,
                          split_method=split_method, thresholds=thresholds) as checks:
        for item in items:
            checks.add(item)
        return checks.results()


def summarize(results: Sequence[CheckResult]) -> dict[str, Any]:
    """``{"errors": n, "warnings": n, "failed": [names of checks that flagged something]}``."""
    return {
        "errors": sum(r.severity == "error" and not r.passed for r in results),
        "warnings": sum(r.severity == "warning" and not r.passed for r in results),
        "failed": [r.check for r in results if not r.passed],
    }
