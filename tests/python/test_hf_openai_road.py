"""The OpenAI road, honestly: a non-retired default base model, and OpenAI's refusal to create a
fine-tuning job (its wind-down of self-serve fine-tuning, or a shut-down base model) explained with the
dates and the alternatives (`--provider hf`, Azure OpenAI). Against the local fake OpenAI server."""

from __future__ import annotations

import pytest
from export_testdata import exported_workspace, fast_remote_settings
from fake_openai import fine_tuning as fake_ft
from typer.testing import CliRunner

from beep.db import open_duckdb
from beep.export.models import DEFAULT_BASE_MODEL
from beep.finetune.api import finetune
from beep.finetune.remote import OPENAI_FINE_TUNING_WIND_DOWN, FineTuningUnavailable, ProviderError

FAST = fast_remote_settings()


@pytest.fixture
def exported(tmp_path):
    return exported_workspace(tmp_path)


def _jobs(paths) -> int:
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        return con.execute("select count(*) from finetune_jobs").fetchone()[0]
    finally:
        con.close()


def test_the_default_base_model_is_one_openai_still_fine_tunes(fake_openai, exported) -> None:
    paths, exp = exported
    assert exp.base_model == DEFAULT_BASE_MODEL == "gpt-4.1-mini-2025-04-14"
    shut_down = [what for day, what in OPENAI_FINE_TUNING_WIND_DOWN if day <= "2026-12-01"]
    assert not any(DEFAULT_BASE_MODEL in what for what in shut_down)  # nano, the former default, is there
    assert any("gpt-4.1-nano-2025-04-14" in what for what in shut_down)
    result = finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    create = [r for r in fake_openai.state.requests_to("/v1/fine_tuning/jobs") if r.method == "POST"][0]
    assert create.body["model"] == DEFAULT_BASE_MODEL and result.status == "succeeded"


@pytest.mark.parametrize("fault", [fake_ft.FINE_TUNING_CLOSED, fake_ft.BASE_MODEL_SHUT_DOWN])
def test_a_refused_job_create_says_why_and_where_to_go(fake_openai, exported, fault) -> None:
    paths, exp = exported
    fake_openai.state.inject(fault, path="/v1/fine_tuning/jobs", method="POST")
    with pytest.raises(FineTuningUnavailable) as caught:
        finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    text = str(caught.value)
    assert f"HTTP {fault.status}" in text and fault.body["error"]["message"] in text  # what OpenAI said
    for needed in ("2026-05-07", "2026-07-02", "2027-01-06", "--provider hf", "Azure OpenAI", "--provider azure",
                   "docs/finetune-open-model.md", "Nothing was trained or charged"):
        assert needed in text, needed
    assert _jobs(paths) == 0
    posts = [r for r in fake_openai.state.requests_to("/v1/fine_tuning/jobs", status=None) if r.method == "POST"]
    assert len(posts) == 1  # a refusal is not retried


def test_other_refusals_stay_the_providers_own_message(fake_openai, exported) -> None:
    from fake_openai import Fault

    paths, exp = exported
    fake_openai.state.inject(Fault(status=400, body={"error": {"message": "n_epochs must be at most 50",
                                                                "type": "invalid_request_error", "code": None}}),
                             path="/v1/fine_tuning/jobs", method="POST")
    with pytest.raises(ProviderError) as caught:
        finetune(paths, export_id=exp.export_id, provider="openai", **FAST)
    assert not isinstance(caught.value, FineTuningUnavailable) and "n_epochs must be at most 50" in str(caught.value)


def test_the_cli_shows_the_explanation_and_no_misleading_rerun_advice(fake_openai, exported, monkeypatch) -> None:
    from beep.cli import app

    paths, _ = exported
    monkeypatch.setenv("BEEP_DUCKDB_PATH", str(paths.duckdb))
    monkeypatch.setenv("BEEP_WORKDIR", str(paths.workdir))
    fake_openai.state.inject(fake_ft.FINE_TUNING_CLOSED, path="/v1/fine_tuning/jobs", method="POST")
    out = CliRunner().invoke(app, ["finetune", "--provider", "openai", "--poll-interval", "0.01"])
    said = " ".join(out.output.split())
    assert out.exit_code == 1 and "winding down self-serve fine-tuning" in said and "--provider hf" in said
    assert "Run the same command again" not in said
