"""``refine(paths, provider=..., model=..., **options) -> RefineSummary``: the step `beep refine` and `beep run` call.

Idempotent: examples that already have a verdict under (few-shot hash, provider, model) are never
sent again, so a rerun after a crash (even kill -9) picks up exactly the examples still undecided.
"""

from __future__ import annotations

import time
import uuid
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from beep import providers
from beep.config import Paths
from beep.interrupts import Terminated, interruption, signals_as_interrupts
from beep.llm.calls import Usage
from beep.llm.client import ClientSettings, make_client
from beep.llm.pacer import Pacer
from beep.llm.pricing import ModelPrice, PriceTable, default_price_table
from beep.llm.retry import RetryPolicy
from beep.llm.runner import RunStats
from beep.refine import batch_api
from beep.refine.fewshot import FewShotSet, choose_fewshot
from beep.refine.openai_provider import OpenAIOptions, Plan, RefineRequests, plan, run_requests, too_long_verdicts
from beep.refine.prompting import Question, request_tokens, system_prompt
from beep.refine.store import (
    RunLock,
    VerdictKey,
    VerdictWriter,
    count_examples,
    finish_run,
    pending_examples,
    process_tag,
    recover_stale_runs,
    start_run,
    stored_by_run,
    usage_of_run,
    verdict_counts,
)
from beep.refine.summarize import summarize_fewshot, summarized_hash

from beep.locks import StepLock
from beep.refine.providers import DEFAULT_OPENAI_MODEL, LOCAL_MODEL_NAME, PROVIDERS

__all__ = ["PROVIDERS", "CostLimitExceeded", "Estimate", "RefineSummary", "Terminated", "refine"]


def _recover_stale(paths: Paths, console: Console) -> None:
    """Runs left ``running`` by a process that died (SIGKILL, a closed terminal, a crash) become
    ``interrupted``, with the tokens and cost of the answers they stored."""
    prices = default_price_table(paths.project_dir)

    def cost_of(model: str, settings: dict[str, Any], mode: str, tokens: tuple[int, int, int]) -> float | None:
        if mode == "local":
            return 0.0
        price = prices.get(settings.get("price_model") or model)
        return price.cost(Usage(*tokens), batch=mode == "batch_api")

    for run in recover_stale_runs(paths.duckdb, cost_of):
        spent = f"${run.cost:.4f}" if run.cost is not None else "an unknown cost (no price for the model)"
        console.print(
            f"refine run {run.run_id} ({run.model}) was left running by a process that is gone: marked interrupted, "
            f"{run.n_decided} stored answers from {run.requests} requests, {spent}",
            markup=False, highlight=False, emoji=False,
        )


class CostLimitExceeded(RuntimeError):
    """The estimated cost of a run is above --max-cost; nothing was sent."""


@dataclass
class Estimate:
    """What a run would send (dry-run), counted with beep.tokens and priced from seeds/model_prices.csv."""

    examples: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    max_output_tokens: int = 0
    prefix_tokens: int = 0
    refused_too_long: int = 0
    cost_upper: float = 0.0  # no prompt caching, every answer at its max length
    cost_cached: float = 0.0  # the prefix served from cache after the first request

    def line(self) -> str:
        return (
            f"would send {self.examples} examples in {self.requests} requests: {self.prompt_tokens:,} prompt tokens "
            f"(prefix {self.prefix_tokens:,} each), <= {self.max_output_tokens:,} output tokens; "
            f"estimated cost <= ${self.cost_upper:.4f} (${self.cost_cached:.4f} with the prefix cached)"
            + (f"; {self.refused_too_long} too long to send" if self.refused_too_long else "")
        )


@dataclass
class RefineSummary:
    """What a refine run did (or, with dry_run, would do)."""

    provider: str
    model: str
    fewshot_hash: str
    run_id: str | None = None
    dry_run: bool = False
    n_examples: int = 0
    n_already_decided: int = 0
    n_decided_now: int = 0
    n_strong: int = 0
    n_weak: int = 0
    n_refused: int = 0
    n_undecided: int = 0
    n_failed: int = 0  # left undecided by this run after retries/re-asks (a rerun tries again)
    n_in_open_batches: int = 0
    n_unsent: int = 0  # not sent because the --max-cost budget ran out (a rerun with a larger one continues)
    #: requests that got no answer (timeouts, dropped connections, in flight at a stop): the provider may
    #: have billed them; not in ``cost``
    n_unanswered: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    elapsed_seconds: float = 0.0
    estimate: Estimate | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def line(self) -> str:
        if self.dry_run:
            head = f"refine dry-run ({self.provider} {self.model}, few-shot {self.fewshot_hash}): "
            if providers.get(self.provider).runs_here or self.estimate is None:
                return head + f"{self.n_examples - self.n_already_decided} examples to decide offline (no requests, no cost)"
            return head + self.estimate.line()
        return (
            f"refine {self.provider} {self.model} (few-shot {self.fewshot_hash}): {self.n_examples} examples — "
            f"{self.n_strong} strong, {self.n_weak} weak, {self.n_refused} refused, {self.n_undecided} undecided; "
            f"{self.n_decided_now} decided now, {self.n_already_decided} already; {self.requests} requests, "
            f"{self.tokens:,} tokens ({self.cached_tokens:,} cached), ${self.cost:.4f}, {self.elapsed_seconds:.1f} s"
            + (f"; {self.n_in_open_batches} in open batches (rerun to collect)" if self.n_in_open_batches else "")
            + (f"; {self.n_failed} failed (rerun to retry)" if self.n_failed else "")
            + (f"; {self.n_unsent} not sent: the cost cap was reached (rerun with a larger --max-cost)"
               if self.n_unsent else "")
            + (f"; {self.n_unanswered} request{'s' if self.n_unanswered != 1 else ''} got no answer (timeouts, dropped "
               "connections, in flight at a stop): the provider may have billed them, not counted in the cost"
               if self.n_unanswered else "")
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens"] = self.tokens
        return out


def estimate_questions(system: str, questions: list[Question], model: str, prices: PriceTable | None, *,
                       batch: bool, too_long: int = 0, price_model: str | None = None) -> Estimate:
    est = Estimate(examples=sum(len(q.items) for q in questions), requests=len(questions), refused_too_long=too_long)
    for q in questions:
        prompt, max_out = request_tokens(system, q, model)
        est.prompt_tokens += prompt
        est.max_output_tokens += max_out
    if questions:
        est.prefix_tokens = request_tokens(system, Question(()), model)[0]
    if prices is not None:
        price = prices.get(price_model or model)
        est.cost_upper = price.cost(Usage(est.prompt_tokens, est.max_output_tokens, 0), batch=batch)
        cached = max(0, est.requests - 1) * est.prefix_tokens if est.prefix_tokens >= 1024 else 0
        est.cost_cached = price.cost(Usage(est.prompt_tokens, est.max_output_tokens, cached), batch=batch)
    return est


def _fill_counts(summary: RefineSummary, db: Path, key: VerdictKey) -> None:
    counts = verdict_counts(db, key)
    summary.n_examples = count_examples(db)
    summary.n_strong = counts.get("strong", 0)
    summary.n_weak = counts.get("weak", 0)
    summary.n_refused = counts.get("refused", 0)
    summary.n_undecided = summary.n_examples - summary.n_strong - summary.n_weak - summary.n_refused


def _refine_local(paths: Paths, fewshot: FewShotSet, summary: RefineSummary, *, dry_run: bool,
                  console: Console | None = None, progress: bool = True) -> None:
    from beep.progress import Heartbeat

    console = console or Console(stderr=True)
    # never silent on a large dataset: the phase and the elapsed time on a terminal, and a line
    # after every 10 s of silence in a pipe
    with Heartbeat(console, "refine (local): reading the examples still undecided", spinner=progress) as beat:
        _refine_local_steps(paths, fewshot, summary, dry_run=dry_run, beat=beat)


def _refine_local_steps(paths: Paths, fewshot: FewShotSet, summary: RefineSummary, *, dry_run: bool, beat) -> None:
    from beep.refine.local import LocalClassifier
    from beep.refine.store import Verdict

    key = VerdictKey(fewshot.hash, "local", LOCAL_MODEL_NAME)
    pending = pending_examples(paths.duckdb, key)
    summary.n_examples = count_examples(paths.duckdb)
    summary.n_already_decided = summary.n_examples - len(pending)
    if dry_run:
        summary.estimate = Estimate(examples=len(pending))
        return
    run_id = uuid.uuid4().hex
    summary.run_id = run_id
    lock = RunLock(paths.duckdb, run_id).acquire()
    start_run(paths.duckdb, run_id, key, mode="local", settings=process_tag(), n_pending=len(pending))
    writer = VerdictWriter(paths.duckdb, key, run_id, flush_rows=50_000, flush_seconds=3600)
    status = "failed"
    try:
        if len(pending) >= 20_000:
            beat.say(f"refine (local): deciding {len(pending):,} examples ({summary.n_already_decided:,} already decided)")
        beat.set_phase(f"refine (local): fitting the classifier on {len(fewshot.examples)} few-shot examples")
        classifier = LocalClassifier.fit(fewshot)
        chunk = 20_000
        for start in range(0, len(pending), chunk):
            beat.set_phase(f"refine (local): decided {start:,}/{len(pending):,} examples")
            part = pending[start : start + chunk]
            verdicts, confidence = classifier.predict([text for _, text in part])
            writer.add([Verdict(eid, v, confidence=c) for (eid, _), v, c in zip(part, verdicts, confidence)])
        beat.set_phase(f"refine (local): storing {len(pending):,} verdicts")
        writer.flush()
        status = "finished"
    except BaseException as err:
        stopped = interruption(err)
        if stopped is None:
            raise
        status = "interrupted"
        if stopped is err:
            raise
        raise stopped from err
    finally:
        try:
            writer.flush()
        finally:
            summary.n_decided_now = stored_by_run(paths.duckdb, run_id)
            finish_run(paths.duckdb, run_id, status=status, n_decided=summary.n_decided_now, n_failed=0, requests=0,
                       prompt_tokens=0, completion_tokens=0, cached_tokens=0, cost=0.0)
            lock.release()


def refine(
    paths: Paths,
    *,
    provider: str = "local",
    model: str | None = None,
    fewshot_path: Path | None = None,
    batch_size: int = 20,
    concurrency: int = 8,
    rpm: float | None = None,
    tpm: float | None = None,
    window_seconds: float = 60.0,
    timeout_seconds: float = 60.0,
    max_tries: int = 8,
    retry_base_seconds: float = 1.0,
    retry_cap_seconds: float = 60.0,
    max_reasks: int = 3,
    max_example_tokens: int = 4000,
    logprobs: bool = False,
    dry_run: bool = False,
    max_cost: float | None = None,
    batch_api_mode: bool = False,
    wait: bool = True,
    poll_seconds: float = 30.0,
    summarize: bool = False,
    summarize_over_tokens: int = 120,
    base_url: str | None = None,
    price_model: str | None = None,
    progress: bool = True,
    refresh_dbt: bool = True,
    console: Console | None = None,
) -> RefineSummary:
    """Decide strong / weak for every example of ``training_examples`` that has no verdict yet.

    ``provider``: ``local`` (offline classifier; ``model`` is ignored), ``openai`` (OPENAI_API_KEY,
    OPENAI_BASE_URL or ``base_url``) or ``azure`` (AzureOpenAI; ``model`` = deployment name, priced
    as ``price_model`` when the deployment's name is not a model id of seeds/model_prices.csv).
    Raises :class:`CostLimitExceeded` before sending anything when the estimate exceeds ``max_cost``.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}: use one of {', '.join(PROVIDERS)}")
    started = time.monotonic()
    console = console or Console(stderr=True)
    choice = choose_fewshot(paths.duckdb, paths.project_dir, fewshot_path)  # the sample's set only for the sample
    fewshot = choice.fewshot
    console.print(choice.message, markup=False, highlight=False, emoji=False)
    # SIGINT / SIGTERM / SIGHUP unwind like Ctrl-C (the run is recorded interrupted with its cost); one
    # refine at a time on this DuckDB file: a second one waits, then asks only what is still pending
    with signals_as_interrupts(), StepLock(paths, "refine") if not dry_run else nullcontext():
        return _refine(paths, fewshot, started=started, provider=provider, model=model, batch_size=batch_size,
                       concurrency=concurrency, rpm=rpm, tpm=tpm, window_seconds=window_seconds,
                       timeout_seconds=timeout_seconds, max_tries=max_tries, retry_base_seconds=retry_base_seconds,
                       retry_cap_seconds=retry_cap_seconds, max_reasks=max_reasks,
                       max_example_tokens=max_example_tokens, logprobs=logprobs, dry_run=dry_run, max_cost=max_cost,
                       batch_api_mode=batch_api_mode, wait=wait, poll_seconds=poll_seconds, summarize=summarize,
                       summarize_over_tokens=summarize_over_tokens, base_url=base_url, price_model=price_model,
                       progress=progress, refresh_dbt=refresh_dbt, console=console)


def _refine(paths: Paths, fewshot: FewShotSet, *, started: float, provider: str, model: str | None, batch_size: int,
            concurrency: int, rpm: float | None, tpm: float | None, window_seconds: float, timeout_seconds: float,
            max_tries: int, retry_base_seconds: float, retry_cap_seconds: float, max_reasks: int,
            max_example_tokens: int, logprobs: bool, dry_run: bool, max_cost: float | None, batch_api_mode: bool,
            wait: bool, poll_seconds: float, summarize: bool, summarize_over_tokens: int, base_url: str | None,
            price_model: str | None, progress: bool, refresh_dbt: bool, console: Console) -> RefineSummary:
    if not dry_run and paths.duckdb.exists():
        _recover_stale(paths, console)  # under the refine lock: runs still marked running are dead
    if providers.get(provider).runs_here:  # the offline classifier; the others are OpenAI-compatible APIs
        summary = RefineSummary(provider, LOCAL_MODEL_NAME, fewshot.hash, dry_run=dry_run)
        _refine_local(paths, fewshot, summary, dry_run=dry_run, console=console, progress=progress)
    else:
        model = model or DEFAULT_OPENAI_MODEL
        summary = RefineSummary(provider, model, fewshot.hash, dry_run=dry_run)
        _refine_remote(
            paths, fewshot, summary, console=console, base_url=base_url, timeout_seconds=timeout_seconds,
            options=OpenAIOptions(
                batch_size=batch_size, concurrency=concurrency, rpm=rpm, tpm=tpm, window_seconds=window_seconds,
                max_reasks=max_reasks, max_example_tokens=max_example_tokens, logprobs=logprobs,
                retry=RetryPolicy(max_tries=max_tries, base_seconds=retry_base_seconds, cap_seconds=retry_cap_seconds),
            ),
            dry_run=dry_run, max_cost=max_cost, batch_api_mode=batch_api_mode, wait=wait, poll_seconds=poll_seconds,
            summarize=summarize, summarize_over_tokens=summarize_over_tokens, progress=progress,
            price_model=price_model,
        )
    key = VerdictKey(summary.fewshot_hash, summary.provider, summary.model)
    if not dry_run:
        _fill_counts(summary, paths.duckdb, key)
        if refresh_dbt:
            from beep.refine.refined_model import refresh_refined_models

            refresh_refined_models(paths)
    summary.elapsed_seconds = time.monotonic() - started
    return summary


def _fewshot_system(paths: Paths, fewshot: FewShotSet, summary: RefineSummary, client: Any, *, console: Console,
                    dry_run: bool, summarize: bool, summarize_over_tokens: int, options: OpenAIOptions,
                    ) -> tuple[str, Usage]:
    """The system prompt (its few-shot prefix summarised with --summarize-fewshot) and what summarising used."""
    texts = None
    usage = Usage()
    if summarize:
        if dry_run:
            console.print("[yellow]--summarize-fewshot with --dry-run: estimating with the unsummarised prefix[/]")
        else:
            texts, usage = summarize_fewshot(paths.duckdb, fewshot, client, model=summary.model,
                                             over_tokens=summarize_over_tokens, retry=options.retry)
            summary.fewshot_hash = summarized_hash(fewshot, texts)
    return system_prompt(fewshot, texts), usage


def _plan_pending(paths: Paths, summary: RefineSummary, key: VerdictKey, client: Any, writer: VerdictWriter,
                  outcome: batch_api.BatchOutcome, *, system: str, prices: PriceTable, options: OpenAIOptions,
                  dry_run: bool, batch_api_mode: bool, poll_seconds: float, price_model: str | None,
                  ) -> tuple[list[tuple[str, str]], Plan, Estimate]:
    """Collect earlier batches (--batch-api), plan the questions for what is still pending and estimate them."""
    if batch_api_mode and not dry_run:
        # collect what earlier runs submitted before deciding what is still pending
        batch_api.resume_and_collect(paths.duckdb, key, client, writer, wait=False, poll_seconds=poll_seconds,
                                     retry=options.retry, outcome=outcome)
    pending = pending_examples(paths.duckdb, key)
    summary.n_examples = count_examples(paths.duckdb)
    summary.n_already_decided = summary.n_examples - len(pending) - outcome.open_examples
    the_plan = plan(pending, model=summary.model, batch_size=options.batch_size,
                    max_example_tokens=options.max_example_tokens)
    estimate = estimate_questions(system, the_plan.questions, summary.model, prices, batch=batch_api_mode,
                                  too_long=len(the_plan.too_long), price_model=price_model)
    summary.estimate = estimate
    return pending, the_plan, estimate


@dataclass
class _Tally:
    """What a remote run has used so far and how it ended, updated in place as its phases go."""

    usage: Usage
    requests: int = 0
    status: str = "failed"


def _refuse_over_budget(estimate: Estimate, max_cost: float | None, model: str) -> None:
    if max_cost is not None and estimate.cost_upper > max_cost:
        raise CostLimitExceeded(
            f"refusing to start: the run could cost up to ${estimate.cost_upper:.4f} "
            f"(${estimate.cost_cached:.4f} with prompt caching) for {estimate.examples} examples with {model}, "
            f"above --max-cost ${max_cost:.4f}. Raise --max-cost, refine fewer examples, or use --batch-api (half price)."
        )


def _start_locked(paths: Paths, run_id: str, key: VerdictKey, *, options: OpenAIOptions, batch_api_mode: bool,
                  price_model: str | None, n_pending: int) -> RunLock:
    """Take the run's lock (held until the run is recorded: tells a live run from a dead one) and record its start."""
    lock = RunLock(paths.duckdb, run_id).acquire()
    try:
        start_run(paths.duckdb, run_id, key, mode="batch_api" if batch_api_mode else "requests",
                  settings={"batch_size": options.batch_size, "concurrency": options.concurrency, "rpm": options.rpm,
                            "tpm": options.tpm, "max_reasks": options.max_reasks, "price_model": price_model,
                            **process_tag()},
                  n_pending=n_pending)
    except BaseException:
        lock.release()
        raise
    return lock


def _ask_batch_api(paths: Paths, summary: RefineSummary, key: VerdictKey, client: Any, writer: VerdictWriter,
                   outcome: batch_api.BatchOutcome, the_plan: Plan, tally: _Tally, price: ModelPrice, *, system: str,
                   options: OpenAIOptions, wait: bool, poll_seconds: float) -> None:
    """Submit and collect batches, re-asking what the answers missed, then tally usage, requests and status."""
    rounds = 0
    questions = the_plan.questions
    while True:
        if questions:
            batch_api.submit(paths.duckdb, key, client, system, questions, retry=options.retry,
                             logprobs=options.logprobs)
            outcome.submitted += 1
        batch_api.resume_and_collect(paths.duckdb, key, client, writer, wait=wait, poll_seconds=poll_seconds,
                                     retry=options.retry, outcome=outcome)
        rounds += 1
        if not wait or rounds > options.max_reasks:
            break
        again = pending_examples(paths.duckdb, key)
        if not again:
            break
        # re-ask what the answers missed; refusals of grouped requests are split into singles
        questions = plan(again, model=summary.model, batch_size=max(1, options.batch_size // (2 ** rounds)),
                         max_example_tokens=options.max_example_tokens).questions
    tally.usage = tally.usage + outcome.usage
    tally.requests = outcome.requests
    summary.n_in_open_batches = outcome.open_examples
    summary.cost = price.cost(tally.usage, batch=True)
    tally.status = ("submitted" if outcome.open_submissions
                    else "incomplete" if pending_examples(paths.duckdb, key) else "finished")


#: Without --max-cost, a run stops sending once it spent this many times its estimate's upper bound: the
#: estimate counts every question once, and only answers that cannot be read are asked again (alone, up to
#: --max-reasks times), so a model that answers nothing readable would otherwise spend many times it.
DEFAULT_COST_CAP = 3.0


def _default_cap(estimate: Estimate | None, price: ModelPrice, concurrency: int) -> float | None:
    """The spend a run without --max-cost stops at: DEFAULT_COST_CAP times the estimate's upper bound,
    plus what the runner holds back for the requests in flight (it reserves each one's every token at the
    output price, so a run that goes as estimated never meets the cap)."""
    if estimate is None or estimate.cost_upper <= 0 or not estimate.requests:
        return None
    most = price.cost(Usage(0, estimate.prompt_tokens + estimate.max_output_tokens, 0))
    return DEFAULT_COST_CAP * estimate.cost_upper + (concurrency + 1) * most / estimate.requests


def _ask_requests(summary: RefineSummary, client: Any, writer: VerdictWriter, the_plan: Plan, tally: _Tally,
                  price: ModelPrice, stats: RunStats, *, system: str, options: OpenAIOptions, console: Console,
                  max_cost: float | None, progress: bool, estimate: Estimate | None = None) -> None:
    """Send the questions as paced concurrent requests, then tally usage, requests and status."""
    model = summary.model
    handler = RefineRequests(system=system, model=model, writer=writer, options=options)
    pacer = Pacer(options.rpm, options.tpm, window_seconds=options.window_seconds)
    cap = _default_cap(estimate, price, options.concurrency) if max_cost is None else None
    run_requests(
        client, the_plan.questions, handler=handler, pacer=pacer,
        cost_of=lambda u: price.cost(u), progress=progress,
        description=f"refine {model}", console=console, budget=max_cost if max_cost is not None else cap, stats=stats,
    )
    tally.usage = tally.usage + stats.usage
    tally.requests = stats.requests
    summary.cost = price.cost(tally.usage)
    summary.n_unanswered = stats.unanswered
    summary.failures = [f"{eid}: {why}" for eid, why in sorted(handler.failed.items())]
    summary.n_failed = len(handler.failed)
    if stats.stopped_by_budget and max_cost is not None:
        summary.n_unsent = stats.unsent_items
        summary.failures.insert(0, f"stopped at --max-cost ${max_cost:.4f} (${summary.cost:.4f} spent): "
                                   f"{stats.unsent_items} examples not sent")
    elif stats.stopped_by_budget and cap is not None:
        summary.n_unsent = stats.unsent_items
        summary.failures.insert(0, f"stopped at about {DEFAULT_COST_CAP:g}x the estimate (${cap:.4f}; ${summary.cost:.4f} "
                                   f"spent; no --max-cost was given): {len(handler.failed):,} answers could not be "
                                   f"read and each is asked again alone (--max-reasks {options.max_reasks}), so the run "
                                   f"was costing far more than estimated; {stats.unsent_items} examples not sent. Check "
                                   f"the model's answers (--model, the few-shot set), or pass --max-cost to allow more")
    # a run that left examples undecided is not the one refined_training_examples should use
    tally.status = "finished" if not summary.n_failed and not stats.stopped_by_budget else "incomplete"


def _record_finish(paths: Paths, summary: RefineSummary, run_id: str, writer: VerdictWriter, stats: RunStats,
                   price: ModelPrice, lock: RunLock, *, tally: _Tally, batch_api_mode: bool) -> None:
    """Close the writer, fill the summary's counts and usage, record the run's end and release its lock."""
    status, requests, usage = tally.status, tally.requests, tally.usage
    writer.close()
    if status in ("interrupted", "failed") and not requests:
        # stopped by an interrupt or an error: what the runner counted before it stopped (every
        # answer received, malformed ones included), else what the stored verdicts say it used
        if stats.requests:
            requests, usage = stats.requests, usage + stats.usage
        else:
            requests, p_tok, c_tok, cached = usage_of_run(paths.duckdb, run_id)
            usage = usage + Usage(p_tok, c_tok, cached)
        summary.cost = price.cost(usage, batch=batch_api_mode)
    summary.n_decided_now = stored_by_run(paths.duckdb, run_id)
    summary.n_unanswered = max(summary.n_unanswered, stats.unanswered)
    summary.requests = requests
    summary.prompt_tokens = usage.prompt_tokens
    summary.completion_tokens = usage.completion_tokens
    summary.cached_tokens = usage.cached_tokens
    try:
        finish_run(paths.duckdb, run_id, status=status, n_decided=summary.n_decided_now, n_failed=summary.n_failed,
                   requests=requests, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                   cached_tokens=usage.cached_tokens, cost=summary.cost)
    finally:
        lock.release()


def _refine_remote(
    paths: Paths,
    fewshot: FewShotSet,
    summary: RefineSummary,
    *,
    console: Console,
    base_url: str | None,
    timeout_seconds: float,
    options: OpenAIOptions,
    dry_run: bool,
    max_cost: float | None,
    batch_api_mode: bool,
    wait: bool,
    poll_seconds: float,
    summarize: bool,
    summarize_over_tokens: int,
    progress: bool,
    price_model: str | None,
) -> None:
    model = summary.model
    prices = default_price_table(paths.project_dir)
    price = prices.get(price_model or model)  # fail before anything is sent when the model has no price
    client = None if dry_run else make_client(ClientSettings(provider=summary.provider, base_url=base_url, timeout_seconds=timeout_seconds))
    system, usage = _fewshot_system(paths, fewshot, summary, client, console=console, dry_run=dry_run,
                                    summarize=summarize, summarize_over_tokens=summarize_over_tokens, options=options)
    key = VerdictKey(summary.fewshot_hash, summary.provider, model)
    run_id = uuid.uuid4().hex
    # Buffered only until the request runner's on_settled: every round of parsed answers is committed
    # before a freed slot sends anything, so a kill -9 costs at most the requests in flight.
    writer = VerdictWriter(paths.duckdb, key, run_id, flush_seconds=float("inf"), flush_rows=1 << 30)
    outcome = batch_api.BatchOutcome()
    pending, the_plan, estimate = _plan_pending(paths, summary, key, client, writer, outcome, system=system, prices=prices,
                                      options=options, dry_run=dry_run, batch_api_mode=batch_api_mode,
                                      poll_seconds=poll_seconds, price_model=price_model)
    if dry_run:
        return
    _refuse_over_budget(estimate, max_cost, model)
    summary.run_id = run_id
    lock = _start_locked(paths, run_id, key, options=options, batch_api_mode=batch_api_mode,
                         price_model=price_model, n_pending=len(pending))
    tally = _Tally(usage)
    stats = RunStats()
    try:
        writer.add(too_long_verdicts(the_plan.too_long, options.max_example_tokens))
        writer.flush()
        if batch_api_mode:
            _ask_batch_api(
                paths, summary, key, client, writer, outcome, the_plan, tally, price, system=system,
                options=options, wait=wait, poll_seconds=poll_seconds)
        else:
            _ask_requests(
                summary, client, writer, the_plan, tally, price, stats, system=system, options=options,
                console=console, max_cost=max_cost, progress=progress, estimate=estimate)
    except BaseException as err:
        stopped = interruption(err)
        if stopped is None:
            raise
        tally.status = "interrupted"
        if stopped is err:
            raise
        raise stopped from err
    finally:
        _record_finish(paths, summary, run_id, writer, stats, price, lock, tally=tally, batch_api_mode=batch_api_mode)
