"""One run of a kind per DuckDB file, and runs a killed process left ``running`` (issue 21, items 4
and 6): two refines at once pay for each example once; a second `beep build` waits for the first
and says who holds it; evaluate and local fine-tune runs a SIGKILL left ``running`` are marked
``interrupted`` by the next start."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from _evaluate_world import build_world
from export_testdata import exported_workspace
from refine_testkit import example_ids, make_examples_db, responder, verdicts

from beep.config import Paths
from beep.db import open_duckdb
from beep.evaluate.api import evaluate
from beep.finetune.api import finetune
from beep.locks import StepLock, lock_path

CHAT = "/v1/chat/completions"
BEEP = str(Path(sys.executable).with_name("beep"))


def _refine(db: Path, server) -> subprocess.Popen:
    cmd = [BEEP, "refine", "--provider", "openai", "--db", str(db), "--batch-size", "4", "--concurrency", "2",
           "--no-progress", "--no-refresh-models", "--retry-base", "0.01", "--retry-cap", "0.05"]
    return subprocess.Popen(cmd, env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_refines_at_once_pay_for_each_example_once(fake_openai, tmp_path: Path) -> None:
    n = 120  # 15 rounds of 0.3 s: the first run is still paying when the second reaches the lock
    paths = make_examples_db(tmp_path / "beep.duckdb", n)
    fake_openai.state.chat_responder = responder
    fake_openai.state.latency_seconds = 0.3
    first, second = _refine(paths.duckdb, fake_openai), _refine(paths.duckdb, fake_openai)
    (_, err1), (_, err2) = first.communicate(timeout=120), second.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    asked = Counter(eid for r in fake_openai.state.requests_to(CHAT) for eid in example_ids(r.body))
    twice = [eid for eid, k in asked.items() if k > 1]
    assert twice == [], f"{len(twice)} examples paid twice"
    assert len(asked) == n and len(verdicts(paths.duckdb)) == n
    # the one that came second says whom it waits for (either may also have waited a moment for the DuckDB
    # file itself while the other wrote, which says "another process holds its lock")
    said = [" ".join(err.split()) for err in (err1, err2)]
    assert any("waiting up to 60 s for another `beep refine` on this DuckDB file to finish (pid " in s for s in said), said
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        statuses = [r[0] for r in con.execute("select status from refine_runs").fetchall()]
    finally:
        con.close()
    assert statuses.count("finished") >= 1 and "running" not in statuses


def test_a_second_build_waits_for_the_first_and_says_who_holds_it(fresh_paths: Paths) -> None:
    env = {**os.environ, "BEEP_WORKDIR": str(fresh_paths.workdir)}
    cmd = [BEEP, "build", "--db", str(fresh_paths.duckdb), "--no-tests"]
    with StepLock(fresh_paths, "build") as held:
        held.note(run_id="a test holding the lock")
        refused = subprocess.run(cmd, env={**env, "BEEP_LOCK_WAIT_SECONDS": "1"}, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1, refused.stderr
        # COLUMNS may be a terminal's 80 under pytest-xdist: rich wraps, long paths mid-word too
        said = "".join(refused.stderr.split())
        expected = f"another `beep build` is running on {fresh_paths.duckdb} (pid {os.getpid()}"
        assert "".join(expected.split()) in said, refused.stderr
        assert "runatestholdingthelock" in said and "BEEP_LOCK_WAIT_SECONDS" in said
        assert "Traceback" not in refused.stderr + refused.stdout
        waiting = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # read its stderr as it comes: the lock is held until it says it waits (a fixed sleep of 3 s was
        # shorter than `beep build`'s start-up on a busy machine: the lock was free before it looked)
        err_lines: list[str] = []
        reader = threading.Thread(target=lambda: err_lines.extend(iter(waiting.stderr.readline, "")), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while "waiting up to 60 s for another `beep build`" not in " ".join("".join(err_lines).split()):
            assert waiting.poll() is None, f"the second build ended (exit {waiting.returncode}) instead of waiting"
            assert time.monotonic() < deadline, "the second build never said it waits"
            time.sleep(0.05)
        time.sleep(0.5)
        assert waiting.poll() is None, "the second build must wait while the lock is held"
    waiting.wait(timeout=300)  # the lock is released: it builds
    reader.join(timeout=10)
    err = "".join(err_lines)
    assert waiting.returncode == 0, err[-3000:]


def test_an_evaluation_a_kill_left_running_is_marked_interrupted_and_resumed(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    paths = Paths(duckdb=world.db, workdir=world.db.parent / ".beep")
    first = evaluate(paths, model=world.model)
    con = open_duckdb(str(world.db))
    # what a SIGKILL leaves: the run still "running", half of its predictions stored
    con.execute("update eval_runs set status = 'running', finished_at = null")
    con.execute("delete from predictions where example_id in (select example_id from predictions "
                "order by example_id limit 10)")
    con.close()
    from rich.console import Console

    console = Console(stderr=True, record=True, width=200)
    again = evaluate(paths, model=world.model, console=console)
    said = console.export_text()
    assert f"evaluation {first.eval_run_id} ({world.model}) was left running by a process that is gone: marked interrupted" in said
    assert again.eval_run_id == first.eval_run_id and not again.reused
    con = open_duckdb(str(world.db), read_only=True)
    try:
        assert con.execute("select status from eval_runs").fetchone()[0] == "finished"
    finally:
        con.close()


def test_a_local_finetune_a_kill_left_running_is_marked_interrupted(tmp_path: Path) -> None:
    paths, exp = exported_workspace(tmp_path, n_conversations=18)
    done = finetune(paths, export_id=exp.export_id, variant="text")
    con = open_duckdb(str(paths.duckdb))
    con.execute("update finetune_jobs set status = 'running', finished_at = null")  # what a SIGKILL leaves
    con.close()
    said: list[str] = []
    from beep.finetune.local import spill_dir, train_local

    partial = spill_dir(paths, done.job_id)  # a killed ranker's training leaves its spilled saved states
    partial.mkdir(parents=True)
    (partial / "0000.pickle.zlib").write_bytes(b"state")
    job, reused = train_local(paths, exp.export_id, variant="text", say=said.append)
    assert any(f"local job {done.job_id} was left running by a process that is gone: marked interrupted" in s
               and "partial saved states" in s for s in said)
    assert not partial.exists()
    assert job.status == "succeeded" and not reused


def test_a_lock_is_free_again_after_its_holder_is_killed(tmp_path: Path) -> None:
    """The kernel releases the lock however its holder ends: a SIGKILLed holder blocks no one."""
    paths = Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")
    code = ("import sys, time; from pathlib import Path; from beep.config import Paths; from beep.locks import StepLock; "
            f"lock = StepLock(Paths(duckdb=Path({str(paths.duckdb)!r}), workdir=Path({str(paths.workdir)!r})), 'refine').acquire(); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        threading.Timer(0.5, holder.kill).start()
        with StepLock(paths, "refine", wait_seconds=20):
            assert 0.4 < time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()


def test_a_refine_that_fails_mid_run_records_what_it_used(fake_openai, tmp_path: Path) -> None:
    """Item 6: a run stopped by an error (here the key is revoked after 5 answers) is recorded
    ``failed`` with the requests, tokens and cost of the answers it received, not $0."""
    import pytest

    from beep.refine.api import refine
    from beep.llm.runner import RunAborted
    from fake_openai import Fault

    paths = make_examples_db(tmp_path / "beep.duckdb", 60)
    state = fake_openai.state
    answered = []

    def revoke_after_five(body: dict) -> str:
        answered.append(1)
        if len(answered) == 5:
            state.inject(Fault(kind="status", status=401, body={"error": {"message": "key revoked", "type": "invalid_request_error"}}),
                         times=1000, path=CHAT)
        return responder(body)

    state.chat_responder = revoke_after_five
    with pytest.raises(RunAborted):
        refine(paths, provider="openai", model="gpt-4o-mini", batch_size=4, concurrency=1, progress=False,
               refresh_dbt=False)
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        [(status, requests, prompt_tokens, cost, n_decided)] = con.execute(
            "select status, requests, prompt_tokens, cost, n_decided from refine_runs").fetchall()
        stored = con.execute("select count(*) from refine_verdicts").fetchone()[0]
    finally:
        con.close()
    ok = [r for r in state.requests_to(CHAT) if r.answered_at is not None]
    assert status == "failed" and stored == n_decided == 20
    assert requests == len(ok) == 5
    assert prompt_tokens == sum(r.prompt_tokens for r in ok) and cost > 0


def test_no_empty_run_lock_folder_is_left_beside_the_database(tmp_path: Path) -> None:
    from rich.console import Console

    from beep.refine.api import refine

    paths = make_examples_db(tmp_path / "beep.duckdb", 20)
    refine(paths, provider="local", refresh_dbt=False, console=Console(stderr=True, quiet=True))
    assert not (tmp_path / ".beep.duckdb.refine-runs").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) in ([], [".beep"])


def test_two_duckdb_files_in_one_folder_share_no_dbt_target_logs_spark_or_lock(tmp_path: Path) -> None:
    """Two DuckDB files beside each other share `.beep/` but nothing one build of each would clash on."""
    from beep.dbt_runner import dbt_env

    a = Paths(duckdb=tmp_path / "a.duckdb", workdir=tmp_path / ".beep")
    b = Paths(duckdb=tmp_path / "b.duckdb", workdir=tmp_path / ".beep")
    for key in ("DBT_TARGET_PATH", "DBT_LOG_PATH"):
        assert dbt_env(a)[key] != dbt_env(b)[key]
        assert dbt_env(a, "spark")[key] != dbt_env(b, "spark")[key]
    assert dbt_env(a, "spark")["DBT_TARGET_PATH"] != dbt_env(a)["DBT_TARGET_PATH"]
    assert dbt_env(a, "spark")["BEEP_SPARK_DIR"] != dbt_env(b, "spark")["BEEP_SPARK_DIR"]
    assert a.spark_dir.parent == b.spark_dir.parent == tmp_path / ".beep" / "spark"
    assert lock_path(a, "build") != lock_path(b, "build")
