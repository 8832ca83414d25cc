"""beep.llm against the fake OpenAI server: retries, pacing, runner callbacks, follow-up jobs."""

from __future__ import annotations

import time

import openai
import pytest
from fake_openai import ChatAnswer, Fault
from fake_openai.fixtures import fake_openai  # noqa: F401  (fixture)

from beep.llm.calls import chat_call, chat_prompt_tokens
from beep.llm.pacer import Pacer, parse_reset
from beep.llm.retry import RetryPolicy
from beep.llm.runner import Job, RequestRunner, RunAborted

FAST = RetryPolicy(max_tries=6, max_time_seconds=20, base_seconds=0.01, cap_seconds=0.05, seed=1)
MODEL = "gpt-4o-mini"


def chat_job(i: int, *, max_tokens: int = 5) -> Job:
    messages = [{"role": "user", "content": f"question {i}"}]
    return Job(
        key=f"q{i}",
        estimated_tokens=chat_prompt_tokens(messages, MODEL) + max_tokens,
        send=lambda client: chat_call(client, model=MODEL, messages=messages, max_tokens=max_tokens),
        payload=i,
    )


def run(server, jobs, *, pacer=None, timeout=5.0, concurrency=4, on_error=None):
    results: dict[str, str] = {}

    def on_result(job, result):
        results[job.key] = result.value.choices[0].message.content

    runner = RequestRunner(server.client(timeout=timeout), pacer=pacer, retry=FAST, concurrency=concurrency, progress=False)
    stats = runner.run(jobs, on_result=on_result, on_error=on_error)
    return results, stats


def test_answers_arrive_with_usage_counted_like_beep(fake_openai):
    fake_openai.state.chat_responder = lambda body: "answer to " + body["messages"][-1]["content"]
    results, stats = run(fake_openai, [chat_job(i) for i in range(6)])
    assert results == {f"q{i}": f"answer to question {i}"[: len(results[f'q{i}'])] for i in range(6)}
    assert all(r.startswith("answer") for r in results.values())
    seen = fake_openai.state.requests_to("/v1/chat/completions")
    assert stats.requests == 6 and stats.usage.prompt_tokens == sum(r.prompt_tokens for r in seen)
    assert stats.usage.prompt_tokens == 6 * chat_prompt_tokens([{"role": "user", "content": "question 1"}], MODEL)


def test_max_tokens_truncates_and_logprobs_are_served(fake_openai):
    fake_openai.state.chat_responder = lambda body: ChatAnswer(" 3", top_logprobs=[(" 3", -0.1), (" 7", -2.5), (" nil", -3.0)])
    client = fake_openai.client()
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=1, logprobs=True, top_logprobs=3
    )
    top = out.choices[0].logprobs.content[0].top_logprobs
    assert [(t.token, t.logprob) for t in top] == [(" 3", -0.1), (" 7", -2.5), (" nil", -3.0)]
    fake_openai.state.chat_responder = lambda body: "one two three four"
    out = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=2)
    assert out.choices[0].finish_reason == "length" and out.usage.completion_tokens == 2


def test_retry_after_is_honoured(fake_openai):
    fake_openai.state.inject(Fault(status=429, headers={"retry-after": "0.4"}), path="/v1/chat/completions")
    results, stats = run(fake_openai, [chat_job(0)])
    first, second = fake_openai.state.requests_to("/v1/chat/completions", status=None)
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.4
    assert results and stats.retries == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=500),
        Fault(status=503),
        Fault(kind="slow", delay_seconds=1.0),
        Fault(kind="drop"),
        Fault(kind="truncated"),
    ],
    ids=["500", "503", "timeout", "dropped-connection", "truncated-body"],
)
def test_transient_faults_are_retried(fake_openai, fault):
    fake_openai.state.inject(fault, times=2, path="/v1/chat/completions")
    results, stats = run(fake_openai, [chat_job(i) for i in range(3)], timeout=0.3)
    assert sorted(results) == ["q0", "q1", "q2"]
    assert stats.retries == 2 and stats.failed == 0


def test_bad_request_is_not_retried_and_reaches_on_error(fake_openai):
    fake_openai.state.inject(Fault(status=400, body={"error": {"message": "too long", "code": "context_length_exceeded"}}))
    errors = []
    results, stats = run(fake_openai, [chat_job(0)], on_error=lambda job, exc: errors.append((job.key, exc)))
    assert not results and stats.failed == 1 and stats.retries == 0
    assert errors[0][0] == "q0" and isinstance(errors[0][1], openai.BadRequestError)


def test_auth_error_aborts_the_run(fake_openai):
    fake_openai.state.inject(Fault(status=401), times=10)
    with pytest.raises(RunAborted, match="check the key"):
        run(fake_openai, [chat_job(i) for i in range(5)])


def test_pacing_keeps_under_the_rpm_at_the_server(fake_openai):
    window, rpm = 1.0, 5
    jobs = [chat_job(i) for i in range(12)]
    results, stats = run(fake_openai, jobs, pacer=Pacer(rpm=rpm, window_seconds=window, safety_seconds=0.02), concurrency=6)
    assert len(results) == 12
    times = sorted(r.at for r in fake_openai.state.requests_to("/v1/chat/completions", status=None))
    for i, t in enumerate(times):
        in_window = [u for u in times[i:] if u - t < window]
        assert len(in_window) <= rpm
    assert times[-1] - times[0] >= 2 * window * 0.95  # 12 requests at 5 per window need > 2 windows


def test_server_rate_limit_headers_drive_the_pacer(fake_openai):
    fake_openai.state.set_rate_limit(rpm=4, tpm=10_000, window_seconds=0.6)
    pacer = Pacer(window_seconds=0.6)  # no limits of our own: learnt from x-ratelimit-limit-*
    results, stats = run(fake_openai, [chat_job(i) for i in range(10)], pacer=pacer, concurrency=1)
    assert len(results) == 10
    assert pacer.rpm == 4 and pacer.tpm == 10_000
    rejected = fake_openai.state.requests_to("/v1/chat/completions", status=429)
    assert len(rejected) <= 1  # at most the first burst before the limit was learnt


def test_followups_run_and_count(fake_openai):
    calls = []

    def on_result(job, result):
        calls.append(job.key)
        if job.key == "q0":
            return [chat_job(100)]
        return None

    runner = RequestRunner(fake_openai.client(), retry=FAST, progress=False)
    stats = runner.run([chat_job(0), chat_job(1)], on_result=on_result)
    assert sorted(calls) == ["q0", "q1", "q100"] and stats.requests == 3


def test_parse_reset_formats():
    assert parse_reset("1s") == 1.0 and parse_reset("6m0s") == 360.0 and parse_reset("20ms") == 0.02
    assert parse_reset("0.5") == 0.5 and parse_reset("1h2m3.5s") == 3723.5 and parse_reset("soon") is None


def test_pacer_tokens_window():
    now = [0.0]
    pacer = Pacer(tpm=100, window_seconds=10, safety_seconds=0, clock=lambda: now[0])
    pacer.acquire(60)
    pacer.acquire(40)
    assert pacer.snapshot()["tokens_in_window"] == 100
    now[0] = 10.0
    start = time.monotonic()
    pacer.acquire(100)  # the window expired: no wait
    assert time.monotonic() - start < 0.5


def test_pacer_settle_counts_a_slow_call_from_its_return():
    now = [0.0]
    pacer = Pacer(rpm=1, window_seconds=10, safety_seconds=0, clock=lambda: now[0])
    slow = pacer.acquire(5)
    now[0] = 8.0
    pacer.settle(slow)  # returned at t=8: the server may have counted it as late as that
    now[0] = 12.0
    assert pacer.snapshot()["requests_in_window"] == 1  # not expired at 10 any more
    now[0] = 18.0
    assert pacer.snapshot() == {"rpm": 1, "tpm": None, "requests_in_window": 0, "tokens_in_window": 0}
    late = pacer.acquire(3)
    now[0] = 40.0
    pacer.settle(late)  # expired from the window before it returned: counted again from now
    assert pacer.snapshot()["tokens_in_window"] == 3


def test_without_a_progress_bar_retries_are_said(fake_openai):
    from rich.console import Console

    fake_openai.state.inject(Fault(status=503), times=3, path="/v1/chat/completions")
    console = Console(record=True, width=200)
    runner = RequestRunner(fake_openai.client(timeout=5.0), retry=FAST, concurrency=1, progress=False, console=console)
    stats = runner.run([chat_job(0)], on_result=lambda job, result: None)
    assert stats.retries == 3 and stats.failed == 0
    said = console.export_text()
    assert said.count("retrying in") == 1 and "InternalServerError" in said  # at most one note every 10 s
