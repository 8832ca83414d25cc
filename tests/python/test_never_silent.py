"""Issue 10 item 7, never silent: with stderr not a terminal, long steps print progress and retry
lines at most every ~10 s, and a connection error says what it is (DNS, refused, TLS) and points
at OPENAI_BASE_URL and the network."""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
import time
from pathlib import Path

import openai
import pytest
from rich.console import Console

import beep.llm.runner as runner_mod
import beep.progress
from beep.llm.calls import CallResult, Usage
from beep.llm.retry import RetryPolicy, connection_problem, describe_error
from beep.llm.runner import Job, RequestRunner

FAST = RetryPolicy(max_tries=4, base_seconds=0.05, cap_seconds=0.1, max_time_seconds=20.0)


def _piped() -> Console:
    """A console like stderr in a pipe: not a terminal."""
    return Console(record=True, width=400, force_terminal=False, color_system=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _error(base_url: str) -> BaseException:
    client = openai.OpenAI(api_key="test", base_url=base_url, max_retries=0, timeout=5.0)
    with pytest.raises(openai.APIConnectionError) as info:
        client.models.list()
    return info.value


@pytest.fixture()
def plain_http_port():
    server = socketserver.TCPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_connection_errors_say_dns_refused_or_tls_and_point_at_the_base_url(plain_http_port: int) -> None:
    refused_url = f"http://127.0.0.1:{_free_port()}/v1"
    refused = _error(refused_url)
    assert "refused" in (connection_problem(refused) or "")
    text = describe_error(refused, openai.OpenAI(api_key="x", base_url=refused_url))
    assert refused_url in text and "OPENAI_BASE_URL" in text and "network" in text

    tls = _error(f"https://127.0.0.1:{plain_http_port}/v1")  # an http server spoken to over https
    assert "TLS" in (connection_problem(tls) or "")

    # DNS: a name that cannot resolve (the .invalid top-level domain is reserved for that)
    try:
        socket.getaddrinfo("no-such-host.invalid", 80)
        pytest.skip("this machine's resolver answers for .invalid")
    except socket.gaierror:
        pass
    dns = _error("http://no-such-host.invalid/v1")
    assert "DNS" in (connection_problem(dns) or "")

    azure = describe_error(refused, openai.AzureOpenAI(api_key="x", azure_endpoint="https://x.invalid", api_version="2024-10-21"))
    assert "AZURE_OPENAI_ENDPOINT" in azure
    # anything that is not a connection failure keeps its own type and text
    assert describe_error(ValueError("boom")) == "ValueError: boom"


def test_runner_in_a_pipe_prints_progress_and_says_the_server_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default progress setting (a bar) with stderr not a terminal: progress lines and retry notes.
    (A line every 0 s: at 0.05 s the one request could be refused, retried and failed before the first
    line was due, and then no line was printed: seen once in a full run.)"""
    monkeypatch.setattr(runner_mod, "NOTE_SECONDS", 0.0)
    url = f"http://127.0.0.1:{_free_port()}/v1"
    client = openai.OpenAI(api_key="test", base_url=url, max_retries=0, timeout=2.0)
    console = _piped()
    runner = RequestRunner(client, retry=FAST, concurrency=1, console=console, description="refine gpt-4o-mini",
                           unit="examples")  # progress=True: the default

    def send(c: openai.OpenAI) -> CallResult:
        c.models.list()
        return CallResult(None, Usage(0, 0, 0), {})

    stats = runner.run([Job(key="a", estimated_tokens=1, send=send)], on_result=lambda job, result: None)
    said = console.export_text()
    assert stats.failed == 1
    assert "retrying in" in said and "connection was refused" in said and "OPENAI_BASE_URL" in said, said
    assert "refine gpt-4o-mini: 0 examples" in said or "refine gpt-4o-mini:" in said, said
    assert any("connection was refused" in e for e in stats.errors)


def test_heartbeat_in_a_pipe_prints_elapsed_time_and_the_phase() -> None:
    console = _piped()
    with beep.progress.Heartbeat(console, "loading", every=0.1) as beat:
        beat.say("training the ranker on 10 conversations")
        time.sleep(0.6)
    lines = console.export_text().splitlines()
    assert lines[0] == "training the ranker on 10 conversations"
    beats = [line for line in lines[1:] if "still working" in line]
    assert beats and all(" s: training the ranker on 10 conversations" in line for line in beats)


def test_heartbeat_is_quiet_while_the_step_talks() -> None:
    console = _piped()
    with beep.progress.Heartbeat(console, "x", every=0.3) as beat:
        for i in range(8):
            beat.say(f"step {i}")
            time.sleep(0.05)
    assert "still working" not in console.export_text()


def test_local_refine_in_a_pipe_is_not_silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from refine_testkit import make_examples_db

    from beep.refine.api import refine
    from beep.refine.local import LocalClassifier

    monkeypatch.setattr(beep.progress, "HEARTBEAT_SECONDS", 0.1)
    slow = LocalClassifier.predict

    def predict(self, texts):  # a large dataset's chunk takes a while
        time.sleep(0.5)
        return slow(self, texts)

    monkeypatch.setattr(LocalClassifier, "predict", predict)
    paths = make_examples_db(tmp_path / "r.duckdb", 50)
    console = _piped()
    summary = refine(paths, progress=True, refresh_dbt=False, console=console)
    assert summary.n_decided_now == 50
    said = console.export_text()
    assert "still working" in said and "refine (local)" in said, said


def test_local_finetune_in_a_pipe_shows_elapsed_time_and_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from _evaluate_world import build_world

    import beep.finetune.local as local
    from beep.config import Paths
    from beep.finetune.api import finetune

    world = build_world(tmp_path)
    paths = Paths(duckdb=world.db, workdir=tmp_path / ".beep")
    monkeypatch.setattr(beep.progress, "HEARTBEAT_SECONDS", 0.1)
    real = local.train_local

    def slow_train(*args, say, **kwargs):
        say("training the ranker on 3 conversations")
        time.sleep(0.6)  # LightGBM at work, saying nothing
        return real(*args, say=say, **kwargs)

    monkeypatch.setattr(local, "train_local", slow_train)
    console = _piped()
    finetune(paths, export_id=world.export_id, provider="local", variant="text", seed=123, console=console)
    said = console.export_text()
    beats = [line for line in said.splitlines() if "still working" in line]
    assert beats and any(" s: training the ranker on 3 conversations" in line for line in beats), said
