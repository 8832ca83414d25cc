"""Token counting with a real BPE tokenizer that ships its encodings (bpe-openai), so it works offline.

tiktoken downloads its encodings on first use, which fails without network; bpe-openai ships
cl100k_base and o200k_base with a tiktoken-like API.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import bpe_openai

#: Models we know the encoding of; anything else falls back to o200k_base (today's OpenAI models).
_ENCODING_BY_PREFIX: dict[str, str] = {
    "gpt-4o": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-5": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "babbage-002": "cl100k_base",
    "davinci-002": "cl100k_base",
    "text-embedding": "cl100k_base",
}


@lru_cache(maxsize=64)
def encoding_name_for(model: str) -> str:
    """The tokenizer encoding a model uses (fine-tuned ids like ``ft:gpt-4o-mini:...`` included)."""
    name = model.removeprefix("ft:")
    for prefix, encoding in sorted(_ENCODING_BY_PREFIX.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(prefix):
            return encoding
    return "o200k_base"


@lru_cache(maxsize=8)
def encoding(name: str) -> "bpe_openai.Encoding":
    """A cached encoding by name (cl100k_base, o200k_base).

    bpe_openai is imported here, at the first count: importing it loads its encodings (about 0.4 s
    and 95 MB), which every command paid at start-up, `beep predict` and `beep slack serve` included.
    """
    import bpe_openai

    return bpe_openai.get_encoding(name)


def count_tokens(text: str, model: str) -> int:
    """How many tokens ``text`` is for ``model``'s tokenizer."""
    return len(encoding(encoding_name_for(model)).encode(text))


def is_single_token(text: str, model: str) -> bool:
    """Whether ``text`` encodes to exactly one token for ``model``."""
    return count_tokens(text, model) == 1


@lru_cache(maxsize=4096)
def count_tokens_cached(text: str, model: str) -> int:
    """:func:`count_tokens` remembered for texts that repeat (a system prompt, the answers' labels)."""
    return count_tokens(text, model)
