"""Killing `beep run` during a paid step (issue 21, item 1): the step's worker stops with it.

`beep run` runs each heavy step in a worker process. These tests run the real command against the
fake OpenAI-compatible server on 127.0.0.1, kill it with SIGKILL or SIGTERM while the worker is
paying for requests, and count on the server what arrived after the kill: nothing beyond the
requests in flight (none later than one second after the kill), and no process of the run left.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from fake_openai import ChatAnswer
from refine_testkit import blocks

from beep.config import Paths
from beep.db import open_duckdb
from beep.worker import GRACE_SECONDS

CHAT = "/v1/chat/completions"
BEEP = str(Path(sys.executable).with_name("beep"))


def respond(body: dict):
    if body.get("response_format"):  # refine: strong / weak per numbered example
        return json.dumps({num: ("strong" if len(text) > 60 else "weak") for num, text in blocks(body)})
    return ChatAnswer(content="0", top_logprobs=[("0", -0.4), ("1", -1.6), ("nil", -2.2)])  # the fine-tuned model


def is_eval(request) -> bool:
    return isinstance(request.body, dict) and not request.body.get("response_format")


def start_run(paths: Paths, server) -> subprocess.Popen:
    env = server.env()
    env["BEEP_WORKDIR"] = str(paths.workdir)
    cmd = [BEEP, "run", "--db", str(paths.duckdb), "--provider", "openai", "--poll-interval", "0.05"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, seconds: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"beep run ended (exit {proc.returncode}) before {what}:\n{err[-3000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def run_processes(proc: subprocess.Popen) -> list[psutil.Process]:
    """The `beep run` process's descendants (its step worker, and what the worker started)."""
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def gone_within(processes: list[psutil.Process], seconds: float) -> list[str]:
    """Wait up to ``seconds`` for ``processes`` to end; the command lines of those still alive."""
    deadline = time.monotonic() + seconds
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    out = []
    for p in alive(processes):
        try:
            out.append(f"{p.pid}: {' '.join(p.cmdline())[:200]}")
        except psutil.Error:
            pass
    return out


def requests_after(server, moment: float, predicate=lambda r: True) -> list:
    return [r for r in server.state.requests_to(CHAT, status=None) if r.at > moment and predicate(r)]


def test_sigkill_of_beep_run_during_refine_stops_its_worker_within_a_second(fresh_paths: Paths, fake_openai) -> None:
    state = fake_openai.state
    state.chat_responder = respond
    state.latency_seconds = 0.4  # refine's ~155 requests take ~8 s at 8 in flight
    proc = start_run(fresh_paths, fake_openai)
    try:
        wait_for(lambda: len(state.requests_to(CHAT, status=None)) >= 16, 120, "refine's 16th request", proc)
        workers = run_processes(proc)
        assert workers, "the step runs in a worker process"
        proc.kill()
        killed_at = time.monotonic()
        proc.wait(10)
        deadline = killed_at + GRACE_SECONDS + 2
        while alive(workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        gone_after = time.monotonic() - killed_at
        time.sleep(2.0)  # a worker still alive would have sent more by now (8 in flight, 0.4 s each)
        late = requests_after(fake_openai, killed_at + 1.0)
        sent = len(state.requests_to(CHAT, status=None))
        print(f"\nSIGKILL after {sent - len(requests_after(fake_openai, killed_at))} requests; "
              f"{len(requests_after(fake_openai, killed_at))} arrived after the kill (in flight), {len(late)} more than 1 s "
              f"after; workers gone {gone_after:.2f} s after the kill")
        assert late == [], f"{len(late)} requests sent more than 1 s after the kill"
        assert len(requests_after(fake_openai, killed_at)) <= 8  # at most --concurrency were on their way
        assert alive(workers) == [], f"left running: {[(p.pid, p.name()) for p in alive(workers)]}"
    finally:
        for p in run_processes(proc):
            p.kill()
        if proc.poll() is None:
            proc.kill()
    con = open_duckdb(str(fresh_paths.duckdb), read_only=True)
    try:
        [(status,)] = con.execute("select status from refine_runs").fetchall()
    finally:
        con.close()
    assert status in ("interrupted", "running")  # recorded by the worker as it stopped, or by the next start


def test_sigterm_of_beep_run_during_evaluate_exits_143_and_records_the_run_interrupted(fresh_paths: Paths, fake_openai) -> None:
    """Refine and fine-tuning go through quickly; the evaluation is slow and gets SIGTERM. The run
    exits 143, the worker stops sending, the evaluation is recorded ``interrupted`` with its cost,
    and every answer that arrived is stored, so a rerun can ask only for what was in flight (that a
    resumed evaluation asks nothing twice: test_evaluate_openai.py's
    test_a_killed_openai_evaluate_resumes_without_asking_again; a rerun of `beep run` that pays for
    nothing twice: test_run_pipeline.py)."""
    state = fake_openai.state
    state.chat_responder = respond
    proc = start_run(fresh_paths, fake_openai)
    try:
        def evaluating() -> bool:
            if any(is_eval(r) for r in state.requests_to(CHAT, status=None)):
                state.latency_seconds = 0.3
                return True
            return False

        wait_for(evaluating, 240, "the evaluation's first request", proc)
        wait_for(lambda: sum(is_eval(r) for r in state.requests_to(CHAT, status=None)) >= 40, 60,
                 "40 evaluation requests", proc)
        workers = run_processes(proc)
        proc.send_signal(signal.SIGTERM)
        termed_at = time.monotonic()
        out, err = proc.communicate(timeout=GRACE_SECONDS + 20)
        took = time.monotonic() - termed_at
        time.sleep(1.0)
        late = requests_after(fake_openai, termed_at + 1.0, is_eval)
        print(f"\nSIGTERM: exit {proc.returncode} after {took:.2f} s; {len(requests_after(fake_openai, termed_at, is_eval))} "
              f"requests arrived after it (in flight), {len(late)} more than 1 s after")
        assert proc.returncode == 143, err[-3000:]
        assert "interrupted during 'evaluate'" in err
        assert late == []
        assert gone_within(workers, 3.0) == []
    finally:
        for p in run_processes(proc):
            p.kill()
        if proc.poll() is None:
            proc.kill()
    asked = [r for r in state.requests_to(CHAT) if is_eval(r)]
    con = open_duckdb(str(fresh_paths.duckdb), read_only=True)
    try:
        [(run_id, status, cost)] = con.execute("select eval_run_id, status, cost from eval_runs").fetchall()
        [model] = con.execute("select model from eval_runs").fetchone()
        stored = con.execute("select count(*) from predictions where eval_run_id = ? and model = ?",
                             [run_id, model]).fetchone()[0]
    finally:
        con.close()
    assert status == "interrupted"
    assert cost is not None and cost > 0
    # answers are stored before a freed slot sends anything new: the ones lost were in flight
    assert len(asked) - stored <= 8, (len(asked), stored)


@pytest.mark.parametrize("sig", [signal.SIGHUP])  # SIGTERM: the evaluate test above
def test_a_stopping_signal_gives_its_documented_exit_code(fresh_paths: Paths, sig: int) -> None:
    """`beep run` (local provider) stopped by SIGHUP (a closed terminal) exits 129, not -1."""
    proc = subprocess.Popen([BEEP, "run", "--db", str(fresh_paths.duckdb)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**__import__("os").environ,
                                                                    "BEEP_WORKDIR": str(fresh_paths.workdir)})
    try:
        wait_for(lambda: bool(run_processes(proc)), 120, "the first step's worker", proc)
        workers = run_processes(proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=GRACE_SECONDS + 20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err[-3000:]
    assert "interrupted during" in err
    assert gone_within(workers, 3.0) == []
