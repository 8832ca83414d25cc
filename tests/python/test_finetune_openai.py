"""Remote fine-tuning against the local OpenAI-compatible test server: real SDK, real HTTP, no network."""

from __future__ import annotations

import json

import duckdb
import openai
import pytest
from export_testdata import make_paths, make_rows, write_tables
from fake_openai import Fault
from fake_openai import fine_tuning as fake_ft

from beep.export.api import ExportFailed, export
from beep.finetune import api as ft_api
from beep.finetune.api import CostLimitExceeded, FinetuneFailed, PollSettings, attach, cancel, finetune
from beep.finetune.export_data import ExportRejected
from beep.finetune.remote import AzureFineTuner, ProviderError
from beep.llm.retry import RetryPolicy

FAST = dict(poll=PollSettings(interval_seconds=0.01, show_progress=False),
            retry=RetryPolicy(max_tries=3, base_seconds=0.01, cap_seconds=0.02))


@pytest.fixture
def exported(tmp_path):
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows())
    return paths, export(paths)


def _q(paths, sql, params=()):
    con = duckdb.connect(str(paths.duckdb), read_only=True)
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
    assert result.fine_tuned_model.startswith("ft:gpt-4.1-nano-2025-04-14:")
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
    assert "metadata" not in body  # Azure jobs do not carry metadata; the local record is the guard
    hyper = json.loads(_q(paths, "select hyperparameters from finetune_jobs where job_id = ?", [result.job_id])[0][0])
    assert hyper["azure_deployment"] == "beep-ft"
    assert finetune(paths, export_id=exp.export_id, provider="azure", azure_endpoint=root, api_version="2024-10-21",
                    azure_deployment="beep-ft", **FAST).reused
    assert len(_creates(fake_openai)) == 1
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
