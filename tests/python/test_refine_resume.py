"""A refine killed with SIGKILL mid-run resumes without paying twice or losing anything; Batch API runs resume."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
from fake_openai.fixtures import fake_openai  # noqa: F401  (fixture)
from refine_testkit import example_ids, make_examples_db, responder, verdicts

from beep.refine import batch_api
from beep.refine.api import refine
from beep.refine.fewshot import default_fewshot_path, load_fewshot
from beep.refine.openai_provider import plan
from beep.refine.prompting import system_prompt
from beep.refine.store import VerdictKey, pending_examples

CHAT = "/v1/chat/completions"
# `beep refine`'s own command module: the same Typer command as `beep refine`, without importing
# every other step's module, so the two process starts this test needs stay quick.
REFINE_CLI = [sys.executable, "-m", "beep.commands.refine_cmd", "refine"]
N = 40


def stored_ids(db: Path) -> set[str]:
    for _ in range(200):
        try:
            con = duckdb.connect(str(db), read_only=True)
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


def cli(db: Path, server, *extra: str) -> subprocess.Popen:
    cmd = [*REFINE_CLI, "--provider", "openai", "--db", str(db), "--batch-size", "2", "--concurrency", "2",
           "--no-progress", "--no-refresh-models", "--timeout", "5", "--retry-base", "0.01", "--retry-cap", "0.05", *extra]
    return subprocess.Popen(cmd, env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_run_then_restart_pays_for_nothing_twice(fake_openai, tmp_path):
    paths = make_examples_db(tmp_path / "beep.duckdb", N)
    fake_openai.state.chat_responder = responder
    fake_openai.state.latency_seconds = 0.08
    proc = cli(paths.duckdb, fake_openai)
    deadline = time.monotonic() + 60
    while len(stored_ids(paths.duckdb)) < 8:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no verdicts stored in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    had = stored_ids(paths.duckdb)
    assert 8 <= len(had) < N, "the kill should land mid-run"
    n_before = len(fake_openai.state.requests)

    fake_openai.state.latency_seconds = 0.0
    proc = cli(paths.duckdb, fake_openai)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    second_run = fake_openai.state.requests[n_before:]
    resent = {eid for r in second_run if r.path == CHAT for eid in example_ids(r.body)}
    assert not (resent & had), "an example with a stored verdict was sent again"
    got = verdicts(paths.duckdb)  # also asserts one verdict per example
    assert set(got) == {f"ex{i:05d}" for i in range(N)}
    assert "40 examples" in out


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
    fewshot = load_fewshot(default_fewshot_path(paths.project_dir))
    key = VerdictKey(fewshot.hash, "openai", "gpt-4o-mini")
    system = system_prompt(fewshot)
    questions = plan(pending_examples(paths.duckdb, key), model=key.model, batch_size=5, max_example_tokens=4000).questions
    client = fake_openai.client()
    from beep.llm.retry import RetryPolicy

    [submission] = batch_api.submit(paths.duckdb, key, client, system, questions, retry=RetryPolicy())
    con = duckdb.connect(str(paths.duckdb))
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
