"""One API call = one :class:`CallResult` (parsed value, response headers, token usage).

The calls go through ``with_raw_response`` so the pacer sees the rate-limit headers. Token counts
for pacing and dry-runs use :mod:`beep.tokens` with the formula below; the test server counts the
same way, so a dry-run's estimate can be checked against what a run really sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
import pydantic

from beep.llm.retry import MalformedResponse
from beep.tokens import count_tokens

#: Tokens every chat message costs beyond its content and role, and the reply priming per request
#: (OpenAI's published counting recipe for today's chat models).
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3


@dataclass
class Usage:
    """Tokens a call (or a run) used; ``cached_tokens`` is the part of the prompt served from cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_api(cls, usage: Any) -> "Usage":
        """From an SDK ``usage`` object or dict (missing fields count as 0)."""
        if usage is None:
            return cls()
        if not isinstance(usage, Mapping):
            usage = usage.model_dump() if hasattr(usage, "model_dump") else dict(vars(usage))
        details = usage.get("prompt_tokens_details") or {}
        return cls(
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            int((details or {}).get("cached_tokens") or 0),
        )


@dataclass
class CallResult:
    """What one successful call returned."""

    value: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)


def chat_prompt_tokens(messages: Sequence[Mapping[str, str]], model: str) -> int:
    """Prompt tokens of a chat request: content + role (+1 per name) + 3 per message, + 3 priming."""
    total = TOKENS_REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                total += count_tokens(value, model)
                if key == "name":
                    total += 1
    return total


def completion_prompt_tokens(prompt: str, model: str) -> int:
    """Prompt tokens of a legacy completions request."""
    return count_tokens(prompt, model)


def _parse(raw: Any) -> Any:
    try:
        return raw.parse()
    except (json.JSONDecodeError, ValueError, pydantic.ValidationError, openai.APIResponseValidationError) as err:
        raise MalformedResponse(f"the server's answer was not valid JSON: {err}") from err


def chat_call(client: openai.OpenAI, **kwargs: Any) -> CallResult:
    """``client.chat.completions.create(**kwargs)`` keeping headers and usage."""
    raw = client.chat.completions.with_raw_response.create(**kwargs)
    completion = _parse(raw)
    return CallResult(completion, dict(raw.headers), Usage.from_api(getattr(completion, "usage", None)))


def completion_call(client: openai.OpenAI, **kwargs: Any) -> CallResult:
    """``client.completions.create(**kwargs)`` (legacy completions, e.g. babbage-002) keeping headers and usage."""
    raw = client.completions.with_raw_response.create(**kwargs)
    completion = _parse(raw)
    return CallResult(completion, dict(raw.headers), Usage.from_api(getattr(completion, "usage", None)))
