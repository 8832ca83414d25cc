"""A refine killed with SIGKILL mid-run resumes without paying twice or losing anything; Batch API runs resume."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from fake_openai import Fault
from fake_openai.fixtures import fake_openai  # noqa: F401  (fixture)
from refine_testkit import example_ids, make_examples_db, responder, verdicts

from beep.db import open_duckdb
from beep.refine import batch_api
from beep.refine.api import refine
from beep.refine.fewshot import choose_fewshot
from beep.refine.openai_provider import plan
from beep.refine.prompting import system_prompt
from beep.refine.store import VerdictKey, pending_examples

CHAT = "/v1/chat/completions"
# `beep refine`'s own command module: the same Typer command as `beep refine`, without importing
# every other step's module, so the two process starts this test needs stay quick.
REFINE_CLI = [sys.executable, "-m", "beep.commands.refine_cmd", "refine"]


def stored_ids(db: Path) -> set[str]:
    for _ in range(200):
        try:
            con = open_duckdb(str(db), read_only=True)
        except duckdb.IOException:
            time.sleep(0.02)
            continue
        try:
            if not con.execute("select count(*) from information_schema.tables where table_name = 'refine_verdicts'").fetchone()[0]:
                return set()
            return {r[0] for r in con.execute("select example_id from refine_verdicts").fetchall()}
        finally:
            con.close()
    raise AssertionError("could not read the DuckDB file")


CONCURRENCY, BATCH = 4, 2


def cli(db: Path, server, *extra: str) -> subprocess.Popen:
    cmd = [*REFINE_CLI, "--provider", "openai", "--db", str(db), "--batch-size", str(BATCH),
           "--concurrency", str(CONCURRENCY), "--no-progress", "--no-refresh-models", "--timeout", "5",
           "--retry-base", "0.01", "--retry-cap", "0.05", *extra]
    return subprocess.Popen(cmd, env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def runs(db: Path) -> list[tuple]:
    con = open_duckdb(str(db), read_only=True)
    try:
        return con.execute("select run_id, status, model, requests, prompt_tokens, completion_tokens, cached_tokens, cost, "
                           "n_decided from refine_runs order by started_at").fetchall()
    finally:
        con.close()


def stored_usage(db: Path, run_id: str) -> tuple[int, int, int, int]:
    con = open_duckdb(str(db), read_only=True)
    try:
        return con.execute("select count(*), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens) "
                           "from refine_verdicts where run_id = ?", [run_id]).fetchone()
    finally:
        con.close()


def price_of(model: str, prompt: int, completion: int, cached: int) -> float:
    from beep.config import PROJECT_DIR
    from beep.llm.calls import Usage
    from beep.llm.pricing import default_price_table

    return default_price_table(PROJECT_DIR).get(model).cost(Usage(prompt, completion, cached))


def start_then_wait_for(paths, server, n_stored: int) -> subprocess.Popen:
    proc = cli(paths.duckdb, server)
    deadline = time.monotonic() + 60
    while len(stored_ids(paths.duckdb)) < n_stored:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no verdicts stored in time"
        time.sleep(0.1)
    return proc


def test_sigkill_mid_run_pays_twice_at_most_for_the_requests_in_flight(fake_openai, tmp_path):
    """Item 1 and 3 of issue 10: answers arrive fast and steadily, the process is killed with SIGKILL.

    What the kill costs is measured on the server: the examples of the first run that the resumed
    run asks again must be those of requests in flight at the kill (at most --concurrency requests),
    however many answers arrived in the instant before it. The killed run, left ``running`` with $0,
    is marked ``interrupted`` with the cost of its stored answers by the next start."""
    n = 80
    paths = make_examples_db(tmp_path / "beep.duckdb", n)
    state = fake_openai.state
    state.chat_responder = responder
    state.latency_seconds = 0.01
    proc = start_then_wait_for(paths, fake_openai, 30)
    killed_at = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.1)  # let the server finish the handlers of the requests that were in flight
    had = stored_ids(paths.duckdb)
    assert 30 <= len(had) < n, "the kill should land mid-run"
    first_run = [r for r in state.requests_to(CHAT)]
    answered_before_kill = [r for r in first_run if r.answered_at is not None and r.answered_at <= killed_at]
    sent_first = {eid for r in first_run for eid in example_ids(r.body)}
    lost = [r for r in first_run if set(example_ids(r.body)) - had]  # sent, never stored: in flight at the kill
    assert len(lost) <= CONCURRENCY, f"{len(lost)} requests lost by the kill, more than the {CONCURRENCY} in flight"
    [(killed_run, status, model, *_)] = runs(paths.duckdb)
    assert status == "running"  # what a SIGKILL leaves behind

    state.latency_seconds = 0.0
    n_before = len(state.requests)
    proc = cli(paths.duckdb, fake_openai)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    second_run = [r for r in state.requests[n_before:] if r.path == CHAT]
    resent = {eid for r in second_run for eid in example_ids(r.body)}
    asked_twice = resent & sent_first
    paid_twice = asked_twice & {eid for r in answered_before_kill for eid in example_ids(r.body)}
    assert not (resent & had), "an example with a stored verdict was sent again"
    assert len(asked_twice) <= CONCURRENCY * BATCH, (len(asked_twice), len(lost))
    assert len(paid_twice) <= CONCURRENCY * BATCH
    print(f"\nkill -9 after {len(first_run)} requests ({len(answered_before_kill)} answered by the server before the kill, "
          f"{len(had)} examples stored): {len(lost)} requests in flight lost, {len(asked_twice)} examples asked again, "
          f"{len(paid_twice)} of them paid twice (bound: {CONCURRENCY} requests = {CONCURRENCY * BATCH} examples)")
    got = verdicts(paths.duckdb)  # also asserts one verdict per example
    assert set(got) == {f"ex{i:05d}" for i in range(n)}
    assert f"{n} examples" in out

    # the killed run: interrupted, with the tokens and cost of the answers it stored
    assert f"refine run {killed_run}" in err and "marked interrupted" in err
    rows = {r[0]: r for r in runs(paths.duckdb)}
    _, status, model, requests, prompt, completion, cached, cost, n_decided = rows[killed_run]
    n_stored, s_prompt, s_completion, s_cached = stored_usage(paths.duckdb, killed_run)
    assert status == "interrupted" and n_decided == n_stored == len(had)
    assert (prompt, completion, cached) == (s_prompt, s_completion, s_cached) and requests > 0
    assert cost > 0 and cost == pytest.approx(price_of(model, prompt, completion, cached))
    assert [r[1] for r in rows.values()].count("finished") == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_a_closed_terminal_records_the_run_interrupted_with_its_cost(fake_openai, tmp_path, sig):
    paths = make_examples_db(tmp_path / "beep.duckdb", 40)
    fake_openai.state.chat_responder = responder
    fake_openai.state.latency_seconds = 0.2  # the signal lands mid-run, also on a busy machine
    proc = start_then_wait_for(paths, fake_openai, 10)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err
    assert "interrupted" in err
    [(run_id, status, model, requests, prompt, completion, cached, cost, n_decided)] = runs(paths.duckdb)
    n_stored, s_prompt, s_completion, s_cached = stored_usage(paths.duckdb, run_id)
    assert status == "interrupted" and n_decided == n_stored >= 10 and requests > 0
    # the run records what the runner counted: every answer it received (stored or not yet), so at
    # least what its stored verdicts used, and at most what the server answered
    answered = [r for r in fake_openai.state.requests_to(CHAT) if r.answered_at is not None]
    print(f"\nrecorded {requests} requests / {prompt} prompt tokens; stored {s_prompt}; server answered "
          f"{len(answered)} / {sum(r.prompt_tokens for r in answered)}")
    assert s_prompt <= prompt <= sum(r.prompt_tokens for r in answered)
    assert s_completion <= completion and s_cached <= cached and requests <= len(answered)
    assert cost > 0 and cost == pytest.approx(price_of(model, prompt, completion, cached))


def _setup_batch(fake_openai, tmp_path, n=12):
    paths = make_examples_db(tmp_path / "beep.duckdb", n)
    fake_openai.state.chat_responder = responder
    fake_openai.state.batch_polls_to_complete = 2
    return paths


def run_batch(paths, **kw):
    return refine(paths, provider="openai", model="gpt-4o-mini", batch_size=5, progress=False, refresh_dbt=False,
                  batch_api_mode=True, poll_seconds=0.01, retry_base_seconds=0.01, retry_cap_seconds=0.05, **kw)


def test_batch_api_end_to_end(fake_openai, tmp_path):
    paths = _setup_batch(fake_openai, tmp_path)
    summary = run_batch(paths)
    assert len(verdicts(paths.duckdb)) == 12 and summary.n_undecided == 0
    assert len(fake_openai.state.batches) == 1 and fake_openai.state.requests_to(CHAT) == []
    line = [f for f in fake_openai.state.files.values() if f.purpose == "batch"][0].content.decode().splitlines()[0]
    assert '"url": "/v1/chat/completions"' in line
    assert summary.cost > 0 and summary.requests == 3


def test_batch_api_no_wait_then_resume_collects_without_resubmitting(fake_openai, tmp_path):
    paths = _setup_batch(fake_openai, tmp_path)
    first = run_batch(paths, wait=False)
    assert first.n_in_open_batches == 12 and verdicts(paths.duckdb) == {}
    key = VerdictKey(first.fewshot_hash, "openai", "gpt-4o-mini")
    assert pending_examples(paths.duckdb, key) == []  # in an open batch: not pending, not sent again
    second = run_batch(paths)
    assert len(verdicts(paths.duckdb)) == 12 and second.n_in_open_batches == 0
    assert len(fake_openai.state.batches) == 1  # collected, not resubmitted


def test_batch_api_crash_between_create_and_record_finds_the_batch(fake_openai, tmp_path):
    paths = _setup_batch(fake_openai, tmp_path)
    fewshot = choose_fewshot(paths.duckdb, paths.project_dir).fewshot  # the set run_batch will use
    key = VerdictKey(fewshot.hash, "openai", "gpt-4o-mini")
    system = system_prompt(fewshot)
    questions = plan(pending_examples(paths.duckdb, key), model=key.model, batch_size=5, max_example_tokens=4000).questions
    client = fake_openai.client()
    from beep.llm.retry import RetryPolicy

    [submission] = batch_api.submit(paths.duckdb, key, client, system, questions, retry=RetryPolicy())
    con = open_duckdb(str(paths.duckdb))
    con.execute("update refine_batches set batch_id = null, status = 'preparing' where submission_id = ?", [submission])
    con.close()  # as if killed right after batches.create returned
    summary = run_batch(paths)
    assert len(verdicts(paths.duckdb)) == 12 and summary.n_undecided == 0
    assert len(fake_openai.state.batches) == 1


def test_batch_api_error_lines_and_missing_answers_go_to_the_next_submission(fake_openai, tmp_path):
    paths = _setup_batch(fake_openai, tmp_path)
    calls = Counter()

    def partial(body):
        ids = example_ids(body)
        calls[tuple(ids)] += 1
        if "ex00000" in ids and calls[tuple(ids)] == 1:
            return '{"1": "weak", "2": "str'  # truncated: ids 2.. missing
        return responder(body)

    fake_openai.state.chat_responder = partial
    summary = run_batch(paths)
    assert len(verdicts(paths.duckdb)) == 12 and summary.n_undecided == 0
    assert len(fake_openai.state.batches) == 2  # the missing ones were resubmitted once


@pytest.mark.parametrize("fault", [Fault(kind="drop", after=True), Fault(status=500, after=True),
                                   Fault(kind="slow", delay_seconds=0.8, after=True)], ids=["drop", "500", "timeout"])
def test_batch_upload_and_create_failing_after_the_work_make_one_of_each(fake_openai, tmp_path, fault):
    """The provider stored the file / created the batch, then the answer was lost: no second one."""
    paths = _setup_batch(fake_openai, tmp_path)
    state = fake_openai.state
    state.inject(fault, path="/v1/files", method="POST")
    state.inject(fault, path="/v1/batches", method="POST")
    summary = run_batch(paths, timeout_seconds=0.5)
    assert len(verdicts(paths.duckdb)) == 12 and summary.n_undecided == 0
    assert len([f for f in state.files.values() if f.purpose == "batch"]) == 1
    [batch] = state.batches.values()
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        assert con.execute("select batch_id, input_file_id, status from refine_batches").fetchall() == [
            (batch["id"], batch["input_file_id"], "collected")]
    finally:
        con.close()
    posts = [r for r in state.requests if r.method == "POST" and r.path in ("/v1/files", "/v1/batches")]
    assert len(posts) == 2  # neither create was sent again
