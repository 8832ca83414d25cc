"""What the LLM sees: one byte-identical few-shot prefix, then several numbered examples per request.

The system message (instructions + the few-shot set) is built only from the few-shot set, so it is
the same bytes in every request of a run: providers that cache prompt prefixes (OpenAI caches
prefixes of 1,024+ tokens) bill it at the cached price. Each request then asks about up to
``batch_size`` examples, numbered 1..k in that request, and demands one JSON object mapping every
number to "strong" or "weak". Parsing is strict per pair: only numbers that were asked, only those
two words; anything else is "missing" and re-asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from beep.llm.calls import chat_prompt_tokens
from beep.refine.fewshot import FewShotSet
from beep.tokens import count_tokens

INSTRUCTIONS = """You sort snippets of Slack conversations for a model that learns who should be alerted about a conversation.
A snippet is "strong" when its text carries a real signal about who would answer: a topic, a system, a problem, a question or request someone owns.
A snippet is "weak" when it is small talk, thanks, greetings, acknowledgements, or so generic that anybody could answer.
Judge the whole snippet: one substantive message makes it strong."""

ANSWER_FORMAT = """You will receive numbered snippets, each introduced by a line "### <number>".
Answer with one JSON object that maps every number to "strong" or "weak", for example {"1": "strong", "2": "weak"}, and nothing else."""


@dataclass(frozen=True)
class Question:
    """One request's worth of examples: ``items`` are (short id, example id, text)."""

    items: tuple[tuple[str, str, str], ...]

    @property
    def example_ids(self) -> list[str]:
        return [example_id for _, example_id, _ in self.items]


def system_prompt(fewshot: FewShotSet, texts: Sequence[str] | None = None) -> str:
    """The byte-identical prefix. ``texts`` replaces the few-shot texts (e.g. by their summaries)."""
    shown = list(texts) if texts is not None else [e.text for e in fewshot.examples]
    parts = [INSTRUCTIONS, "", "Examples:"]
    for example, text in zip(fewshot.examples, shown):
        parts.append(f"--- {example.verdict} ---")
        parts.append(text)
    parts += ["", ANSWER_FORMAT]
    return "\n".join(parts)


def question(examples: Sequence[tuple[str, str]]) -> Question:
    """Number (example id, text) pairs 1..k."""
    return Question(tuple((str(i), eid, text) for i, (eid, text) in enumerate(examples, start=1)))


def user_message(q: Question) -> str:
    return "\n".join(f"### {short}\n{text}" for short, _, text in q.items)


def messages_for(system: str, q: Question) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user_message(q)}]


def max_answer_tokens(q: Question, model: str) -> int:
    """Room for the longest valid answer (every id "strong", pretty-printed as JSON mode often
    does) plus a little slack. It is also what the pacer reserves toward TPM, as OpenAI counts it."""
    longest = json.dumps({short: "strong" for short, _, _ in q.items}, indent=2)
    return count_tokens(longest, model) + 4


def request_body(system: str, q: Question, model: str, *, logprobs: bool = False) -> dict:
    """The chat.completions body for ``q`` (also the Batch API line body).

    With ``logprobs`` the answer's token log-probabilities are asked for too (see :func:`confidences`).
    """
    body = {
        "model": model,
        "messages": messages_for(system, q),
        "temperature": 0,
        "max_tokens": max_answer_tokens(q, model),
        "response_format": {"type": "json_object"},
    }
    if logprobs:
        body["logprobs"] = True
    return body


@lru_cache(maxsize=8)
def _system_tokens(system: str, model: str) -> int:
    return chat_prompt_tokens([{"role": "system", "content": system}], model)


def request_tokens(system: str, q: Question, model: str) -> tuple[int, int]:
    """(prompt tokens, max output tokens) of the request for ``q``: exactly
    ``chat_prompt_tokens(messages_for(system, q), model)``, with the prefix counted once per run."""
    user = chat_prompt_tokens([{"role": "user", "content": user_message(q)}], model)
    # each call above adds the 3 reply-priming tokens once; the request has them once
    return _system_tokens(system, model) + user - 3, max_answer_tokens(q, model)


_PAIR = re.compile(r'"\s*(\d+)\s*"\s*:\s*"\s*(strong|weak)\s*"', re.IGNORECASE)


def parse_answer(content: str | None, q: Question) -> tuple[dict[str, str], list[str]]:
    """(example id -> verdict for the ids answered validly, example ids missing).

    A well-formed JSON object is read key by key; a malformed or truncated one is salvaged pair by
    complete pair. Unknown numbers and other words are ignored (their examples count as missing).
    """
    by_short = {short: example_id for short, example_id, _ in q.items}
    found: dict[str, str] = {}
    if content:
        pairs: list[tuple[str, str]] = []
        try:
            parsed = json.loads(content)
            if isinstance(parsed, dict):
                pairs = [(str(k).strip(), v.strip().lower()) for k, v in parsed.items() if isinstance(v, str)]
        except ValueError:
            pairs = [(k, v.lower()) for k, v in _PAIR.findall(content)]
        for short, verdict in pairs:
            if short in by_short and verdict in ("strong", "weak"):
                found[by_short[short]] = verdict
    missing = [eid for _, eid, _ in q.items if eid not in found]
    return found, missing


def confidences(content: str | None, tokens: Sequence[tuple[str, float]] | None, q: Question) -> dict[str, float]:
    """example id -> probability the model gave its verdict word, from the answer's token logprobs.

    The verdict words of the answer, in order, are matched with the answer's tokens that spell
    "strong" / "weak"; when the two don't line up one to one, no confidence is claimed.
    """
    import math

    if not content or not tokens:
        return {}
    by_short = {short: example_id for short, example_id, _ in q.items}
    pairs = [(m.group(1), m.group(2).lower()) for m in _PAIR.finditer(content)]
    words = [(tok.strip(' "').lower(), lp) for tok, lp in tokens if tok.strip(' "').lower() in ("strong", "weak")]
    if len(words) != len(pairs) or any(w != v for (w, _), (_, v) in zip(words, pairs)):
        return {}
    return {by_short[short]: math.exp(lp) for (short, _), (_, lp) in zip(pairs, words) if short in by_short}
