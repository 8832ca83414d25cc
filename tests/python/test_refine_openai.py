"""`beep refine --provider openai` against the fake OpenAI server: real SDK, real HTTP, 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from fake_openai import ChatAnswer, Fault
from fake_openai.fixtures import fake_openai  # noqa: F401  (fixture)
from refine_testkit import example_ids, judge, make_examples_db, responder, verdicts

from beep.refine.api import CostLimitExceeded, refine

CHAT = "/v1/chat/completions"


def run(paths, **kw):
    options = dict(
        provider="openai", model="gpt-4o-mini", batch_size=5, concurrency=4, progress=False, refresh_dbt=False,
        timeout_seconds=2.0, retry_base_seconds=0.01, retry_cap_seconds=0.05,
    )
    options.update(kw)
    return refine(paths, **options)


@pytest.fixture
def paths(tmp_path):
    return make_examples_db(tmp_path / "beep.duckdb", 23)


def expected(n: int = 23) -> dict[str, str]:
    from refine_testkit import example_text

    return {f"ex{i:05d}": judge(example_text(i)) for i in range(n)}


def test_every_example_gets_exactly_one_verdict_and_rerun_sends_nothing(fake_openai, paths):
    fake_openai.state.chat_responder = responder
    summary = run(paths)
    got = verdicts(paths.duckdb)
    assert {k: v for k, (v, _) in got.items()} == expected()
    assert summary.n_strong + summary.n_weak == 23 and summary.n_undecided == 0 and summary.requests == 5
    asked = [eid for r in fake_openai.state.requests_to(CHAT) for eid in example_ids(r.body)]
    assert sorted(asked) == sorted(expected())  # each example sent once
    again = run(paths)
    assert again.n_already_decided == 23 and again.n_decided_now == 0 and again.requests == 0
    assert len(fake_openai.state.requests_to(CHAT)) == 5


def test_prefix_is_byte_identical_and_answers_are_json(fake_openai, paths):
    fake_openai.state.chat_responder = responder
    run(paths)
    bodies = [r.body for r in fake_openai.state.requests_to(CHAT)]
    assert len({b["messages"][0]["content"] for b in bodies}) == 1
    assert all(b["response_format"] == {"type": "json_object"} and b["temperature"] == 0 for b in bodies)


def test_dry_run_estimate_matches_what_the_run_sends(fake_openai, paths):
    fake_openai.state.chat_responder = responder
    dry = run(paths, dry_run=True)
    assert fake_openai.state.requests == [] and verdicts(paths.duckdb) == {}
    run(paths)
    sent = fake_openai.state.requests_to(CHAT)
    assert dry.estimate.requests == len(sent)
    assert dry.estimate.prompt_tokens == sum(r.prompt_tokens for r in sent)  # the server counts with beep.tokens
    assert dry.estimate.max_output_tokens == sum(r.body["max_tokens"] for r in sent)
    assert dry.estimate.cost_upper > 0


def test_max_cost_refuses_before_sending(fake_openai, paths):
    fake_openai.state.chat_responder = responder
    with pytest.raises(CostLimitExceeded, match="--max-cost"):
        run(paths, max_cost=0.000001)
    assert fake_openai.state.requests == [] and verdicts(paths.duckdb) == {}


def test_malformed_and_partial_answers_reask_only_the_missing_ids(fake_openai, paths):
    from collections import Counter

    seen: set[str] = set()
    missing: set[str] = set()

    def flaky(body):
        ids = example_ids(body)
        full = json.loads(responder(body))
        first_time = not (set(ids) & seen)
        seen.update(ids)
        if first_time and "ex00000" in ids:  # truncated JSON: two complete pairs, then garbage
            missing.update(ids[2:])
            pairs = list(full.items())[:2]
            return "{" + ", ".join(f'"{k}": "{v}"' for k, v in pairs) + ', "3": "str'
        if first_time and "ex00005" in ids:  # valid JSON: one id missing, one invalid word, one unknown id
            missing.update(ids[:2])
            full.pop("1")
            full["2"] = "maybe"
            full["99"] = "strong"
            return json.dumps(full)
        if first_time and "ex00010" in ids:  # prose
            missing.update(ids)
            return "I think they are all strong."
        return json.dumps(full)

    fake_openai.state.chat_responder = flaky
    run(paths)
    asked = Counter(eid for r in fake_openai.state.requests_to(CHAT) for eid in example_ids(r.body))
    assert len(missing) == 3 + 2 + 5
    assert {eid for eid, n in asked.items() if n > 1} == missing
    assert all(asked[eid] == 2 for eid in missing) and len(asked) == 23
    assert {k: v for k, (v, _) in verdicts(paths.duckdb).items()} == expected()


def test_answers_that_stay_malformed_leave_examples_undecided_for_a_rerun(fake_openai, paths):
    fake_openai.state.chat_responder = lambda body: "no idea" if "ex00000" in example_ids(body) else responder(body)
    summary = run(paths, max_reasks=2)
    assert summary.n_failed == 1 and summary.n_undecided == 1 and "ex00000" in summary.failures[0]
    assert "ex00000" not in verdicts(paths.duckdb)
    fake_openai.state.chat_responder = responder
    again = run(paths)
    assert again.n_decided_now == 1 and again.requests == 1 and len(verdicts(paths.duckdb)) == 23


def test_transient_faults_lose_nothing(fake_openai, paths):
    fake_openai.state.chat_responder = responder
    state = fake_openai.state
    state.inject(Fault(status=429, headers={"retry-after": "0.05"}), path=CHAT)
    state.inject(Fault(status=503), path=CHAT)
    state.inject(Fault(kind="slow", delay_seconds=2.5), path=CHAT)
    state.inject(Fault(kind="drop"), path=CHAT)
    state.inject(Fault(kind="truncated"), path=CHAT)
    summary = run(paths, timeout_seconds=0.5)
    assert {k: v for k, (v, _) in verdicts(paths.duckdb).items()} == expected()
    assert summary.n_failed == 0
    ok = [eid for r in state.requests_to(CHAT) for eid in example_ids(r.body)]
    assert len(ok) >= 23
    # the timeout and the dropped answer: the server may have done (and billed) both; the summary says so
    assert summary.n_unanswered == 2
    assert "2 requests got no answer" in summary.line() and "may have billed them" in summary.line()


def test_refusals_are_split_and_recorded_with_a_reason(fake_openai, paths):
    def refusing(body):
        ids = example_ids(body)
        if "ex00004" in ids:
            return ChatAnswer(None, refusal="I can't help with that.")
        return responder(body)

    fake_openai.state.chat_responder = refusing
    summary = run(paths)
    got = verdicts(paths.duckdb)
    assert got["ex00004"] == ("refused", "refusal: I can't help with that.")
    assert all(v != "refused" for k, (v, _) in got.items() if k != "ex00004") and len(got) == 23
    assert summary.n_refused == 1
    singles = [example_ids(r.body) for r in fake_openai.state.requests_to(CHAT) if len(example_ids(r.body)) == 1]
    assert len(singles) == 5  # only the refused request's examples were asked one by one


def test_provider_400_on_one_example_is_recorded_as_refused(fake_openai, paths):
    fake_openai.state.chat_responder = responder
    # the first request is rejected as a whole; its examples are then asked alone and one is rejected again
    fake_openai.state.inject(
        Fault(status=400, body={"error": {"message": "flagged by the content filter", "type": "invalid_request_error", "code": "content_policy_violation"}}),
        path=CHAT,
    )
    summary = run(paths, concurrency=1)
    got = verdicts(paths.duckdb)
    refused = {k: r for k, (v, r) in got.items() if v == "refused"}
    assert len(got) == 23 and summary.n_refused == 0 and refused == {}  # the whole-request 400 split into singles that passed
    fake_openai.state.inject(
        Fault(status=400, body={"error": {"message": "flagged", "type": "invalid_request_error", "code": "content_policy_violation"}}),
        path=CHAT,
    )
    fresh = run(paths, model="gpt-4o", batch_size=1, concurrency=1)
    refused = {k: r for k, (v, r) in verdicts_for(paths.duckdb, "gpt-4o").items() if v == "refused"}
    assert list(refused.values()) == ["content_policy_violation: flagged"] and fresh.n_refused == 1


def verdicts_for(db, model):
    from beep.db import open_duckdb

    con = open_duckdb(str(db), read_only=True)
    try:
        rows = con.execute("select example_id, verdict, reason from refine_verdicts where model = ?", [model]).fetchall()
    finally:
        con.close()
    return {eid: (v, r) for eid, v, r in rows}


def test_too_long_examples_are_refused_without_sending(fake_openai, paths):
    fake_openai.state.chat_responder = responder
    summary = run(paths, max_example_tokens=12)
    got = verdicts(paths.duckdb)
    too_long = {k for k, (v, r) in got.items() if v == "refused" and r.startswith("too_long")}
    sent = {eid for r in fake_openai.state.requests_to(CHAT) for eid in example_ids(r.body)}
    assert too_long and not (too_long & sent) and len(got) == 23 and summary.n_refused == len(too_long)


def test_missing_key_is_a_clear_error(paths, monkeypatch):
    from beep.llm.client import MissingCredentials

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY"):
        run(paths)


def test_auth_failure_aborts_and_records_nothing(fake_openai, paths):
    from beep.llm.runner import RunAborted

    fake_openai.state.inject(Fault(status=401, body={"error": {"message": "bad key", "type": "invalid_request_error"}}), times=50)
    with pytest.raises(RunAborted):
        run(paths)
    assert verdicts(paths.duckdb) == {}


def test_summarize_fewshot_is_cached(fake_openai, paths, tmp_path):
    import csv

    long_text = " ".join(["the ingress controller keeps dropping websocket connections after the upgrade"] * 12)
    fewshot = tmp_path / "fewshot.csv"
    with fewshot.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "verdict", "note", "example_id"])
        w.writerows([[long_text, "strong", "", ""], ["db is down, who can look?", "strong", "", ""], ["thanks!", "weak", "", ""], ["lol", "weak", "", ""]])

    def answer(body):
        if body["messages"][0]["content"].startswith("Summarise"):
            return "ingress drops websockets after upgrade"
        return responder(body)

    fake_openai.state.chat_responder = answer
    first = run(paths, fewshot_path=fewshot, summarize=True, summarize_over_tokens=50)
    summaries = [r for r in fake_openai.state.requests_to(CHAT) if r.body["messages"][0]["content"].startswith("Summarise")]
    assert len(summaries) == 1
    prefix = [r for r in fake_openai.state.requests_to(CHAT) if r not in summaries][0].body["messages"][0]["content"]
    assert "ingress drops websockets after upgrade" in prefix and long_text not in prefix
    second = run(paths, fewshot_path=fewshot, summarize=True, summarize_over_tokens=50)
    summaries = [r for r in fake_openai.state.requests_to(CHAT) if r.body["messages"][0]["content"].startswith("Summarise")]
    assert len(summaries) == 1 and second.fewshot_hash == first.fewshot_hash and second.n_decided_now == 0
    assert first.fewshot_hash != run(paths, fewshot_path=fewshot, dry_run=True).fewshot_hash


def test_a_400_that_is_not_about_the_input_leaves_examples_undecided(fake_openai, paths):
    fake_openai.state.chat_responder = responder
    fake_openai.state.inject(
        Fault(status=400, body={"error": {"message": "response_format is not supported", "type": "invalid_request_error", "code": "unsupported_parameter"}}),
        times=100, path=CHAT,
    )
    summary = run(paths, batch_size=23)
    assert summary.n_refused == 0 and summary.n_failed == 23 and "not supported" in summary.failures[0]
    assert verdicts(paths.duckdb) == {}


def test_batch_api_no_wait_run_is_not_the_latest_finished_run(fake_openai, paths):
    from beep.db import open_duckdb

    fake_openai.state.chat_responder = responder
    run(paths, batch_api_mode=True, wait=False, poll_seconds=0.01)
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        assert con.execute("select status from refine_runs").fetchall() == [("submitted",)]
    finally:
        con.close()


def test_refine_keeps_under_rpm_and_tpm_at_the_server(fake_openai, paths):
    fake_openai.state.chat_responder = responder
    window, rpm = 0.5, 3
    summary = run(paths, batch_size=2, rpm=rpm, tpm=100_000, window_seconds=window, concurrency=4)
    assert summary.n_undecided == 0
    times = sorted(r.at for r in fake_openai.state.requests_to(CHAT, status=None))
    assert len(times) == 12
    for i, t in enumerate(times):
        assert len([u for u in times[i:] if u - t < window]) <= rpm
    assert times[-1] - times[0] >= 3 * window  # 12 requests at 3 per window need more than 3 windows


def test_logprobs_give_each_verdict_a_confidence(fake_openai, paths):
    import math

    from beep.refine.prompting import confidences, question

    fake_openai.state.chat_responder = responder
    run(paths, logprobs=True)
    bodies = [r.body for r in fake_openai.state.requests_to(CHAT)]
    assert all(b["logprobs"] is True for b in bodies)
    con = __import__("duckdb").connect(str(paths.duckdb), read_only=True)
    try:
        assert con.execute("select count(*) from refine_verdicts where confidence = 1.0").fetchone()[0] == 23
    finally:
        con.close()
    q = question([("a", "x"), ("b", "y")])
    tokens = [('{"', 0.0), ("1", 0.0), ('":', 0.0), (' "', 0.0), ("strong", math.log(0.9)), ('","', 0.0), ("2", 0.0), ('":"', 0.0), ("weak", math.log(0.6)), ('"}', 0.0)]
    got = confidences('{"1": "strong", "2": "weak"}', tokens, q)
    assert got == pytest.approx({"a": 0.9, "b": 0.6})
    assert confidences('{"1": "strong", "2": "weak"}', tokens[:5], q) == {}  # tokens don't line up: no claim


def _run_status(db) -> list[tuple]:
    from beep.db import open_duckdb

    with open_duckdb(str(db), read_only=True) as con:
        return con.execute("select status, n_decided from refine_runs order by started_at").fetchall()


def test_max_cost_is_a_budget_the_run_stops_at_not_only_a_start_check(fake_openai, paths):
    fake_openai.state.chat_responder = lambda body: "ok"  # never a valid answer: every example is re-asked
    estimate = run(paths, dry_run=True).estimate
    budget = estimate.cost_upper * 1.5  # the start check passes; the re-asks would cost about 4x
    summary = run(paths, max_cost=budget, max_reasks=3)
    assert summary.cost <= budget and summary.n_unsent > 0
    assert "--max-cost" in summary.failures[0] and "not sent" in summary.line()
    assert _run_status(paths.duckdb) == [("incomplete", 0)]


def test_without_max_cost_a_run_of_unreadable_answers_stops_at_three_times_its_estimate(fake_openai, paths):
    """Every answer unreadable, each example asked again alone up to --max-reasks times: without a cap the
    sample's run spent 15x its estimate (a reviewer's count at the fake); the default cap stops it."""
    import re

    fake_openai.state.chat_responder = lambda body: "I think they are all strong!"
    estimate = run(paths, dry_run=True).estimate
    uncapped = run(paths, max_reasks=6, max_cost=1000.0).cost  # what it spends with a budget it never meets
    summary = run(paths, max_reasks=6)
    cap = float(re.search(r"the estimate \(\$([0-9.]+);", summary.failures[0]).group(1))
    assert 3 * estimate.cost_upper <= cap < uncapped and 0 < summary.cost <= cap and summary.n_unsent > 0
    assert "no --max-cost was given" in summary.failures[0] and "not sent" in summary.line()
    assert [status for status, _ in _run_status(paths.duckdb)] == ["incomplete", "incomplete"]
    fake_openai.state.chat_responder = responder  # a model that answers: the rerun decides the rest
    again = run(paths)
    assert len(verdicts(paths.duckdb)) == 23 and not again.failures


def test_a_run_that_left_examples_undecided_is_incomplete_and_not_used(fake_openai, paths):
    from beep.db import open_duckdb

    fake_openai.state.chat_responder = responder
    run(paths)  # a complete run
    fake_openai.state.chat_responder = lambda body: "ok"
    failed = run(paths, model="gpt-4.1-mini", max_reasks=1)  # another model: nothing decided
    assert failed.n_failed == 23 and failed.n_decided_now == 0
    assert [s for s, _ in _run_status(paths.duckdb)] == ["finished", "incomplete"]
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        chosen = con.execute(
            "select model from refine_runs where status = 'finished' order by finished_at desc limit 1").fetchone()
    assert chosen == ("gpt-4o-mini",)  # what refined_training_examples picks: the last complete run


def test_an_interrupted_run_records_what_its_stored_verdicts_used(fake_openai, paths, monkeypatch):
    from beep.db import open_duckdb

    from beep.refine import openai_provider

    fake_openai.state.chat_responder = responder
    original = openai_provider.RefineRequests.on_result
    calls = {"n": 0}

    def on_result(self, job, result):
        out = original(self, job, result)
        calls["n"] += 1
        if calls["n"] == 2:
            self.writer.flush()
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(openai_provider.RefineRequests, "on_result", on_result)
    with pytest.raises(KeyboardInterrupt):
        run(paths, concurrency=1)
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        status, requests, prompt_tokens, cost = con.execute(
            "select status, requests, prompt_tokens, cost from refine_runs").fetchone()
        stored = con.execute("select count(*), sum(prompt_tokens) from refine_verdicts").fetchone()
    assert status == "interrupted" and stored[0] > 0
    assert requests >= 1 and prompt_tokens == stored[1] and cost > 0
