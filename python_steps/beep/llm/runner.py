"""Run many API requests with bounded concurrency, pacing, retries, persistence as results arrive.

Usage::

    runner = RequestRunner(client, pacer=Pacer(rpm=500, tpm=200_000), retry=RetryPolicy(),
                           concurrency=8, cost_of=lambda usage: prices.cost(model, usage))
    stats = runner.run(jobs, on_result=save, on_error=record_failure, total_items=n)

A :class:`Job` carries its ``key``, ``estimated_tokens`` (reserved in the pacer before each attempt,
retries included), ``weight`` (how many items it carries, e.g. examples in a batched request; the
progress bar advances by it, minus the weight of any follow-up jobs its callback returns), the caller's ``payload`` and ``send(client) -> CallResult``. Workers only make
calls; ``on_result(job, result)`` and ``on_error(job, exc)`` run in the calling thread, one at a
time, as soon as each call finishes — write to DuckDB there in a short transaction. ``on_result``
and ``on_error`` (called when a job fails for good: not retryable, or retries exhausted) may return
follow-up jobs (e.g. re-ask only the ids an answer missed); they run before new jobs.
``on_settled()`` (optional) runs after each round of finished calls has been handled and *before*
any new request is sent: a caller that buffers results in ``on_result`` commits them there, so a
request's slot is freed only once its answer is durable. A kill then loses at most the answers of
the requests in flight (at most ``concurrency``), however slow the writes are.
Authentication / permission / not-found errors abort the whole run (:class:`RunAborted`): every
request would fail the same way. When ``run`` ends with an exception (an interrupt, SIGTERM turned
into one, an error in a callback), the worker threads send nothing more: a request waiting for the
pacer or for its next retry is dropped (:class:`RunStopped`), so only the calls already on the wire
finish. ``stats`` (optional) is filled in place, so the caller knows what a run that raised used.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import openai
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from beep.llm.calls import CallResult, Usage
from beep.llm.pacer import Pacer
from beep.llm.retry import RetryPolicy, call_with_retry, describe_error

#: Without a progress bar (stderr not a terminal, or progress off), a progress line and a retry note
#: are printed at most this often, so a pipe or a log is never silent for long.
NOTE_SECONDS = 10.0


@dataclass
class Job:
    """One request to make."""

    key: str
    estimated_tokens: int
    send: Callable[[openai.OpenAI], CallResult]
    weight: int = 1
    payload: Any = None


@dataclass
class RunStats:
    """What a run did."""

    requests: int = 0  # successful calls
    attempts: int = 0  # calls tried, retries included
    retries: int = 0
    failed: int = 0  # jobs given up on (on_error was called)
    items: int = 0  # weight settled by successful calls (minus what their follow-ups carry on)
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    elapsed_seconds: float = 0.0
    pacer_wait_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: the budget ran out: jobs (and their items) that were never sent
    stopped_by_budget: bool = False
    unsent_items: int = 0
    #: tries that got no answer (a timeout, a dropped connection) and requests in flight when the run
    #: stopped: the provider may have done, and billed, them; their cost is not in ``cost``
    unanswered: int = 0


class RunAborted(RuntimeError):
    """An error every request would hit (bad key, no access, unknown model): the run stopped."""


FATAL_ERRORS: tuple[type[BaseException], ...] = (
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
)

OnResult = Callable[[Job, CallResult], Iterable[Job] | None]
OnError = Callable[[Job, BaseException], Iterable[Job] | None]


class RunStopped(RuntimeError):
    """The run ended (interrupted or failed) before this request was sent: it is not sent."""


class _Queue:
    """One run's jobs: those not sent yet (follow-ups first, then the caller's, read lazily) and those in flight."""

    def __init__(self, jobs: Iterable[Job]) -> None:
        self.source: Iterator[Job] = iter(jobs)
        self.followups: deque[Job] = deque()
        self.in_flight: dict[Future[CallResult], Job] = {}
        self.exhausted = False

    def next_job(self) -> Job | None:
        if self.followups:
            return self.followups.popleft()
        if self.exhausted:
            return None
        try:
            return next(self.source)
        except StopIteration:
            self.exhausted = True
            return None

    def unsent_weight(self) -> int:
        """The items of every job not sent: the follow-ups and what the caller's jobs had left."""
        return sum(j.weight for j in self.followups) + sum(j.weight for j in self.source)


class RequestRunner:
    """Bounded-concurrency, paced, retrying request runner (see the module docstring)."""

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 8,
        cost_of: Callable[[Usage], float] | None = None,
        progress: bool = True,
        description: str = "requests",
        unit: str = "items",
        console: Console | None = None,
        budget: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.pacer = pacer or Pacer()
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.cost_of = cost_of
        self.description = description
        self.unit = unit
        self.console = console or Console(stderr=True)
        #: the bar shows only on a terminal: elsewhere rich's bar would stay invisible until the end,
        #: so progress lines and retry notes are printed instead
        self.progress = progress and self.console.is_terminal
        #: USD: no request is sent unless what was spent, plus the most every request in flight and
        #: this one could cost (all their tokens at the output price), stays within it.
        self.budget = budget
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # set when run() ends by an exception: send nothing more
        self._last_retry_note = float("-inf")  # at most one retry note every NOTE_SECONDS without a progress bar

    # -- worker side ---------------------------------------------------------------------------
    def _execute(self, job: Job, stats: RunStats) -> CallResult:
        def once() -> CallResult:
            if self._stopping.is_set():
                raise RunStopped(job.key)
            reservation = self.pacer.acquire(job.estimated_tokens)
            if self._stopping.is_set():  # the pacer may have waited long
                self.pacer.settle(reservation)
                raise RunStopped(job.key)
            with self._lock:
                stats.attempts += 1
            try:
                result = job.send(self.client)
            except openai.APIConnectionError:  # a timeout too: the server may have answered after we left
                with self._lock:
                    stats.unanswered += 1
                raise
            finally:
                self.pacer.settle(reservation)
            self.pacer.observe_headers(result.headers)
            return result

        def on_wait(exc: BaseException, seconds: float, tries: int) -> None:
            with self._lock:
                stats.retries += 1
            response = getattr(exc, "response", None)
            if response is not None:
                self.pacer.observe_headers(getattr(response, "headers", None))
            if isinstance(exc, openai.RateLimitError):
                self.pacer.pause_for(seconds)
            if not self.progress:  # without a bar (whose "retries" column shows it), say why we wait
                now = time.monotonic()
                with self._lock:
                    quiet = now - self._last_retry_note < NOTE_SECONDS
                    if not quiet:
                        self._last_retry_note = now
                if not quiet:
                    self.console.print(
                        f"retrying in {seconds:.1f} s (attempt {tries}): {describe_error(exc, self.client)}",
                        markup=False, emoji=False, highlight=False,
                    )

        return call_with_retry(once, self.retry, on_wait=on_wait)

    # -- caller side ---------------------------------------------------------------------------
    def _most(self, job: Job) -> float:
        """The most ``job`` can cost: every token it may use priced as output (the dearer kind)."""
        assert self.cost_of is not None
        return self.cost_of(Usage(0, job.estimated_tokens, 0))

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:,.0f} {task.fields[unit]}/min"),
            TextColumn("${task.fields[spend]:.4f}"),
            TextColumn("{task.fields[retries]} retries"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.progress,
            transient=False,
        )

    def _line(self, stats: RunStats, total: int | None, elapsed: float, in_flight: int) -> None:
        """A progress line in place of the bar: what is done, rate, spend, retries, elapsed time."""
        done = f"{stats.items:,}/{total:,}" if total is not None else f"{stats.items:,}"
        spend = f", ${stats.cost:.4f}" if self.cost_of is not None else ""
        self.console.print(
            f"  {elapsed:5.0f} s: {self.description}: {done} {self.unit}, {stats.requests:,} requests answered, "
            f"{in_flight} in flight, {stats.retries} retries{spend}",
            markup=False, emoji=False, highlight=False,
        )

    def _send_more(self, queue: _Queue, pool: ThreadPoolExecutor, stats: RunStats) -> None:
        """Fill the free slots with the next jobs, unless the budget would be passed (then stop sending)."""
        while len(queue.in_flight) < self.concurrency and not stats.stopped_by_budget:
            job = queue.next_job()
            if job is None:
                break
            if self.budget is not None and self.cost_of is not None:
                reserved = sum(self._most(j) for j in queue.in_flight.values()) + self._most(job)
                if stats.cost + reserved > self.budget:
                    stats.stopped_by_budget = True
                    queue.followups.appendleft(job)
                    break
            queue.in_flight[pool.submit(self._execute, job, stats)] = job

    def _handle(self, queue: _Queue, future: Future[CallResult], stats: RunStats, progress: Progress, task: TaskID,
                on_result: OnResult, on_error: OnError | None) -> None:
        """Count one finished call and hand it to ``on_result`` or ``on_error``; queue their follow-ups."""
        job = queue.in_flight.pop(future)
        exc = future.exception()
        if exc is None:
            result = future.result()
            stats.requests += 1
            stats.usage = stats.usage + result.usage
            if self.cost_of is not None:
                stats.cost += self.cost_of(result.usage)
            more = list(on_result(job, result) or ())
            queue.followups.extend(more)
            settled = max(0, job.weight - sum(j.weight for j in more))
            stats.items += settled
            progress.advance(task, settled)
        elif isinstance(exc, FATAL_ERRORS):
            raise RunAborted(
                f"{type(exc).__name__} from the API ({exc}); every request would fail "
                f"the same way: check the key, the base URL and the model name."
            ) from exc
        else:
            stats.failed += 1
            stats.errors.append(f"{job.key}: {describe_error(exc, self.client)}")
            more = list(on_error(job, exc) or ()) if on_error is not None else []
            queue.followups.extend(more)
            progress.advance(task, max(0, job.weight - sum(j.weight for j in more)))

    def _show(self, progress: Progress, task: TaskID, stats: RunStats, *, started: float, last_line: float,
              total_items: int | None, in_flight: int) -> float:
        """Update the bar (or print a progress line every NOTE_SECONDS); return when the last line was printed."""
        now = time.monotonic()
        elapsed = max(1e-9, now - started)
        progress.update(
            task, rate=stats.items * 60.0 / elapsed, spend=stats.cost, retries=stats.retries
        )
        if not self.progress and now - last_line >= NOTE_SECONDS:
            last_line = now
            self._line(stats, total_items, elapsed, in_flight)
        return last_line

    def _abandon(self, queue: _Queue, pool: ThreadPoolExecutor, stats: RunStats) -> None:
        """The run ends by an exception: no retry, no queued request goes out after this. A request
        already running is left to its answer, which nobody reads: counted in ``stats.unanswered``."""
        self._stopping.set()
        for future in queue.in_flight:
            if not future.cancel() and not future.done():
                with self._lock:
                    stats.unanswered += 1
        pool.shutdown(wait=False, cancel_futures=True)

    def run(
        self,
        jobs: Iterable[Job],
        *,
        on_result: OnResult,
        on_error: OnError | None = None,
        total_items: int | None = None,
        on_settled: Callable[[], None] | None = None,
        stats: RunStats | None = None,
    ) -> RunStats:
        """Run ``jobs`` (consumed lazily); see the module docstring for the callbacks' contract."""
        stats = stats if stats is not None else RunStats()
        self._stopping.clear()
        queue = _Queue(jobs)
        started = time.monotonic()
        last_line = started
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="beep-llm")
        with self._progress() as progress:
            task = progress.add_task(
                self.description, total=total_items, rate=0.0, spend=0.0, unit=self.unit, retries=0
            )
            try:
                while True:
                    self._send_more(queue, pool, stats)
                    if not queue.in_flight:
                        break
                    done, _ = wait(list(queue.in_flight), timeout=0.25, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._handle(queue, future, stats, progress, task, on_result, on_error)
                    if done and on_settled is not None:
                        on_settled()  # durable before the freed slots send anything new
                    last_line = self._show(progress, task, stats, started=started, last_line=last_line,
                                           total_items=total_items, in_flight=len(queue.in_flight))
            except BaseException:
                self._abandon(queue, pool, stats)
                raise
            finally:
                stats.elapsed_seconds = time.monotonic() - started
                stats.pacer_wait_seconds = self.pacer.waited_seconds
        pool.shutdown(wait=True)
        if stats.stopped_by_budget:
            stats.unsent_items = queue.unsent_weight()
        return stats
