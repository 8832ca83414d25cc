"""Provider ``openai``: batched few-shot questions over beep.llm (paced, retried, persisted as they arrive).

Every request = the byte-identical few-shot prefix + up to ``batch_size`` examples. An answer is
parsed strictly (prompting.parse_answer): the valid verdicts are stored at once, the missing ids
are asked again in one follow-up request, then one by one (up to ``max_reasks`` times in all). A refusal (``refusal`` in
the answer, ``content_filter``, or a 400 such as content policy / context length) of a request
with several examples splits it into single-example requests, so only the example that causes it
is recorded as ``refused``, with the provider's reason. Other 400s (an unsupported parameter, a
bad model) are not refusals: those examples stay undecided and the run reports the error. Examples longer than ``max_example_tokens``
are recorded as refused (too long) without being sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import openai

from beep.llm.calls import CallResult, Usage, chat_call
from beep.llm.pacer import Pacer
from beep.llm.retry import RetryPolicy
from beep.llm.runner import Job, RequestRunner, RunStats
from beep.refine.prompting import Question, confidences, parse_answer, question, request_body, request_tokens
from beep.refine.store import Verdict, VerdictWriter
from beep.tokens import count_tokens


@dataclass
class OpenAIOptions:
    """Knobs of the openai provider (the CLI documents each)."""

    batch_size: int = 20
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    window_seconds: float = 60.0
    max_reasks: int = 3
    max_example_tokens: int = 4000
    logprobs: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass
class Plan:
    """What a run would send: the questions, and the examples refused before sending (too long)."""

    questions: list[Question]
    too_long: list[tuple[str, int]]  # (example id, tokens)


def plan(pending: Sequence[tuple[str, str]], *, model: str, batch_size: int, max_example_tokens: int) -> Plan:
    """Group pending examples (in the given order) into questions of ``batch_size``."""
    if batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    sendable: list[tuple[str, str]] = []
    too_long: list[tuple[str, int]] = []
    for example_id, text in pending:
        n = count_tokens(text, model)
        if n > max_example_tokens:
            too_long.append((example_id, n))
        else:
            sendable.append((example_id, text))
    questions = [question(sendable[i : i + batch_size]) for i in range(0, len(sendable), batch_size)]
    return Plan(questions, too_long)


def too_long_verdicts(too_long: Iterable[tuple[str, int]], limit: int) -> list[Verdict]:
    return [
        Verdict(eid, "refused", reason=f"too_long: {n} tokens > --max-example-tokens {limit}") for eid, n in too_long
    ]


REFUSAL_CODES = {"content_policy_violation", "content_filter", "context_length_exceeded", "invalid_prompt", "string_above_max_length"}
_REFUSAL_WORDS = re.compile(r"content (management )?polic|content filter|context length|maximum context|too long|flagged", re.I)


def is_refusal_error(exc: BaseException) -> bool:
    """A 400 about this input (content policy, too long), not about the request's shape or the model."""
    if not isinstance(exc, openai.BadRequestError):
        return False
    body = exc.body if isinstance(exc.body, dict) else {}
    code = str(body.get("code") or getattr(exc, "code", "") or "")
    return code in REFUSAL_CODES or bool(_REFUSAL_WORDS.search(str(body.get("message") or exc)))


def _share(total: int, k: int, i: int) -> int:
    """Split ``total`` over ``k`` parts so that the parts sum to ``total``."""
    return total // k + (1 if i < total % k else 0)


class RefineRequests:
    """Builds the jobs and handles their answers for one run."""

    def __init__(self, *, system: str, model: str, writer: VerdictWriter, options: OpenAIOptions) -> None:
        self.system = system
        self.model = model
        self.writer = writer
        self.options = options
        self.failed: dict[str, str] = {}  # example id -> why it is still undecided

    def job(self, q: Question, attempt: int = 0) -> Job:
        prompt_tokens, max_tokens = request_tokens(self.system, q, self.model)
        body = request_body(self.system, q, self.model, logprobs=self.options.logprobs)
        key = f"{q.items[0][1]}+{len(q.items) - 1}#{attempt}"
        return Job(
            key=key,
            estimated_tokens=prompt_tokens + max_tokens,
            send=lambda client: chat_call(client, **body),
            weight=len(q.items),
            payload=(q, attempt),
        )

    def _singles(self, q: Question, attempt: int) -> list[Job]:
        return [self.job(question([(eid, text)]), attempt) for _, eid, text in q.items]

    def _refused(self, q: Question, reason: str, raw: str | None, usage: Usage, request_id: str | None) -> None:
        (_, eid, _), = q.items
        self.writer.add(
            [Verdict(eid, "refused", reason=reason, raw_answer=raw, prompt_tokens=usage.prompt_tokens,
                     completion_tokens=usage.completion_tokens, cached_tokens=usage.cached_tokens, request_id=request_id)]
        )

    def on_result(self, job: Job, result: CallResult) -> list[Job]:
        q, attempt = job.payload
        completion = result.value
        choice = completion.choices[0]
        message = choice.message
        refusal = getattr(message, "refusal", None)
        if refusal or choice.finish_reason == "content_filter":
            reason = f"refusal: {refusal}" if refusal else "content_filter"
            if len(q.items) > 1:
                return self._singles(q, attempt)
            self._refused(q, reason, message.content or refusal, result.usage, completion.id)
            return []
        found, missing = parse_answer(message.content, q)
        logprob_items = getattr(getattr(choice, "logprobs", None), "content", None) or []
        confidence = confidences(message.content, [(t.token, t.logprob) for t in logprob_items], q)
        k = len(q.items)
        verdicts = []
        for i, (_, eid, _) in enumerate(q.items):
            if eid in found:
                verdicts.append(
                    Verdict(
                        eid,
                        found[eid],
                        confidence=confidence.get(eid),
                        raw_answer=message.content if k == 1 else f'"{q.items[i][0]}": "{found[eid]}"',
                        prompt_tokens=_share(result.usage.prompt_tokens, k, i),
                        completion_tokens=_share(result.usage.completion_tokens, k, i),
                        cached_tokens=_share(result.usage.cached_tokens, k, i),
                        request_id=completion.id,
                    )
                )
        self.writer.add(verdicts)
        if not missing:
            return []
        texts = {eid: text for _, eid, text in q.items}
        if attempt + 1 > self.options.max_reasks:
            for eid in missing:
                self.failed[eid] = f"no valid answer after {attempt + 1} requests (last: {str(message.content)[:200]!r})"
            return []
        if attempt >= 1 and len(missing) > 1:  # asked again and still missing: one by one, so one bad example can't hold others
            return [self.job(question([(eid, texts[eid])]), attempt + 1) for eid in missing]
        return [self.job(question([(eid, texts[eid]) for eid in missing]), attempt + 1)]

    def on_error(self, job: Job, exc: BaseException) -> list[Job]:
        q, attempt = job.payload
        if is_refusal_error(exc):
            if len(q.items) > 1:
                return self._singles(q, attempt)
            body = exc.body if isinstance(exc.body, dict) else {}
            code = body.get("code") or "bad_request"
            self._refused(q, f"{code}: {body.get('message') or exc}", None, Usage(), getattr(exc, "request_id", None))
            return []
        for _, eid, _ in q.items:
            self.failed[eid] = f"{type(exc).__name__}: {exc}"
        return []


def run_requests(
    client: openai.OpenAI,
    questions: Sequence[Question],
    *,
    handler: RefineRequests,
    pacer: Pacer,
    cost_of,
    progress: bool,
    description: str,
    console=None,
    budget: float | None = None,
    stats: RunStats | None = None,
) -> RunStats:
    """Send ``questions`` through the shared runner; ``stats`` (optional) is filled in place, so a
    run that raised still says what it used."""
    runner = RequestRunner(
        client,
        pacer=pacer,
        retry=handler.options.retry,
        concurrency=handler.options.concurrency,
        cost_of=cost_of,
        progress=progress,
        description=description,
        unit="examples",
        console=console,
        budget=budget,
    )
    total = sum(len(q.items) for q in questions)
    try:
        return runner.run(
            (handler.job(q) for q in questions),
            on_result=handler.on_result,
            on_error=handler.on_error,
            total_items=total,
            on_settled=handler.writer.flush,  # each round of answers is committed before the next request goes out
            stats=stats,
        )
    finally:
        handler.writer.flush()
