"""Every export check fires on a crafted bad input and stays quiet on a good one."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from beep.export.checks import Item, Thresholds, run_checks
from beep.export.render import DEFAULT_SYSTEM_PROMPT, chat_record, completion_record

MODEL = "gpt-4.1-nano-2025-04-14"
SUFFIX = "\n\n###\n\n"


def good_items(fmt: str = "chat") -> list[Item]:
    items = []
    t0 = datetime(2024, 1, 1)
    for i in range(24):
        label = str(i % 3)
        split = "valid" if i >= 18 else "train"
        conv = f"c{i // 2}"
        prompt = f"example {i} about topic {label}{SUFFIX}"
        record = chat_record(prompt, label, DEFAULT_SYSTEM_PROMPT) if fmt == "chat" else completion_record(prompt, label)
        items.append(Item(f"e{i:02d}", conv, split, label, record, t0 + timedelta(hours=i)))
    return items


def run(items: list[Item], *, fmt: str = "chat", limit: int = 65_536, prefix: str = "", thresholds: Thresholds = Thresholds()):
    results = run_checks(items, fmt=fmt, base_model=MODEL, label_prefix=prefix, token_limit=limit,
                         split_method="time", thresholds=thresholds)
    return {r.check: r for r in results}


def replace(items: list[Item], index: int, **changes) -> list[Item]:
    items = list(items)
    old = items[index]
    values = {k: getattr(old, k) for k in ("example_id", "conversation_id", "split", "label", "record", "target_at")}
    values.update(changes)
    items[index] = Item(**values)
    return items


@pytest.mark.parametrize("fmt", ["chat", "completion"])
def test_a_good_export_passes_every_check(fmt: str) -> None:
    results = run(good_items(fmt), fmt=fmt)
    assert len(results) == 15
    failed = {name: r.message for name, r in results.items() if not r.passed}
    assert failed == {}
    assert all(r.count == 0 for r in results.values())


def _chat(prompt: str, answer: str) -> dict:
    return chat_record(prompt, answer, DEFAULT_SYSTEM_PROMPT)


BAD_CASES = {
    "min_examples": lambda items: [i for i in items if i.split == "valid"] + items[:5],
    "validation_not_empty": lambda items: [i for i in items if i.split == "train"],
    "required_fields": lambda items: replace(items, 3, conversation_id=None),
    "empty_prompt_or_completion": lambda items: replace(items, 4, record=_chat("   ", "1")),
    "exact_duplicates": lambda items: replace(items, 3, record=items[0].record),  # e00 and e03 share prompt + label 0
    "conflicting_duplicates": lambda items: replace(items, 1, record=_chat(items[0].record["messages"][1]["content"], "1")),
    "prompt_too_long": lambda items: replace(items, 2, record=_chat("word " * 400 + SUFFIX, "2")),
    "prompt_suffix": lambda items: replace(items, 5, record=_chat("no separator here", "2")),
    "completion_leading_space": lambda items: replace(items, 6, record=_chat(items[6].record["messages"][1]["content"], " 0")),
    "label_single_token": lambda items: replace(items, 7, label="1234", record=_chat(items[7].record["messages"][1]["content"], "1234")),
    "record_shape": lambda items: replace(items, 8, record={"messages": [
        {"role": "user", "content": "x" + SUFFIX}, {"role": "assistant", "content": "2"}, {"role": "assistant", "content": "2"}]}),
    "conversation_leakage": lambda items: replace(items, 18, conversation_id="c0"),
    "labels_missing_from_train": lambda items: replace(items, 19, label="nil", record=_chat(items[19].record["messages"][1]["content"], "nil")),
    "class_imbalance": lambda items: [
        replace(items, k, label="0", record=_chat(items[k].record["messages"][1]["content"], "0"))[k] if items[k].split == "train" and k % 3 == 1 else items[k]
        for k in range(len(items))
    ],
    "rare_labels": lambda items: [i for i in items if not (i.label == "2" and i.split == "train")] + [
        i for i in items if i.label == "2" and i.split == "train"][:1],
}


@pytest.mark.parametrize("check", sorted(BAD_CASES))
def test_each_check_fires_on_a_crafted_bad_input(check: str) -> None:
    results = run(BAD_CASES[check](good_items()), limit=200)
    assert not results[check].passed, results[check].message
    assert results[check].count > 0
    assert results[check].message
    assert run(good_items(), limit=200)[check].passed  # and the same check is quiet on the unaltered input


def test_flagged_example_ids_name_the_culprits() -> None:
    results = run(BAD_CASES["prompt_suffix"](good_items()))
    assert results["prompt_suffix"].example_ids == ["e05"]
    results = run(BAD_CASES["conversation_leakage"](good_items()))
    assert set(results["conversation_leakage"].example_ids) == {"e00", "e01", "e18"}
    results = run(BAD_CASES["required_fields"](good_items()))
    assert results["required_fields"].example_ids == ["e03 (conversation_id)"]


def test_severities_match_the_issue() -> None:
    results = run(good_items())
    warnings = {n for n, r in results.items() if r.severity == "warning"}
    assert warnings == {"exact_duplicates", "conflicting_duplicates", "labels_missing_from_train", "class_imbalance", "rare_labels"}
    assert all(r.severity == "error" for n, r in results.items() if n not in warnings)


def test_the_leading_space_form_is_checked_both_ways() -> None:
    spaced = [replace(good_items("completion"), k, record=completion_record(i.record["prompt"], " " + i.label))[k]
              for k, i in enumerate(good_items("completion"))]
    assert run(spaced, fmt="completion", prefix=" ")["completion_leading_space"].passed
    assert not run(spaced, fmt="completion", prefix="")["completion_leading_space"].passed
    # ' 0' is two o200k tokens: the spaced form fails the single-token check, which is why it is not used
    assert not run(spaced, fmt="completion", prefix=" ")["label_single_token"].passed
