"""The fake server's files and batches endpoints through the real SDK, and the price table."""

from __future__ import annotations

import io
import json

import pytest
from fake_openai.fixtures import fake_openai  # noqa: F401  (fixture)

from beep.config import PROJECT_DIR
from beep.llm.calls import Usage
from beep.llm.client import ClientSettings, MissingCredentials, make_client
from beep.llm.pricing import UnknownModelPrice, default_price_table, load_prices


def test_files_and_batches_roundtrip(fake_openai):
    client = fake_openai.client()
    line = {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO((json.dumps(line) + "\n").encode())), purpose="batch")
    assert client.files.retrieve(uploaded.id).purpose == "batch"
    assert [f.id for f in client.files.list()] == [uploaded.id]
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"k": "v"})
    assert batch.status == "validating"
    fake_openai.state.batch_polls_to_complete = 2
    assert client.batches.retrieve(batch.id).status == "in_progress"
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.completed == 1
    out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert out[0]["custom_id"] == "r1" and out[0]["response"]["body"]["choices"][0]["message"]["content"] == "ok"
    assert [b.id for b in client.batches.list()] == [batch.id]


def test_make_client_turns_sdk_retries_off(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    client = make_client(ClientSettings(base_url="http://127.0.0.1:9/v1", timeout_seconds=3))
    assert client.max_retries == 0 and str(client.base_url).startswith("http://127.0.0.1:9")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY"):
        make_client(ClientSettings())
    with pytest.raises(MissingCredentials, match="AZURE_OPENAI_ENDPOINT"):
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
        make_client(ClientSettings(provider="azure"))
    azure = make_client(ClientSettings(provider="azure", azure_endpoint="https://x.openai.azure.com", api_version="2024-10-21"))
    assert azure.max_retries == 0


def test_prices():
    table = default_price_table(PROJECT_DIR)
    assert table.get("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"
    assert table.get("ft:gpt-4o-mini-2024-07-18:acme::abc").model == "ft:gpt-4o-mini"
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_tokens=500_000)
    assert table.cost("gpt-4o-mini", usage) == pytest.approx(0.5 * 0.15 + 0.5 * 0.075 + 0.60)
    assert table.cost("gpt-4o-mini", usage, batch=True) == pytest.approx((0.5 * 0.15 + 0.5 * 0.075 + 0.60) / 2)
    with pytest.raises(UnknownModelPrice, match="add a row"):
        table.get("mystery-model")


def test_bad_price_file_names_line(tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text("model,input_per_1m,cached_input_per_1m,output_per_1m,training_per_1m,batch_discount,source_date,source\nm,abc,1,1,,0.5,2025-01-01,x\n")
    with pytest.raises(ValueError, match=r"p.csv:2: column input_per_1m"):
        load_prices(bad)



def test_create_once_looks_before_it_sends_again():
    """A failed create is never resent blindly: what the failed attempt made is adopted."""
    from beep.llm.retry import MalformedResponse, RetryPolicy, create_once

    policy = RetryPolicy(max_tries=5, base_seconds=0.001, cap_seconds=0.002)
    made: list[str] = []

    def create_then_fail():  # the server made it, the answer came back garbled (retryable, like a drop)
        made.append(f"job{len(made)}")
        raise MalformedResponse("cut")

    assert create_once(create_then_fail, lambda: made[-1] if made else None, policy) == "job0"
    assert made == ["job0"]

    # nothing was made: the create is sent again, up to max_tries, then the error is raised
    calls: list[int] = []
    looks: list[int] = []

    def fail():
        calls.append(1)
        raise MalformedResponse("cut")

    with pytest.raises(MalformedResponse):
        create_once(fail, lambda: looks.append(1), policy)
    assert len(calls) == 5 and len(looks) == 5  # looked after every failure, the last one included

    # an error a retry cannot fix is raised at once, without looking
    looks.clear()
    with pytest.raises(ValueError):
        create_once(lambda: (_ for _ in ()).throw(ValueError("400")), lambda: looks.append(1), policy)
    assert looks == []
