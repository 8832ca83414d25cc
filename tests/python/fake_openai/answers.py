"""Build chat / completions answers from a responder's output (shared by the endpoints and batches)."""

from __future__ import annotations

import time
from typing import Any

from beep.tokens import encoding, encoding_name_for

from fake_openai.state import ChatAnswer, FakeState, request_prompt_tokens


def _tokens(text: str, model: str) -> list[str]:
    enc = encoding(encoding_name_for(model))
    return [enc.decode([t]) for t in enc.encode(text)]


def _answer_tokens(answer: ChatAnswer, text: str, model: str) -> list[str]:
    """The output tokens; a responder's first ``top_logprobs`` entry is one token whatever the tokenizer says."""
    if answer.top_logprobs and text.startswith(answer.top_logprobs[0][0]) and answer.top_logprobs[0][0]:
        first = answer.top_logprobs[0][0]
        return [first] + (_tokens(text[len(first):], model) if len(text) > len(first) else [])
    return _tokens(text, model)


def _as_answer(value: str | ChatAnswer) -> ChatAnswer:
    return value if isinstance(value, ChatAnswer) else ChatAnswer(content=value)


def _top(answer: ChatAnswer, first_token: str, n: int) -> list[tuple[str, float]]:
    pairs = list(answer.top_logprobs or [(first_token, 0.0)])
    if all(tok != first_token for tok, _ in pairs):
        pairs.insert(0, (first_token, 0.0))
    return pairs[: max(1, n)]


def chat_completion(state: FakeState, body: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a chat.completion for ``body`` (usage counted with beep.tokens)."""
    model = body.get("model") or "gpt-4o-mini"
    answer = _as_answer(state.chat_responder(body))
    content = answer.content
    finish = answer.finish_reason
    toks: list[str] = []
    if content is not None:
        toks = _answer_tokens(answer, content, model)
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if limit and len(toks) > limit:
            toks = toks[:limit]
            content = "".join(toks)
            finish = "length"
    logprobs = None
    if body.get("logprobs") and content:
        n = int(body.get("top_logprobs") or 0)
        items = []
        for i, tok in enumerate(toks):
            top = _top(answer, tok, n) if i == 0 else [(tok, 0.0)]
            lp = dict(top).get(tok, 0.0)
            items.append(
                {
                    "token": tok,
                    "logprob": lp,
                    "bytes": list(tok.encode()),
                    "top_logprobs": [{"token": t, "logprob": p, "bytes": list(t.encode())} for t, p in top[:n]],
                }
            )
        logprobs = {"content": items, "refusal": None}
    prompt_tokens = request_prompt_tokens(body)
    completion_tokens = len(toks) if content is not None else len(_tokens(answer.refusal or "", model))
    cached = state.cached_tokens(body)
    return {
        "id": state.new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": answer.refusal},
                "logprobs": logprobs,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def text_completion(state: FakeState, body: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a (legacy) text_completion for ``body``, with ``logprobs`` when asked."""
    model = body.get("model") or "babbage-002"
    answer = _as_answer(state.completion_responder(body))
    toks = _answer_tokens(answer, answer.content or "", model)
    limit = body.get("max_tokens") if body.get("max_tokens") is not None else 16
    cut = len(toks) > limit
    toks = toks[:limit]
    text = "".join(toks)
    logprobs = None
    if body.get("logprobs") is not None and toks:
        n = int(body.get("logprobs") or 0)
        tops = [dict(_top(answer, toks[0], n))] + [{t: 0.0} for t in toks[1:]]
        offsets, pos = [], 0
        for tok in toks:
            offsets.append(pos)
            pos += len(tok)
        logprobs = {
            "tokens": toks,
            "token_logprobs": [tops[i].get(t, 0.0) for i, t in enumerate(toks)],
            "top_logprobs": tops,
            "text_offset": offsets,
        }
    prompt_tokens = request_prompt_tokens(body)
    return {
        "id": state.new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length" if cut else answer.finish_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(toks),
            "total_tokens": prompt_tokens + len(toks),
        },
    }
