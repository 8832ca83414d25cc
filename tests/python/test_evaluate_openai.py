"""`beep evaluate` through the OpenAI path: the real SDK over real HTTP against the fake server on
127.0.0.1 — chat logprobs, legacy completions logprobs, unknown outputs counted, faults retried,
a 400 recorded, and a kill -9 mid-run that resumes without asking for a stored example again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _evaluate_world import SUFFIX, SYSTEM, USERS, build_world
from beep.config import Paths
from beep.db import connect, open_duckdb
from beep.evaluate.api import evaluate
from beep.live.predict import predict
from fake_openai import ChatAnswer, Fault

FT_CHAT = "ft:gpt-4o-mini-2024-07-18:beep::abc123"
FT_COMPLETION = "ft:babbage-002:beep::def456"
GARBAGE_WORD = "vacuum"  # prompts with this word get an answer that is no label


def _register_remote_job(db: Path, export_id: str, model: str, base_model: str) -> None:
    with connect(db) as con:
        con.execute(
            """insert into finetune_jobs (job_id, provider, base_model, export_id, settings_hash, status, fine_tuned_model)
               values (?, 'openai', ?, ?, 'h2', 'succeeded', ?)""",
            [f"ftjob-{model[-6:]}", base_model, export_id, model],
        )


def _label_for(prompt: str) -> str:
    """The fake fine-tuned model: the person whose topic words the prompt mentions most."""
    words = prompt.split()
    users = sorted(USERS)
    scores = [sum(words.count(w) for w in USERS[u][1]) for u in users]
    best = max(range(len(users)), key=lambda i: scores[i])
    return str(best) if scores[best] else "nil"


def _answer(prompt: str, prefix: str = "") -> ChatAnswer:
    if GARBAGE_WORD in prompt.split():
        return ChatAnswer(content="Hello", top_logprobs=[("Hello", -0.2), (prefix + "0", -1.9), ("The", -2.5)])
    label = _label_for(prompt)
    others = [str(i) for i in range(4) if str(i) != label][:2]
    return ChatAnswer(
        content=prefix + label,
        top_logprobs=[(prefix + label, -0.1), (prefix + others[0], -2.6), ("Sure", -3.0), (prefix + others[1], -3.4)],
    )


def _chat_responder(body: dict) -> ChatAnswer:
    return _answer(body["messages"][-1]["content"])


def _completion_responder(body: dict) -> ChatAnswer:
    return _answer(body["prompt"], prefix=" ")


def _paths(world) -> Paths:
    return Paths(duckdb=world.db, workdir=world.db.parent / ".beep")


def _fast(**extra):
    return {"max_wait": 0.02, "timeout": 5.0, "refresh_views": False, **extra}


def test_chat_logprobs_decode_with_the_export_mapping_and_unknown_outputs_are_counted(tmp_path: Path, fake_openai) -> None:
    world = build_world(tmp_path, fmt="chat")
    _register_remote_job(world.db, world.export_id, FT_CHAT, "gpt-4o-mini-2024-07-18")
    fake_openai.state.chat_responder = _chat_responder
    result = evaluate(_paths(world), model=FT_CHAT, **_fast(top_k=5))
    requests = fake_openai.state.requests_to("/v1/chat/completions")
    assert len(requests) == result.n == 40
    body = requests[0].body
    assert body["model"] == FT_CHAT and body["max_tokens"] == 1 and body["temperature"] == 0
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    # exactly what the model was validated on: the export's system prompt and prompt, no answer
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"] == SYSTEM and body["messages"][1]["content"].endswith(SUFFIX)

    con = open_duckdb(str(world.db), read_only=True)
    try:
        rows = con.execute(
            "select example_id, predicted_label, raw_output, top_k, true_label_rank, prompt_tokens from predictions where model = ?",
            [FT_CHAT],
        ).fetchall()
        prompts = dict(con.execute("select example_id, prompt from training_examples").fetchall())
        run = con.execute("select provider, status, cost from eval_runs").fetchone()
        unknown = con.execute(
            "select value from metrics where model = ? and slice = 'all' and metric = 'unknown_outputs'", [FT_CHAT]
        ).fetchone()[0]
    finally:
        con.close()
    assert len(rows) == 40
    garbage = [r for r in rows if GARBAGE_WORD in prompts[r[0]].split()]
    assert garbage, "the world should have some prompts the fake model answers with garbage"
    for example_id, predicted, raw, top_k, _rank, tokens in rows:
        top = json.loads(top_k)
        assert all(t["label"] in {"0", "1", "2", "3", "nil"} for t in top)  # 'Sure' / 'Hello' are no labels
        assert tokens and tokens > 0
        if GARBAGE_WORD in prompts[example_id].split():
            assert predicted is None and raw == "Hello"
        else:
            assert predicted == _label_for(prompts[example_id]) and top[0]["label"] == predicted
            assert top[0]["logprob"] == pytest.approx(-0.1)
    assert unknown == len(garbage)  # counted, not dropped
    assert result.headline[FT_CHAT]["all"]["unknown_rate"] == pytest.approx(len(garbage) / 40)
    assert run[0] == "openai" and run[1] == "finished" and run[2] > 0  # priced from seeds/model_prices.csv


def test_completion_logprobs_like_the_seed(tmp_path: Path, fake_openai) -> None:
    world = build_world(tmp_path, fmt="completion")
    _register_remote_job(world.db, world.export_id, FT_COMPLETION, "babbage-002")
    fake_openai.state.completion_responder = _completion_responder
    result = evaluate(_paths(world), model=FT_COMPLETION, **_fast(top_k=10))
    requests = fake_openai.state.requests_to("/v1/completions")
    assert len(requests) == 40
    body = requests[0].body
    assert body["max_tokens"] == 1 and body["temperature"] == 0 and body["logprobs"] == 5  # the API's cap
    assert body["prompt"].endswith(SUFFIX)
    head = result.headline[FT_COMPLETION]["all"]
    # an unreadable answer still ranks the labels among its alternatives: top-1 can catch what accuracy misses
    assert head["top_1_accuracy"] >= head["accuracy"]
    assert head["unknown_rate"] > 0
    con = open_duckdb(str(world.db), read_only=True)
    decoded = con.execute("select count(*) from predictions where model = ? and predicted_label is not null", [FT_COMPLETION]).fetchone()[0]
    con.close()
    assert decoded == 40 - round(head["unknown_rate"] * 40)  # ' 3' decodes to label 3


def test_faults_are_retried_and_a_rejected_example_is_recorded_not_dropped(tmp_path: Path, fake_openai) -> None:
    world = build_world(tmp_path, fmt="chat")
    _register_remote_job(world.db, world.export_id, FT_CHAT, "gpt-4o-mini-2024-07-18")
    state = fake_openai.state
    state.chat_responder = _chat_responder
    path = "/v1/chat/completions"
    state.inject(Fault(status=429, headers={"retry-after-ms": "20"}), path=path)
    state.inject(Fault(status=503), path=path)
    state.inject(Fault(kind="drop"), path=path)
    state.inject(
        Fault(status=400, body={"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}),
        path=path,
    )
    result = evaluate(_paths(world), model=FT_CHAT, **_fast(concurrency=1))
    assert result.n == 40
    con = open_duckdb(str(world.db), read_only=True)
    rejected = con.execute("select raw_output from predictions where model = ? and raw_output like 'error:%'", [FT_CHAT]).fetchall()
    n_rows = con.execute("select count(*) from predictions where model = ?", [FT_CHAT]).fetchone()[0]
    con.close()
    assert n_rows == 40 and len(rejected) == 1 and "BadRequestError" in rejected[0][0]
    # one request per example, plus a retry after each of the 429, 503 and dropped connection; the 400
    # is final (the example it hit is the one recorded as rejected)
    assert len(state.requests_to(path, status=None)) == 40 + 3


def test_a_killed_openai_evaluate_resumes_without_asking_again(tmp_path: Path, fake_openai) -> None:
    world = build_world(tmp_path, fmt="chat")
    _register_remote_job(world.db, world.export_id, FT_CHAT, "gpt-4o-mini-2024-07-18")
    state = fake_openai.state
    state.chat_responder = _chat_responder
    state.latency_seconds = 0.05
    code = (
        "import sys; from pathlib import Path; from beep.config import Paths; from beep.evaluate.api import evaluate;"
        f"evaluate(Paths(duckdb=Path({str(world.db)!r}), workdir=Path({str(tmp_path / '.beep')!r})), model={FT_CHAT!r},"
        " concurrency=2, max_wait=0.02, refresh_views=False, flush_every=1)"
    )
    env = {**os.environ, **fake_openai.env({})}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(state.requests_to("/v1/chat/completions")) < 12 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, f"the evaluate finished or crashed before the kill: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stderr.close()

    con = open_duckdb(str(world.db), read_only=True)
    stored = {r[0] for r in con.execute("select example_id from predictions where model = ?", [FT_CHAT]).fetchall()}
    prompts = dict(con.execute("select example_id, prompt from training_examples").fetchall())
    con.close()
    assert 0 < len(stored) < 40
    asked_before = len(state.requests)
    state.latency_seconds = 0.0
    result = evaluate(_paths(world), model=FT_CHAT, **_fast())
    asked_again = [r.body["messages"][-1]["content"] for r in state.requests[asked_before:]]
    stored_prompts = {prompts[e] for e in stored}
    assert not stored_prompts & set(asked_again), "a stored example was sent again"
    assert len(asked_again) == 40 - len(stored)
    con = open_duckdb(str(world.db), read_only=True)
    counts = con.execute("select count(*), count(distinct example_id) from predictions where model = ?", [FT_CHAT]).fetchone()
    con.close()
    assert counts == (40, 40) and result.n == 40


def test_predict_through_the_openai_path(tmp_path: Path, fake_openai) -> None:
    world = build_world(tmp_path, fmt="chat")
    _register_remote_job(world.db, world.export_id, FT_CHAT, "gpt-4o-mini-2024-07-18")
    fake_openai.state.chat_responder = _chat_responder
    result = predict(_paths(world), model=FT_CHAT, text="invoice refund\n\nstripe billing", k=2)
    assert result.alert and result.candidates[0].user_name == "cyd"
    assert result.candidates[0].probability == pytest.approx(pytest.approx(2.718281828 ** -0.1))
    body = fake_openai.state.requests_to("/v1/chat/completions")[-1].body
    assert body["messages"][0] == {"role": "system", "content": SYSTEM}
    assert body["messages"][1]["content"] == "invoice refund\n\nstripe billing" + SUFFIX


def test_any_served_model_on_a_given_export_with_unknown_price(tmp_path: Path, fake_openai) -> None:
    world = build_world(tmp_path, fmt="chat")
    fake_openai.state.chat_responder = _chat_responder
    result = evaluate(_paths(world), model="acme-responder-v2", export_id=world.export_id, **_fast())
    assert result.provider == "openai" and result.n == 40
    assert result.cost is None  # no row in seeds/model_prices.csv: unknown, not a made-up 0
    assert {r.body["model"] for r in fake_openai.state.requests_to("/v1/chat/completions")} == {"acme-responder-v2"}


def test_azure_deployment_through_the_azure_client(tmp_path: Path, fake_openai, monkeypatch) -> None:
    world = build_world(tmp_path, fmt="chat")
    fake_openai.state.chat_responder = _chat_responder
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "test-key")
    root = fake_openai.base_url.removesuffix("/v1")
    result = evaluate(_paths(world), model="beep-responder-deployment", export_id=world.export_id,
                      **_fast(provider="azure", azure_endpoint=root, api_version="2024-10-21"))
    assert result.provider == "azure" and result.n == 40
    requests = fake_openai.state.requests_to("/v1/chat/completions")
    assert len(requests) == 40 and requests[0].body["logprobs"] is True
    assert result.headline["beep-responder-deployment"]["all"]["accuracy"] > 0.5


def test_max_cost_is_a_budget_the_evaluation_stops_at_and_a_rerun_finishes(tmp_path: Path, fake_openai) -> None:
    """`beep run --max-cost` hands evaluation what refine and fine-tuning left; evaluation stops sending
    before it would pass it, keeps what was answered, and the same command with a larger budget asks
    only the rest."""
    from beep.labels import EvaluationInputError

    world = build_world(tmp_path, fmt="chat")
    _register_remote_job(world.db, world.export_id, FT_CHAT, "gpt-4o-mini-2024-07-18")
    fake_openai.state.chat_responder = _chat_responder
    # the 40 answers cost $0.00046 in all (prices of seeds/model_prices.csv); the runner holds back the most
    # each request in flight could cost (every token at the output price): this budget lets a few through
    budget = 0.0002
    with pytest.raises(EvaluationInputError, match=r"stopped at --max-cost \$0\.0002 .* not sent"):
        evaluate(_paths(world), model=FT_CHAT, **_fast(max_cost=budget, concurrency=2))
    asked = len(fake_openai.state.requests_to("/v1/chat/completions"))
    assert 0 < asked < 40
    with open_duckdb(str(world.db), read_only=True) as con:
        stored = con.execute("select count(*) from predictions where model = ?", [FT_CHAT]).fetchone()[0]
        spent = con.execute("select cost from eval_runs").fetchone()[0]
    assert stored == asked and 0 < spent <= budget
    result = evaluate(_paths(world), model=FT_CHAT, **_fast(max_cost=1.0))
    assert result.n == 40 and len(fake_openai.state.requests_to("/v1/chat/completions")) == 40


def test_max_cost_on_a_model_without_a_price_is_refused_before_sending(tmp_path: Path, fake_openai) -> None:
    from beep.labels import EvaluationInputError

    world = build_world(tmp_path, fmt="chat")
    fake_openai.state.chat_responder = _chat_responder
    with pytest.raises(EvaluationInputError, match="no price for acme-responder-v2"):
        evaluate(_paths(world), model="acme-responder-v2", export_id=world.export_id, **_fast(max_cost=1.0))
    assert fake_openai.state.requests_to("/v1/chat/completions") == []
