"""What the export needs to know about a base model: its tokenizer and its training context limit."""

from __future__ import annotations

from beep.tokens import encoding_name_for

#: Longest training example (prompt + answer, in tokens) each fine-tunable model accepts, by name
#: prefix (OpenAI's fine-tuning guide: 65,536 for the gpt-4o / gpt-4.1 families, 16,385 for
#: gpt-3.5-turbo, 16,384 for babbage-002 / davinci-002). Longest prefix wins.
TRAINING_CONTEXT_LIMITS: dict[str, int] = {
    "gpt-4.1": 65_536,
    "gpt-4o": 65_536,
    "gpt-3.5-turbo": 16_385,
    "babbage-002": 16_384,
    "davinci-002": 16_384,
}

#: Families that only fine-tune on chat records ({"messages": [...]}), by name prefix.
CHAT_ONLY_PREFIXES: tuple[str, ...] = ("gpt-4.1", "gpt-4o", "gpt-3.5-turbo")
#: Families that fine-tune on {"prompt", "completion"} records.
COMPLETION_PREFIXES: tuple[str, ...] = ("babbage-002", "davinci-002")


def check_format(base_model: str, format: str) -> None:
    """Refuse a record format the base model cannot be fine-tuned on (other models: the caller knows)."""
    if format == "completion" and base_model.startswith(CHAT_ONLY_PREFIXES):
        raise ValueError(
            f"--format completion writes prompt/completion records, which {base_model} cannot be fine-tuned on: "
            f"use --format chat, or a completion model with --base-model ({' or '.join(COMPLETION_PREFIXES)})"
        )
    if format == "chat" and base_model.startswith(COMPLETION_PREFIXES):
        raise ValueError(f"{base_model} is fine-tuned on prompt/completion records: use --format completion")


#: The base model exports and remote fine-tunes use unless told otherwise: a snapshot OpenAI still
#: fine-tunes and has not shut down. gpt-4.1-nano-2025-04-14 (the default before) was shut down on
#: 2026-10-23; gpt-4.1-mini-2025-04-14 shuts down on 2027-01-14, and OpenAI creates no new fine-tuning
#: jobs for anyone from 2027-01-06 (its deprecations page; see docs/finetune-open-model.md). After
#: that the road is `beep finetune --provider hf` (or Azure OpenAI).
DEFAULT_BASE_MODEL = "gpt-4.1-mini-2025-04-14"


def training_context_limit(base_model: str, override: int | None = None) -> int:
    """The token limit of one training example for ``base_model`` (``override`` wins when given)."""
    if override is not None:
        if override < 1:
            raise ValueError(f"--max-example-tokens must be positive, got {override}")
        return override
    for prefix, limit in sorted(TRAINING_CONTEXT_LIMITS.items(), key=lambda kv: -len(kv[0])):
        if base_model.startswith(prefix):
            return limit
    known = ", ".join(sorted(TRAINING_CONTEXT_LIMITS))
    raise ValueError(
        f"Beep does not know the training context limit of base model {base_model!r} (it knows {known}); "
        "pass --max-example-tokens N with the limit your provider documents for that model."
    )


def tokenizer_of(base_model: str) -> str:
    """The BPE encoding used to count the base model's tokens."""
    return encoding_name_for(base_model)
