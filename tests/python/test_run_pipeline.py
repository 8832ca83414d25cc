"""`beep run`: the whole chain on the sample, the headline beside the baselines, and a rerun that
does no step twice; a failing step is named with how to resume."""

from __future__ import annotations

from io import StringIO

import pytest
from rich.console import Console
from typer.testing import CliRunner

from beep.cli import app
from beep.config import Paths
from beep.db import open_duckdb
from beep.pipeline import RunOptions, StepFailed, run_pipeline


def test_beep_run_end_to_end_then_rerun_does_nothing_twice(fresh_paths: Paths) -> None:
    runner = CliRunner()
    # a wide console: under pytest-xdist COLUMNS can be a terminal's 80, which cuts the headline's headers
    env = {"BEEP_WORKDIR": str(fresh_paths.workdir), "COLUMNS": "200"}
    first = runner.invoke(app, ["run", "--db", str(fresh_paths.duckdb)], env=env)
    assert first.exit_code == 0, first.output
    for expected in ("macro F1", "top-5", "baseline", "newcomers only", "report:"):
        assert expected in first.output
    with open_duckdb(str(fresh_paths.duckdb), read_only=True) as con:
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in ("refine_verdicts", "exports", "finetune_jobs", "eval_runs", "predictions", "metrics")}
    assert all(n > 0 for n in counts.values()), counts
    assert counts["exports"] == counts["finetune_jobs"] == counts["eval_runs"] == 1

    said = StringIO()
    # the rerun's steps in this process: what is reused is decided the same way; the first run above went
    # through `beep run`'s worker processes (each imports sklearn, dbt, ...: ~3.5 s of CPU per step)
    result = run_pipeline(fresh_paths, RunOptions(isolate_steps=False), console=Console(file=said, width=300))
    assert "build" in result.skipped
    # the run says which steps reused their work (issue 25)
    for line in ("dataset unchanged since the last build", "incremental refine: no example was without a verdict: nothing asked",
                 "incremental export: unchanged", "incremental finetune: reused", "incremental evaluate: reused",
                 # what the dataset left out, counted (the sample has bots, joins and leaves, tombstones)
                 "left out of the dataset: ", "join_leave ", "table message_fate_counts"):
        assert line in said.getvalue(), line
    assert "share the label `other`" not in said.getvalue()  # the sample's responders fit var max_labels
    assert result.refine is not None and result.refine.n_decided_now == 0
    assert result.export is not None and result.export.reused
    assert result.finetune is not None and result.finetune.reused
    assert result.evaluation is not None and result.evaluation.reused
    assert result.report_path is not None and result.report_path.exists()
    with open_duckdb(str(fresh_paths.duckdb), read_only=True) as con:
        again = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in counts}
    assert again == counts


def test_a_failing_step_is_named_with_how_to_resume(fresh_paths: Paths) -> None:
    with pytest.raises(StepFailed) as err:
        run_pipeline(fresh_paths, RunOptions(provider="no-such-provider"))
    assert err.value.step == "refine"
    assert "run the same `beep run` again" in str(err.value)


def test_beep_run_with_the_openai_provider_within_a_budget(fresh_paths: Paths, fake_openai) -> None:
    """The whole chain through the OpenAI path (real SDK, fake server on 127.0.0.1): a budget too
    small stops it before anything is sent; then refine, upload, job, evaluation all go through
    the server once, and a rerun sends nothing."""
    import json

    from fake_openai import ChatAnswer
    from refine_testkit import blocks

    def respond(body: dict):
        if body.get("response_format"):  # refine: strong / weak per numbered example
            return json.dumps({num: ("strong" if len(text) > 60 else "weak") for num, text in blocks(body)})
        return ChatAnswer(content="0", top_logprobs=[("0", -0.4), ("1", -1.6), ("nil", -2.2)])  # the fine-tuned model

    fake_openai.state.chat_responder = respond
    runner = CliRunner()
    env = {"BEEP_WORKDIR": str(fresh_paths.workdir)}
    args = ["run", "--db", str(fresh_paths.duckdb), "--provider", "openai", "--poll-interval", "0.05"]

    refused = runner.invoke(app, [*args, "--max-cost", "0.0001"], env=env)
    assert refused.exit_code == 1
    assert "step 'refine' failed" in refused.output and "--max-cost" in refused.output
    assert fake_openai.state.requests == []  # nothing sent, nothing paid

    first = runner.invoke(app, [*args, "--max-cost", "5"], env=env)
    assert first.exit_code == 0, first.output
    assert "spent: refine $" in first.output and "fine-tune ≈ $" in first.output
    with open_duckdb(str(fresh_paths.duckdb), read_only=True) as con:
        n_examples = con.execute("select count(*) from training_examples").fetchone()[0]
        verdicts = con.execute("select count(distinct example_id) from refine_verdicts where provider = 'openai'").fetchone()[0]
        job = con.execute("select provider, status, fine_tuned_model from finetune_jobs").fetchall()
        run = con.execute("select provider, status, n, model from eval_runs").fetchall()
    assert verdicts == n_examples
    assert len(job) == 1 and job[0][:2] == ("openai", "succeeded")
    assert len(run) == 1 and run[0][:2] == ("openai", "finished") and run[0][3] == job[0][2]
    jobs_created = [r for r in fake_openai.state.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"]
    assert len(jobs_created) == 1
    asked = len(fake_openai.state.requests_to("/v1/chat/completions"))

    again = runner.invoke(app, [*args, "--max-cost", "5"], env=env)
    assert again.exit_code == 0, again.output
    assert len(fake_openai.state.requests_to("/v1/chat/completions")) == asked  # no example asked twice
    assert [r for r in fake_openai.state.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"] == jobs_created


def test_beep_run_on_a_path_that_does_not_exist_is_refused_with_exit_2(tmp_path) -> None:
    """The export is refused before any work, as `beep ingest` refuses it: exit 2, and no talk of resuming."""
    result = CliRunner().invoke(app, ["run", str(tmp_path / "nowhere.zip"), "--db", str(tmp_path / "beep.duckdb")],
                                env={"BEEP_WORKDIR": str(tmp_path / ".beep")})
    assert result.exit_code == 2, result.output
    said = "".join(result.output.split())  # rich wraps at COLUMNS (80 under xdist), mid-path too
    assert "nowhere.zipdoesnotexist" in said and "resumes" not in said
