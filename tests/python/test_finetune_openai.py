"""Remote fine-tuning against the local OpenAI-compatible test server: real SDK, real HTTP, no network."""

from __future__ import annotations

import json

import duckdb
import openai
import pytest
from export_testdata import exported_workspace, fast_remote_settings, make_paths, make_rows, write_tables
from fake_openai import Fault
from fake_openai import fine_tuning as fake_ft

from beep.db import open_duckdb
from beep.export.api import ExportFailed, export
from beep.finetune import api as ft_api
from beep.finetune.api import CostLimitExceeded, FinetuneFailed, PollSettings, attach, cancel, finetune
from beep.finetune.export_data import ExportRejected
from beep.finetune.remote import AzureFineTuner, ProviderError
from beep.llm.retry import RetryPolicy

FAST = fast_remote_settings()


@pytest.fixture
def exported(tmp_path):
    return exported_workspace(tmp_path)


def _q(paths, sql, params=()):
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _creates(server) -> list:
    return server.state.requests_to("/v1/fine_tuning/jobs", status=None) and [
        r for r in server.state.requests_to("/v1/fine_tuning/jobs", status=None) if r.method == "POST"]


def test_upload_and_lifecycle_to_succeeded(fake_openai, exported) -> None:
    paths, exp = exported
    seen: list[str] = []
    poll = PollSettings(interval_seconds=0.01, show_progress=False, on_poll=lambda job: seen.append(job.status))
    result = finetune(paths, export_id=exp.export_id, provider="openai", n_epochs=2, poll=poll, retry=FAST["retry"])
    assert result.status == "succeeded" and not result.reused
    assert seen == ["validating_files", "queued", "running", "succeeded"]
    assert result.fine_tuned_model.startswith("ft:gpt-4.1-mini-2025-04-14:")
    # what the provider received: both files, supervised method, suffix, seed, our metadata
    files = fake_openai.state.files
    uploaded = sorted(f.content for f in files.values() if f.purpose == "fine-tune")
    assert uploaded == sorted([exp.train_path.read_bytes(), exp.valid_path.read_bytes()])
    body = _creates(fake_openai)[0].body
    assert body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}
    assert body["suffix"] == "beep" and body["seed"] == 0 and body["validation_file"]
    assert body["metadata"]["beep_export_id"] == exp.export_id
    # what we recorded
    row = _q(paths, "select provider, status, fine_tuned_model, trained_tokens, export_id, checkpoints, result_files, "
                    "error, finished_at is not null from finetune_jobs where job_id = ?", [result.job_id])[0]
    assert row[:5] == ("openai", "succeeded", result.fine_tuned_model, result.trained_tokens, exp.export_id)
    checkpoints, result_files = json.loads(row[5]), json.loads(row[6])
    assert [c["step"] for c in checkpoints] == [6, 5] and checkpoints[0]["model"] == result.fine_tuned_model
    assert result_files[0]["final_metrics"]["train_loss"] == pytest.approx(2.0 / 6, abs=1e-3)
    assert (paths.artifacts_dir / "finetune" / result.job_id / f"{result_files[0]['id']}.csv").exists()
    assert row[7] is None and row[8]
    messages = [m for (m,) in _q(paths, "select message from finetune_events where job_id = ? order by created_at, event_id",
                                  [result.job_id])]
    assert "Step 6/6: training loss=0.3333" in messages and messages[-1] == "The job has successfully completed"
    assert result.estimate is not None and result.estimate.n_epochs == 2


def test_a_rerun_does_not_start_a_second_job_and_files_are_reused(fake_openai, exported) -> None:
    paths, exp = exported
    first = finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    again = finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    assert again.reused and again.job_id == first.job_id
    assert len(_creates(fake_openai)) == 1
    # other settings are another job, but the same bytes are not uploaded twice
    uploads = len(fake_openai.state.requests_to("/v1/files", status=None))
    other = finetune(paths, export_id=exp.export_id, provider="openai", n_epochs=1, **FAST)
    assert other.job_id != first.job_id and len(_creates(fake_openai)) == 2
    posts = [r for r in fake_openai.state.requests_to("/v1/files", status=None) if r.method == "POST"]
    assert len(posts) == 2 and len(fake_openai.state.requests_to("/v1/files", status=None)) == uploads
    assert _q(paths, "select count(*) from finetune_files")[0][0] == 2


def test_a_failed_job_shows_the_providers_error(fake_openai, exported) -> None:
    paths, exp = exported
    fake_ft.configure(fake_openai.state, fail_next={"code": "invalid_n_examples", "message": "Training file has too few examples", "param": "training_file"})
    with pytest.raises(FinetuneFailed, match="invalid_n_examples: Training file has too few examples"):
        finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    status, error = _q(paths, "select status, error from finetune_jobs")[0]
    assert status == "failed" and "too few examples" in error
    # rerunning the same settings reports the failure instead of paying again; --retry-failed starts anew
    with pytest.raises(FinetuneFailed, match="--retry-failed"):
        finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    assert len(_creates(fake_openai)) == 1
    retried = finetune(paths, export_id=exp.export_id, provider="openai", retry_failed=True, **FAST)
    assert retried.status == "succeeded" and len(_creates(fake_openai)) == 2


class Crash(RuntimeError):
    pass


def test_a_crash_while_polling_then_attach(fake_openai, exported) -> None:
    paths, exp = exported

    def crash(job):
        if job.status == "queued":
            raise Crash("process killed")

    with pytest.raises(Crash):
        finetune(paths, export_id=exp.export_id, provider="openai",
                 poll=PollSettings(interval_seconds=0.01, show_progress=False, on_poll=crash), retry=FAST["retry"])
    (job_id, status), = _q(paths, "select job_id, status from finetune_jobs")
    assert status == "queued"
    result = attach(paths, job_id, **FAST)
    assert result.status == "succeeded" and result.job_id == job_id
    assert len(_creates(fake_openai)) == 1
    assert _q(paths, "select status from finetune_jobs")[0][0] == "succeeded"
    # events are recorded once each, across the crash
    n, distinct = _q(paths, "select count(*), count(distinct message) from finetune_events")[0]
    assert n == distinct


def test_a_crash_before_the_job_was_recorded_adopts_the_providers_job(fake_openai, exported, monkeypatch) -> None:
    paths, exp = exported
    real = ft_api._record_remote
    monkeypatch.setattr(ft_api, "_record_remote", lambda *a, **k: (_ for _ in ()).throw(Crash("killed before the write")))
    with pytest.raises(Crash):
        finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    assert _q(paths, "select count(*) from finetune_jobs")[0][0] == 0
    monkeypatch.setattr(ft_api, "_record_remote", real)
    result = finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    assert result.status == "succeeded" and result.reused
    assert len(_creates(fake_openai)) == 1


def test_attach_to_a_job_this_database_never_saw(fake_openai, exported, tmp_path) -> None:
    paths, exp = exported
    done = finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    other = make_paths(tmp_path / "other")
    write_tables(other.duckdb, make_rows())
    export(other)
    result = attach(other, done.job_id, provider="openai", **FAST)
    assert result.status == "succeeded" and result.export_id == exp.export_id


def test_cancel(fake_openai, exported) -> None:
    paths, exp = exported
    fake_ft.configure(fake_openai.state, polls_per_stage=1000)
    running = finetune(paths, export_id=exp.export_id, provider="openai",
                       poll=PollSettings(interval_seconds=0.01, max_wait_seconds=0.05, show_progress=False), retry=FAST["retry"])
    assert running.status == "validating_files"
    cancelled = cancel(paths, running.job_id)
    assert cancelled.status == "cancelled"
    assert _q(paths, "select status from finetune_jobs")[0][0] == "cancelled"
    assert "Fine-tuning job cancelled" in [m for (m,) in _q(paths, "select message from finetune_events")]
    with pytest.raises(ValueError, match="already cancelled"):
        cancel(paths, running.job_id)
    with pytest.raises(FinetuneFailed, match="cancelled"):
        finetune(paths, export_id=exp.export_id, provider="openai", **FAST)


def test_an_export_that_failed_a_check_or_was_altered_is_rejected(fake_openai, tmp_path) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=2))
    with pytest.raises(ExportFailed) as caught:
        export(paths)
    with pytest.raises(ExportRejected, match="failed its checks"):
        finetune(paths, export_id=caught.value.export_id, provider="openai", **FAST)
    write_tables(paths.duckdb, make_rows())
    good = export(paths)
    with open(good.train_path, "a", encoding="utf-8") as handle:
        handle.write('{"messages": []}\n')
    with pytest.raises(ExportRejected, match="changed since export"):
        finetune(paths, export_id=good.export_id, provider="openai", **FAST)
    with pytest.raises(LookupError, match="run `beep export` first"):
        finetune(paths, export_id="exp_missing", provider="openai", **FAST)
    assert fake_openai.state.requests == []


def test_cost_is_checked_before_any_upload(fake_openai, exported) -> None:
    paths, exp = exported
    with pytest.raises(CostLimitExceeded, match="nothing was uploaded"):
        finetune(paths, export_id=exp.export_id, provider="openai", max_cost_usd=0.0, **FAST)
    assert fake_openai.state.requests_to("/v1/files", status=None) == []


def test_the_commands_max_cost_refusal_exits_2_and_says_nothing_about_jobs() -> None:
    """Nothing was uploaded: no "run it again, a job the provider created is found" (it sent nothing), and
    exit 2 as refine's --max-cost refusal."""
    import typer
    from rich.console import Console

    from beep.commands.finetune_cmd import _failed

    console = Console(record=True, width=200)
    with pytest.raises(typer.Exit) as stopped:
        _failed(console, CostLimitExceeded("estimated $3.20 is above --max-cost $0.50: nothing was uploaded"), True)
    assert stopped.value.exit_code == 2
    said = console.export_text()
    assert "nothing was uploaded" in said and "No job was recorded" not in said


def test_provider_errors_are_retried_when_transient_and_shown_when_not(fake_openai, exported) -> None:
    paths, exp = exported
    fake_openai.state.inject(Fault(status=503), times=1, path="/v1/fine_tuning/jobs")
    assert finetune(paths, export_id=exp.export_id, provider="openai", **FAST).status == "succeeded"
    fake_openai.state.inject(Fault(status=400, body={"error": {"message": "Model gpt-x is not available for fine-tuning", "code": "model_not_available"}}),
                             times=1, path="/v1/fine_tuning/jobs")
    with pytest.raises(ProviderError, match="HTTP 400 model_not_available: Model gpt-x is not available"):
        finetune(paths, export_id=exp.export_id, provider="openai", n_epochs=5, **FAST)


def test_azure_client_construction_and_job(fake_openai, exported, monkeypatch) -> None:
    paths, exp = exported
    root = fake_openai.base_url.removesuffix("/v1")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test-key")
    tuner = AzureFineTuner.from_options(azure_endpoint=root, api_version="2024-10-21", deployment="beep-ft")
    assert isinstance(tuner.client, openai.AzureOpenAI)
    assert tuner.endpoint == f"{root}/openai"
    result = finetune(paths, export_id=exp.export_id, provider="azure", azure_endpoint=root, api_version="2024-10-21",
                      azure_deployment="beep-ft", **FAST)
    assert result.status == "succeeded" and result.provider == "azure"
    body = _creates(fake_openai)[0].body
    assert "metadata" not in body  # Azure jobs do not carry metadata: the settings hash tags the suffix instead
    assert body["suffix"].startswith("beep-") and len(body["suffix"]) == len("beep-") + 10
    hyper = json.loads(_q(paths, "select hyperparameters from finetune_jobs where job_id = ?", [result.job_id])[0][0])
    assert hyper["azure_deployment"] == "beep-ft"
    assert finetune(paths, export_id=exp.export_id, provider="azure", azure_endpoint=root, api_version="2024-10-21",
                    azure_deployment="beep-ft", **FAST).reused
    assert len(_creates(fake_openai)) == 1
    con = open_duckdb(str(paths.duckdb))
    con.execute("delete from finetune_jobs")  # as if killed between Azure's answer and our write
    con.close()
    adopted = finetune(paths, export_id=exp.export_id, provider="azure", azure_endpoint=root, api_version="2024-10-21",
                       azure_deployment="beep-ft", **FAST)
    assert adopted.reused and adopted.job_id == result.job_id and len(_creates(fake_openai)) == 1
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    with pytest.raises(Exception, match="AZURE_OPENAI_API_KEY"):
        AzureFineTuner.from_options(azure_endpoint=root, api_version="2024-10-21")


def test_cli_remote_job_cancel_and_attach(fake_openai, exported, monkeypatch) -> None:
    from typer.testing import CliRunner

    from beep.cli import app

    paths, exp = exported
    monkeypatch.setenv("BEEP_DUCKDB_PATH", str(paths.duckdb))
    monkeypatch.setenv("BEEP_WORKDIR", str(paths.workdir))
    runner = CliRunner()
    fake_ft.configure(fake_openai.state, polls_per_stage=1000)
    out = runner.invoke(app, ["finetune", "--provider", "openai", "--poll-interval", "0.01", "--max-wait", "0.05", "--json"])
    assert out.exit_code == 0, out.output
    job = json.loads(out.stdout)
    assert job["status"] == "validating_files" and "estimated training" in out.output
    out = runner.invoke(app, ["finetune", "cancel", job["job_id"]])
    assert out.exit_code == 0 and f"job {job['job_id']} cancelled" in out.stdout
    out = runner.invoke(app, ["finetune", "--attach", job["job_id"], "--poll-interval", "0.01"])
    assert out.exit_code == 1 and "was cancelled" in out.output


# -- faults on every call of the path, and failures after the provider did the work (issue 10, items 2 and 14)

def _fine_tune_files(server) -> list:
    return [f for f in server.state.files.values() if f.purpose == "fine-tune"]


def _assert_one_job_and_two_files_recorded(paths, server, result) -> None:
    [job] = fake_ft.jobs(server.state)
    assert result.job_id == job["id"] and result.status == "succeeded"
    assert _q(paths, "select job_id, status from finetune_jobs") == [(job["id"], "succeeded")]
    files = _fine_tune_files(server)
    assert len(files) == 2, [f.filename for f in files]
    assert {job["training_file"], job["validation_file"]} == {f.id for f in files}
    assert {r[0] for r in _q(paths, "select file_id from finetune_files")} == {f.id for f in files}


FAULTY = dict(poll=PollSettings(interval_seconds=0.01, show_progress=False),
              retry=RetryPolicy(max_tries=4, base_seconds=0.01, cap_seconds=0.02, create_grace_seconds=0.05),
              timeout_seconds=0.5)
SLOW = 0.8  # past the client's 0.5 s timeout


def test_429_timeouts_and_drops_on_upload_create_and_polling(fake_openai, exported) -> None:
    paths, exp = exported
    state = fake_openai.state
    jobs_path = "/v1/fine_tuning/jobs"
    state.inject(Fault(status=429, headers={"retry-after": "0.2"}), path="/v1/files", method="POST")
    state.inject(Fault(kind="drop"), path="/v1/files", method="POST")
    state.inject(Fault(status=429, headers={"retry-after": "0.2"}), path=jobs_path, method="POST")
    state.inject(Fault(kind="drop"), path=jobs_path, method="POST")
    state.inject(Fault(status=429, headers={"retry-after-ms": "100"}), path=jobs_path + "/{id}")
    state.inject(Fault(kind="slow", delay_seconds=SLOW), path=jobs_path + "/{id}")
    state.inject(Fault(kind="drop"), path=jobs_path + "/{id}")
    state.inject(Fault(kind="slow", delay_seconds=SLOW), path=jobs_path + "/{id}/events")
    result = finetune(paths, export_id=exp.export_id, provider="openai", **FAULTY)
    _assert_one_job_and_two_files_recorded(paths, fake_openai, result)
    for path, method in (("/v1/files", "POST"), (jobs_path, "POST")):
        sent = [r for r in state.requests_to(path, status=None) if r.method == method]
        limited = next(i for i, r in enumerate(sent) if r.status == 429)
        assert sent[limited + 1].at - sent[limited].at >= 0.2, "retry-after was not honoured"
    assert all(f is None for *_, f in state._faults), "every injected fault was hit"


@pytest.mark.parametrize(("create_fault", "upload_fault"), [
    (Fault(kind="drop", after=True), Fault(status=500, after=True)),
    (Fault(status=500, after=True), Fault(kind="slow", delay_seconds=SLOW, after=True)),
    (Fault(kind="slow", delay_seconds=SLOW, after=True), Fault(kind="drop", after=True)),
], ids=["create-dropped", "create-500", "create-timeout"])
def test_a_failure_after_the_provider_created_the_job_or_file_adopts_it(fake_openai, exported, create_fault,
                                                                         upload_fault) -> None:
    paths, exp = exported
    state = fake_openai.state
    state.inject(upload_fault, path="/v1/files", method="POST")
    state.inject(create_fault, path="/v1/fine_tuning/jobs", method="POST")
    result = finetune(paths, export_id=exp.export_id, provider="openai", **FAULTY)
    _assert_one_job_and_two_files_recorded(paths, fake_openai, result)
    assert len(_creates(fake_openai)) == 1  # the failed create was not sent again: its job was found
    posts = [r for r in state.requests_to("/v1/files", status=None) if r.method == "POST"]
    assert len(posts) == 2
    assert all(f.filename.startswith(("train.sha256-", "valid.sha256-")) for f in _fine_tune_files(fake_openai))


def test_every_create_failing_after_the_work_still_makes_one_job_and_names_it(fake_openai, exported) -> None:
    """The bug that made 6 jobs with 6 retries: every answer to the create is lost."""
    paths, exp = exported
    fake_openai.state.inject(Fault(status=503, after=True), times=10, path="/v1/fine_tuning/jobs", method="POST")
    result = finetune(paths, export_id=exp.export_id, provider="openai", **FAULTY)
    assert len(fake_ft.jobs(fake_openai.state)) == 1 and len(_creates(fake_openai)) == 1
    assert result.status == "succeeded"


def test_an_error_after_the_job_exists_names_it_for_attach(fake_openai, exported, monkeypatch) -> None:
    from typer.testing import CliRunner

    from beep.cli import app

    paths, exp = exported
    monkeypatch.setenv("BEEP_DUCKDB_PATH", str(paths.duckdb))
    monkeypatch.setenv("BEEP_WORKDIR", str(paths.workdir))
    fake_ft.configure(fake_openai.state, polls_per_stage=1000)
    fake_openai.state.inject(Fault(status=400, body={"error": {"message": "bad poll"}}), times=1,
                             path="/v1/fine_tuning/jobs/{id}")
    out = CliRunner().invoke(app, ["finetune", "--provider", "openai", "--poll-interval", "0.01"])
    [job] = fake_ft.jobs(fake_openai.state)
    assert out.exit_code == 1 and f"beep finetune --attach {job['id']}" in " ".join(out.output.split()), out.output


def _db_jobs(paths) -> list[tuple]:
    import time

    for _ in range(100):
        try:
            return _q(paths, "select job_id, status from finetune_jobs")
        except duckdb.IOException:
            time.sleep(0.05)
    raise AssertionError("could not read the DuckDB file")


def test_kill_9_of_beep_finetune_while_the_job_runs_then_resume_without_a_second_job(fake_openai, exported,
                                                                                    monkeypatch) -> None:
    import signal
    import subprocess
    import sys
    import time

    paths, exp = exported
    fake_ft.configure(fake_openai.state, polls_per_stage=1000)  # the job stays in validation until told otherwise
    env = fake_openai.env()
    env.update(BEEP_DUCKDB_PATH=str(paths.duckdb), BEEP_WORKDIR=str(paths.workdir))
    cmd = [sys.executable, "-m", "beep.commands.finetune_cmd", "finetune", "--provider", "openai",
           "--poll-interval", "0.05"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _db_jobs(paths) or len(fake_openai.state.requests_to("/v1/fine_tuning/jobs/{id}")) < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the job was not recorded in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    [(job_id, status)] = _db_jobs(paths)
    assert status == "validating_files"
    fake_ft.configure(fake_openai.state, polls_per_stage=1)
    said: list[str] = []
    monkeypatch.setattr(ft_api, "_say_default", lambda console: said.append)
    done = finetune(paths, export_id=exp.export_id, provider="openai", **FAST)  # the same command again
    assert done.reused and done.job_id == job_id and done.status == "succeeded"
    assert f"job {job_id} for these settings is validating_files: following it instead of starting another" in said
    assert len(fake_ft.jobs(fake_openai.state)) == 1 and len(_creates(fake_openai)) == 1
    assert _db_jobs(paths) == [(job_id, "succeeded")]
    assert len(_fine_tune_files(fake_openai)) == 2


# -- a server that drops `metadata` (issue item 5): adoption by what the job was made from

def test_a_server_that_drops_metadata_and_a_dropped_create_still_make_one_job(fake_openai, exported,
                                                                              monkeypatch) -> None:
    paths, exp = exported
    fake_ft.configure(fake_openai.state, drop_metadata=True)
    fake_openai.state.inject(Fault(kind="drop", after=True), path="/v1/fine_tuning/jobs", method="POST")
    said: list[str] = []
    monkeypatch.setattr(ft_api, "_say_default", lambda console: said.append)
    result = finetune(paths, export_id=exp.export_id, provider="openai", **FAULTY)
    [job] = fake_ft.jobs(fake_openai.state)
    assert job["metadata"] is None  # the server kept nothing to find the job by
    assert result.job_id == job["id"] and result.status == "succeeded" and len(_creates(fake_openai)) == 1
    assert any(line.startswith(f"adopted existing openai fine-tuning job {job['id']}") for line in said), said
    assert not any(line.startswith("created ") for line in said), said
    # other settings on the same files are another job, not the one adopted
    other = finetune(paths, export_id=exp.export_id, provider="openai", n_epochs=1, **FAULTY)
    assert other.job_id != job["id"] and len(fake_ft.jobs(fake_openai.state)) == 2


def test_a_crash_before_the_job_was_recorded_adopts_it_from_a_server_that_drops_metadata(fake_openai, exported,
                                                                                         monkeypatch) -> None:
    paths, exp = exported
    fake_ft.configure(fake_openai.state, drop_metadata=True)
    real = ft_api._record_remote
    monkeypatch.setattr(ft_api, "_record_remote", lambda *a, **k: (_ for _ in ()).throw(Crash("killed before the write")))
    with pytest.raises(Crash):
        finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    assert _q(paths, "select count(*) from finetune_jobs")[0][0] == 0
    monkeypatch.setattr(ft_api, "_record_remote", real)
    said: list[str] = []
    monkeypatch.setattr(ft_api, "_say_default", lambda console: said.append)
    result = finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    [job] = fake_ft.jobs(fake_openai.state)
    assert result.job_id == job["id"] and result.status == "succeeded" and result.reused
    assert len(_creates(fake_openai)) == 1 and len(_fine_tune_files(fake_openai)) == 2
    assert any(line.startswith(f"adopted existing openai fine-tuning job {job['id']}") for line in said), said
    assert _q(paths, "select count(*) from pipeline_steps where step = 'finetune_create'")[0][0] == 0
