"""The export's records as token ids for a local model: the prompt, then the label as one token.

The same files OpenAI gets are read (chat or completion format). A chat record becomes text with the
tokenizer's chat template (the system and user messages, then the generation prompt) or, for a
tokenizer without one, the messages joined by a blank line; a completion record is its prompt. The
answer is one token: the label, with a leading space when that is one token for *every* label of
this tokenizer, else without (the export's rule, :func:`beep.export.render.choose_label_prefix`,
applied to this tokenizer). A label that is one token in neither form stops training with a message
naming it. The loss is taken on that token only: the prompt's tokens are context, never targets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beep.labels import NIL_LABEL

#: Prompt tokens kept at most (the end of a longer prompt: its last messages and the separator).
DEFAULT_MAX_LENGTH = 512


class LabelTokenError(ValueError):
    """A label is more than one token for this tokenizer, so it cannot be scored as one answer token."""


@dataclass(frozen=True)
class LabelTokens:
    """The one token each label is answered with (``prefix`` + label)."""

    prefix: str
    ids: dict[str, int]

    @property
    def labels(self) -> list[str]:
        return list(self.ids)


@dataclass(frozen=True)
class Example:
    """One training or scoring example: prompt token ids and the label's token id."""

    input_ids: list[int]
    label: str
    label_id: int


def scored_labels(export_labels: Sequence[str]) -> list[str]:
    """The labels a model ranks: the export's, plus ``nil`` (nobody to alert) if it lacks it."""
    labels = list(dict.fromkeys(str(label) for label in export_labels))
    return labels if NIL_LABEL in labels else labels + [NIL_LABEL]


def _one_token(tokenizer: Any, text: str) -> int | None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return int(ids[0]) if len(ids) == 1 else None


def label_tokens(tokenizer: Any, labels: Sequence[str], *, name: str = "this tokenizer") -> LabelTokens:
    """The single answer token of every label (see the module docstring), or :class:`LabelTokenError`."""
    for prefix in (" ", ""):
        ids = {label: _one_token(tokenizer, prefix + label) for label in labels}
        if all(v is not None for v in ids.values()):
            if len(set(ids.values())) != len(ids):
                continue  # two labels on one token could not be told apart
            return LabelTokens(prefix, {k: int(v) for k, v in ids.items() if v is not None})
    bad = [label for label in labels
           if _one_token(tokenizer, label) is None and _one_token(tokenizer, " " + label) is None]
    if not bad:  # every label is one token in some form, but no one form (with or without a space) suits all
        raise LabelTokenError(_no_common_form(tokenizer, labels, name))
    shown = ", ".join(repr(label) for label in bad[:20]) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
    pieces = {label: tokenizer.tokenize(label) for label in bad[:3]}
    raise LabelTokenError(
        f"labels {shown} are more than one token for {name} (e.g. "
        + "; ".join(f"{label!r} -> {toks}" for label, toks in pieces.items())
        + "), so the model cannot answer them with one token, as Beep scores answers. Use a base model whose "
        "tokenizer keeps them whole (Llama 3's keeps every number below 1000 as one token), or build with fewer "
        "labels (the dbt var max_labels) and export again"
    )


def _no_common_form(tokenizer: Any, labels: Sequence[str], name: str) -> str:
    """Why no one form of the labels is one distinct token each: per form, the labels that are more
    than one token, or the labels that share a token."""
    def listed(items: Sequence[str]) -> str:
        return ", ".join(repr(x) for x in items[:10]) + (f" and {len(items) - 10} more" if len(items) > 10 else "")

    reasons = []
    for prefix, form in ((" ", "with a leading space"), ("", "without a leading space")):
        ids = {label: _one_token(tokenizer, prefix + label) for label in labels}
        split = [label for label, token in ids.items() if token is None]
        if split:
            reasons.append(f"{form}, labels {listed(split)} are more than one token "
                           f"(e.g. {prefix + split[0]!r} -> {tokenizer.tokenize(prefix + split[0])})")
            continue
        by_token: dict[int, list[str]] = {}
        for label, token in ids.items():
            if token is not None:
                by_token.setdefault(token, []).append(label)
        shared = [group for group in by_token.values() if len(group) > 1]
        reasons.append(f"{form}, labels {listed(shared[0])} are the same token" if shared else f"{form}: fine")
    return (
        f"every label is one token for {name} in one form, but no one form suits them all: "
        + "; ".join(reasons)
        + ". The model answers every label in one form, as Beep scores answers. Use a base model whose tokenizer "
        "keeps them whole (Llama 3's keeps every number below 1000 as one token), or build with fewer labels "
        "(the dbt var max_labels) and export again"
    )


def prompt_text(record: dict[str, Any], tokenizer: Any) -> tuple[str, bool]:
    """The text a record's answer follows, and whether it already holds the special tokens."""
    if isinstance(record.get("messages"), list):
        messages = [m for m in record["messages"] if isinstance(m, dict) and m.get("role") != "assistant"]
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return str(text), True
        return "\n\n".join(str(m.get("content") or "") for m in messages), False
    return str(record.get("prompt") or ""), False


def record_for(prompt: str, fmt: str, system_prompt: str | None) -> dict[str, Any]:
    """The record (without its answer) the export would have written for ``prompt``."""
    if fmt == "chat":
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return {"messages": messages + [{"role": "user", "content": prompt}]}
    return {"prompt": prompt}


def encode_prompt(tokenizer: Any, record: dict[str, Any], max_length: int) -> list[int]:
    """The prompt's token ids, at most ``max_length`` - 1 of them (room for the answer): a longer
    prompt keeps its first token when that is BOS and its end (the latest messages, the separator)."""
    text, templated = prompt_text(record, tokenizer)
    ids = [int(i) for i in tokenizer(text, add_special_tokens=not templated)["input_ids"]]
    limit = max(2, max_length - 1)
    if len(ids) > limit:
        bos = tokenizer.bos_token_id
        ids = ids[:1] + ids[-(limit - 1):] if bos is not None and ids[0] == bos else ids[-limit:]
    return ids


def read_records(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def examples_of(records: Sequence[dict[str, Any]], labels: Sequence[str], tokenizer: Any, forms: LabelTokens,
                max_length: int) -> list[Example]:
    """Token ids of every (record, label) pair; a label the forms lack is an error naming it."""
    out = []
    for record, label in zip(records, labels):
        if label not in forms.ids:
            raise LabelTokenError(f"label {label!r} of the export has no answer token (known: {forms.labels[:12]})")
        out.append(Example(encode_prompt(tokenizer, record, max_length), label, forms.ids[label]))
    return out


def left_pad(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """Input ids, attention mask and position ids of a batch padded on the left, so every prompt ends
    at the last position (where the answer token is predicted)."""
    width = max(len(ids) for ids in batch)
    ids_out, mask_out, pos_out = [], [], []
    for ids in batch:
        pad = width - len(ids)
        ids_out.append([pad_id] * pad + list(ids))
        mask_out.append([0] * pad + [1] * len(ids))
        pos_out.append([0] * pad + list(range(len(ids))))
    return ids_out, mask_out, pos_out
