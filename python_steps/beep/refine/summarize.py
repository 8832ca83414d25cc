"""Optional: summarise long few-shot examples once, so the prefix every request repeats stays small.

Summaries are cached in DuckDB (``fewshot_summaries``, keyed by sha256 of the text and the model):
the first run pays for them once, later runs reuse them. With summaries the prefix differs, so the
verdicts are keyed by a hash of the set *and* its summaries (see :func:`summarized_hash`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import openai

from beep.db import connect
from beep.llm.calls import Usage, chat_call
from beep.llm.retry import RetryPolicy, call_with_retry
from beep.refine.fewshot import FewShotSet
from beep.tokens import count_tokens

SUMMARY_INSTRUCTIONS = (
    "Summarise this Slack conversation snippet in at most {words} words. Keep the topic, the systems and "
    "the people it names, and whether it asks for something; drop greetings and filler. Answer with the summary only."
)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def summarized_hash(fewshot: FewShotSet, texts: list[str]) -> str:
    """The key of a prefix that shows ``texts`` instead of the set's own texts."""
    canonical = json.dumps([fewshot.hash, texts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def summarize_fewshot(
    db: Path,
    fewshot: FewShotSet,
    client: openai.OpenAI,
    *,
    model: str,
    over_tokens: int = 120,
    words: int = 40,
    retry: RetryPolicy | None = None,
) -> tuple[list[str], Usage]:
    """The texts to show (summaries for examples over ``over_tokens``), and the usage paid now."""
    texts = [e.text for e in fewshot.examples]
    long_ones = {text_sha256(t): t for t in texts if count_tokens(t, model) > over_tokens}
    with connect(db) as con:
        cached = dict(
            con.execute(
                "select text_sha256, summary from fewshot_summaries where model = ? and text_sha256 in (select unnest(?::varchar[]))",
                [model, list(long_ones)],
            ).fetchall()
        )
    usage = Usage()
    for digest, text in long_ones.items():
        if digest in cached:
            continue
        messages = [
            {"role": "system", "content": SUMMARY_INSTRUCTIONS.format(words=words)},
            {"role": "user", "content": text},
        ]
        result = call_with_retry(
            lambda messages=messages: chat_call(client, model=model, messages=messages, temperature=0, max_tokens=words * 2),
            retry or RetryPolicy(),
        )
        summary = (result.value.choices[0].message.content or "").strip()
        if not summary:
            continue  # keep the original text rather than an empty one
        usage = usage + result.usage
        with connect(db) as con:
            con.execute(
                "insert into fewshot_summaries (text_sha256, model, summary, prompt_tokens, completion_tokens) values (?, ?, ?, ?, ?) on conflict do nothing",
                [digest, model, summary, result.usage.prompt_tokens, result.usage.completion_tokens],
            )
        cached[digest] = summary
    return [cached.get(text_sha256(t), t) for t in texts], usage
