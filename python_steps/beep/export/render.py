"""How one example becomes one JSONL line, in either format, byte for byte reproducibly."""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) writes a string as
from typing import Any

from beep.tokens import count_tokens, count_tokens_cached, is_single_token

FORMATS: tuple[str, ...] = ("chat", "completion")
DEFAULT_SYSTEM_PROMPT = (
    "You read the latest messages of a Slack conversation and answer with the label of the workspace "
    "member most likely to respond next, or nil when nobody needs to be alerted. Answer with the label only."
)
#: Chat formatting overhead in tokens (OpenAI's counting recipe: per message and per reply).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


def choose_label_prefix(labels: list[str], base_model: str) -> str:
    """What goes before the label in an answer: one space when ``' <label>'`` is a single token for
    every label (the old GPT-3 convention the seed follows), else nothing.

    With today's tokenizers (cl100k_base, o200k_base) ``' 3'`` is two tokens (a space, then the digit),
    so the answer is written ``'3'``; ``' nil'`` alone would be one token, but one form is used for all.
    """
    if labels and all(is_single_token(" " + label, base_model) for label in labels):
        return " "
    return ""


def chat_record(prompt: str, answer: str, system_prompt: str | None) -> dict[str, Any]:
    """``{"messages": [system, user = prompt, assistant = answer]}`` (no system message when None/empty)."""
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": prompt})
    messages.append({"role": "assistant", "content": answer})
    return {"messages": messages}


def completion_record(prompt: str, completion: str) -> dict[str, Any]:
    """``{"prompt": ..., "completion": ...}`` for babbage-002 / davinci-002 style models."""
    return {"prompt": prompt, "completion": completion}


def dumps(record: dict[str, Any]) -> str:
    """One JSONL line: compact, UTF-8 (no escaping of non-ASCII), key order as built, newline-terminated."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _json_string(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


class LineWriter:
    """``dumps(chat_record(...))`` / ``dumps(completion_record(...))`` built from its parts: the JSON of
    the fixed parts (keys, roles, the system message) is made once, and only the prompt and the answer
    are encoded per line, each as :func:`dumps` encodes a string. Byte for byte what :func:`dumps` of
    the record writes (tests/python/test_export_render.py), at a third of its cost: a whole
    encoder is set up for every call of ``json.dumps`` with options."""

    def __init__(self, fmt: str, system_prompt: str | None) -> None:
        if fmt == "chat":
            system = (f'{{"role":"system","content":{_json_string(system_prompt)}}},' if system_prompt else "")
            self._head = f'{{"messages":[{system}{{"role":"user","content":'
            self._middle = '},{"role":"assistant","content":'
            self._tail = "}]}\n"
        elif fmt == "completion":
            self._head, self._middle, self._tail = '{"prompt":', ',"completion":', "}\n"
        else:
            raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")

    def line(self, prompt: str | None, answer: str | None) -> str:
        return self._head + _json_string(prompt) + self._middle + _json_string(answer) + self._tail

    def with_answer(self, line: str, old: str, new: str) -> str | None:
        """``line`` (written by :meth:`line` with answer ``old``) with answer ``new`` instead: byte for byte
        ``line(prompt, new)``, without reading the prompt back. None when ``line`` does not end as a line
        with answer ``old`` does."""
        end = self._middle + _json_string(old) + self._tail
        if not line.endswith(end):
            return None
        return line[:len(line) - len(end)] + self._middle + _json_string(new) + self._tail


def record_tokens(record: dict[str, Any], base_model: str, prompt_tokens: int | None = None) -> int:
    """Tokens one training record costs for ``base_model``'s tokenizer. ``prompt_tokens``: the
    prompt's (the user message's) tokens when they are known (counted by an earlier export)."""
    if "messages" in record:
        total = TOKENS_PER_REPLY
        for message in record["messages"]:
            content, role = (message.get("content"), message.get("role")) if isinstance(message, dict) else (None, None)
            text = content if isinstance(content, str) else ""
            if role == "user" and prompt_tokens is not None:
                count = prompt_tokens
            else:  # the system prompt and the answers (labels) repeat from record to record; the prompts do not
                count = (count_tokens if role == "user" else count_tokens_cached)(text, base_model)
            total += TOKENS_PER_MESSAGE + count
        return total
    prompt = prompt_tokens if prompt_tokens is not None else count_tokens(str(record.get("prompt") or ""), base_model)
    return prompt + count_tokens_cached(str(record.get("completion") or ""), base_model)


def record_prompt(record: dict[str, Any]) -> str | None:
    """The prompt a record carries (the user message for chat: the last one)."""
    if "messages" in record:
        return _last_content(record["messages"], "user")
    value = record.get("prompt")
    return value if isinstance(value, str) else None


def _last_content(messages: Any, role: str) -> str | None:
    """The content of the last message of ``role``, when it is a string."""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == role:
            content = m.get("content")
            return content if isinstance(content, str) else None
    return None


def record_answer(record: dict[str, Any]) -> str | None:
    """The answer a record trains (the assistant message for chat, the completion otherwise)."""
    if "messages" in record:
        return _last_content(record["messages"], "assistant")
    value = record.get("completion")
    return value if isinstance(value, str) else None
