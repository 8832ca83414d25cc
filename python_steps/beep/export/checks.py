"""Every check an export runs on exactly what it is about to write, one row each in ``export_checks``.

A check has a severity (error stops the export, warning is printed and kept, info is reported);
it *passes* when it flagged nothing. Checks read the rendered records, not the source rows, so they
prove what the files contain.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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


def check_min_examples(items: Sequence[Item], t: Thresholds) -> CheckResult:
    n_train = sum(item.split == "train" for item in items)
    ok = n_train >= t.min_train_examples
    return CheckResult(
        "min_examples",
        "error",
        ok,
        0 if ok else n_train,
        [],
        f"{n_train} training examples (at least {t.min_train_examples} needed)"
        if ok
        else f"only {n_train} training examples of {len(items)}; fine-tuning needs at least {t.min_train_examples}: "
        "export more data (a bigger Slack export, --unrefined, or fewer exclusions)",
    )


def check_validation_not_empty(items: Sequence[Item]) -> CheckResult:
    n_valid = sum(item.split == "valid" for item in items)
    return CheckResult(
        "validation_not_empty",
        "error",
        n_valid > 0,
        0 if n_valid else 1,
        [],
        f"{n_valid} validation examples"
        if n_valid
        else "the validation split is empty (all examples come from one conversation?): raise --valid-fraction or add data",
    )


def check_required_fields(items: Sequence[Item], split_method: str) -> CheckResult:
    flagged = []
    for item in items:
        missing = [
            name
            for name, value in (
                ("example_id", item.example_id),
                ("conversation_id", item.conversation_id),
                ("label", item.label),
                ("prompt", record_prompt(item.record)),
                ("answer", record_answer(item.record)),
            )
            if value is None
        ]
        if split_method == "time" and item.target_at is None:
            missing.append("target_at")
        if missing:
            flagged.append(f"{_id(item)} ({', '.join(missing)})")
    return _result("required_fields", "error", flagged, "every example has all required fields",
                   f"{len(flagged)} examples miss required fields")


def check_empty(items: Sequence[Item]) -> CheckResult:
    flagged = [
        _id(i) for i in items
        if not (record_prompt(i.record) or "").strip() or not (record_answer(i.record) or "").strip()
    ]
    return _result("empty_prompt_or_completion", "error", flagged, "no empty prompt or answer",
                   f"{len(flagged)} examples have an empty prompt or answer")


def check_duplicates(items: Sequence[Item]) -> tuple[CheckResult, CheckResult]:
    by_prompt: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_prompt[record_prompt(item.record) or ""].append(item)
    exact: list[str] = []
    conflicting: list[str] = []
    for group in by_prompt.values():
        if len(group) < 2:
            continue
        labels = Counter(i.label for i in group)
        if len(labels) > 1:
            conflicting += [_id(i) for i in group]
        for label, n in labels.items():
            if n > 1:
                exact += [_id(i) for i in group if i.label == label]
    return (
        _result("exact_duplicates", "warning", exact, "no duplicate examples",
                f"{len(exact)} examples share their prompt and label with another"),
        _result("conflicting_duplicates", "warning", conflicting, "no prompt appears with two labels",
                f"{len(conflicting)} examples share their prompt with an example of another label"),
    )


def check_too_long(items: Sequence[Item], base_model: str, limit: int) -> CheckResult:
    flagged = [_id(i) for i in items if (i.tokens if i.tokens is not None else record_tokens(i.record, base_model)) > limit]
    enc = encoding_name_for(base_model)
    return _result("prompt_too_long", "error", flagged,
                   f"every example fits {limit} tokens ({enc}, {base_model})",
                   f"{len(flagged)} examples exceed {limit} tokens for {base_model} ({enc}): "
                   "shorten the context window in dbt (var context_messages) or drop them upstream")


def check_suffix(items: Sequence[Item]) -> CheckResult:
    flagged = []
    for item in items:
        prompt = record_prompt(item.record) or ""
        if prompt.count(PROMPT_SUFFIX) != 1 or not prompt.endswith(PROMPT_SUFFIX):
            flagged.append(_id(item))
    return _result("prompt_suffix", "error", flagged, r"every prompt ends with '\n\n###\n\n', once",
                   rf"{len(flagged)} prompts do not end with '\n\n###\n\n' exactly once")


def check_leading_space(items: Sequence[Item], label_prefix: str) -> CheckResult:
    """Every answer is the label preceded by exactly the chosen prefix (one space, or nothing when the
    tokenizer would make the spaced form two tokens) and by no other whitespace."""
    flagged = []
    for item in items:
        answer = record_answer(item.record)
        if answer is None or item.label is None:
            continue
        if answer != label_prefix + item.label or answer[len(label_prefix):][:1].isspace():
            flagged.append(_id(item))
    form = "one leading space" if label_prefix == " " else "no leading space (the spaced form is two tokens)"
    return _result("completion_leading_space", "error", flagged, f"every answer is the label with {form}",
                   f"{len(flagged)} answers are not the label with {form}")


def check_single_token(items: Sequence[Item], base_model: str) -> CheckResult:
    answers = sorted({a for a in (record_answer(i.record) for i in items) if a is not None})
    bad = {a for a in answers if count_tokens(a, base_model) != 1}
    flagged = [_id(i) for i in items if record_answer(i.record) in bad]
    enc = encoding_name_for(base_model)
    return _result("label_single_token", "error", flagged,
                   f"all {len(answers)} answers are one {enc} token each",
                   f"answers {sorted(bad)!r} are not one {enc} token: {len(flagged)} examples", len(flagged))


def check_record_shape(items: Sequence[Item], fmt: str) -> CheckResult:
    flagged = []
    for item in items:
        rec = item.record
        if fmt == "completion":
            ok = set(rec) == {"prompt", "completion"} and all(isinstance(rec[k], str) for k in rec)
        else:
            messages = rec.get("messages")
            ok = isinstance(messages, list) and set(rec) == {"messages"} and len(messages) >= 2
            if ok:
                roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
                ok = (
                    all(r in VALID_ROLES for r in roles)
                    and roles.count("assistant") == 1
                    and roles[-1] == "assistant"
                    and "user" in roles
                    and all(r != "system" for r in roles[1:])
                    and all(isinstance(m.get("content"), str) and set(m) == {"role", "content"} for m in messages)
                )
        if not ok:
            flagged.append(_id(item))
    what = ("chat messages with valid roles (system first, user, then one assistant answer)"
            if fmt == "chat" else "completion records with exactly a prompt and a completion string")
    return _result("record_shape", "error", flagged, f"every record is {what}",
                   f"{len(flagged)} records are not {what}")


def check_leakage(items: Sequence[Item]) -> CheckResult:
    splits: dict[str, set[str]] = defaultdict(set)
    for item in items:
        splits[item.conversation_id or ""].add(item.split)
    crossing = sorted(c for c, s in splits.items() if len(s) > 1)
    flagged = [_id(i) for i in items if (i.conversation_id or "") in set(crossing)]
    return _result("conversation_leakage", "error", flagged, f"no conversation in both splits ({len(splits)} conversations)",
                   f"{len(crossing)} conversations are in both splits", len(flagged))


def check_valid_labels_in_train(items: Sequence[Item]) -> CheckResult:
    train_labels = {i.label for i in items if i.split == "train"}
    unseen = sorted({i.label for i in items if i.split == "valid" and i.label not in train_labels}, key=str)
    flagged = [_id(i) for i in items if i.split == "valid" and i.label in set(unseen)]
    return _result("labels_missing_from_train", "warning", flagged, "every validation label occurs in train",
                   f"validation labels never seen in train: {', '.join(map(str, unseen))} ({len(flagged)} examples)")


def check_imbalance(items: Sequence[Item], t: Thresholds) -> tuple[CheckResult, CheckResult]:
    train = Counter(i.label for i in items if i.split == "train")
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
    rare_ids = [_id(i) for i in items if i.split == "train" and i.label in set(rare)]
    rare_result = CheckResult(
        "rare_labels", "warning", not rare, len(rare), rare_ids[:MAX_IDS],
        f"every training label has at least {t.min_label_examples} examples" if not rare
        else f"{len(rare)} labels have fewer than {t.min_label_examples} training examples: {', '.join(map(str, rare))}",
    )
    return imbalance, rare_result


def run_checks(
    items: Sequence[Item],
    *,
    fmt: str,
    base_model: str,
    label_prefix: str,
    token_limit: int,
    split_method: str,
    thresholds: Thresholds = Thresholds(),
) -> list[CheckResult]:
    """All checks, in a fixed order."""
    exact, conflicting = check_duplicates(items)
    imbalance, rare = check_imbalance(items, thresholds)
    return [
        check_min_examples(items, thresholds),
        check_validation_not_empty(items),
        check_required_fields(items, split_method),
        check_empty(items),
        exact,
        conflicting,
        check_too_long(items, base_model, token_limit),
        check_suffix(items),
        check_leading_space(items, label_prefix),
        check_single_token(items, base_model),
        check_record_shape(items, fmt),
        check_leakage(items),
        check_valid_labels_in_train(items),
        imbalance,
        rare,
    ]


def summarize(results: Sequence[CheckResult]) -> dict[str, Any]:
    """``{"errors": n, "warnings": n, "failed": [names of checks that flagged something]}``."""
    return {
        "errors": sum(r.severity == "error" and not r.passed for r in results),
        "warnings": sum(r.severity == "warning" and not r.passed for r in results),
        "failed": [r.check for r in results if not r.passed],
    }
