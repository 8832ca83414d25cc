"""`beep finetune --provider local`: the responder model trained on an export, registered like a remote job."""

from __future__ import annotations

import json
import os

import pytest
from export_testdata import exported_workspace, make_paths, make_rows, write_tables
from typer.testing import CliRunner

from beep.cli import app
from beep.db import open_duckdb
from beep.export.api import ExportFailed, export
from beep.finetune.api import finetune
from beep.finetune.export_data import ExportRejected, export_rows
from beep.checksums import sha256_file
from beep.finetune.local_model import LocalResponderModel


@pytest.fixture
def exported(tmp_path):
    return exported_workspace(tmp_path, n_conversations=18)


def _q(paths, sql, params=()):
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_trains_registers_and_reuses(exported) -> None:
    paths, exp = exported
    result = finetune(paths, export_id=exp.export_id, variant="text+context")
    assert result.provider == "local" and result.status == "succeeded" and not result.reused
    assert result.fine_tuned_model == f"local:{result.job_id}"
    assert result.artifact_sha256 == sha256_file(result.artifact_path)
    row = _q(paths, "select provider, base_model, export_id, status, fine_tuned_model, artifact_path, artifact_sha256, "
                    "seconds, finished_at is not null, hyperparameters from finetune_jobs")
    assert len(row) == 1
    provider, base_model, export_id, status, model, path, sha, seconds, finished, hyper = row[0]
    assert (provider, export_id, status, model, path, sha) == (
        "local", exp.export_id, "succeeded", result.fine_tuned_model, result.artifact_path, result.artifact_sha256)
    assert seconds >= 0 and finished and json.loads(hyper)["variant"] == "text+context"
    assert _q(paths, "select count(*) from finetune_events where job_id = ?", [result.job_id])[0][0] == 2
    # the artifact predicts the validation split from its own rows, best first
    model_obj = LocalResponderModel.load(result.artifact_path)
    valid = export_rows(paths, exp.export_id, "valid")
    top = model_obj.predict_top_k(valid, 2)
    assert sum(t[0][0] == r["label"] for t, r in zip(top, valid)) / len(valid) > 0.8
    # same export + settings: the same job, not retrained
    again = finetune(paths, export_id=exp.export_id, variant="text+context")
    assert again.reused and again.job_id == result.job_id
    # the text-only variant is another job; a deleted artifact is retrained
    text_only = finetune(paths, export_id=exp.export_id, variant="text")
    assert text_only.job_id != result.job_id
    os.remove(result.artifact_path)
    rebuilt = finetune(paths, export_id=exp.export_id, variant="text+context")
    assert not rebuilt.reused and rebuilt.job_id == result.job_id
    assert rebuilt.artifact_sha256 == result.artifact_sha256  # byte-reproducible training


def test_export_rows_carry_prompt_label_and_context(exported) -> None:
    paths, exp = exported
    train = export_rows(paths, exp.export_id, "train")
    assert len(train) == exp.n_train
    first = train[0]
    assert first["prompt"].endswith("\n\n###\n\n") and first["answer"] == first["label"]
    assert first["channel_id"].startswith("C") and isinstance(first["prior_participant_ids"], list)


def test_rejects_a_failed_export(tmp_path) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=2))
    with pytest.raises(ExportFailed) as caught:
        export(paths)
    export_id = caught.value.export_id
    with pytest.raises(ExportRejected, match="failed its checks"):
        finetune(paths, export_id=export_id)
    assert _q(paths, "select count(*) from finetune_jobs")[0][0] == 0


def test_cli_export_then_finetune(tmp_path, monkeypatch) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows())
    monkeypatch.setenv("BEEP_DUCKDB_PATH", str(paths.duckdb))
    monkeypatch.setenv("BEEP_WORKDIR", str(paths.workdir))
    runner = CliRunner()
    out = runner.invoke(app, ["export", "--json"])
    assert out.exit_code == 0, out.output
    exported = json.loads(out.stdout)
    assert exported["n_train"] == 27 and exported["summary"]["errors"] == 0
    assert "gpt-4.1-mini" in exported["estimate"]  # the default base model (export.models.DEFAULT_BASE_MODEL)
    out = runner.invoke(app, ["finetune", "--json"])  # the default ranker needs the conversations dbt builds
    said = " ".join(out.output.split())
    assert out.exit_code != 0 and "int_conversations is missing" in said and "`beep build`" in said
    out = runner.invoke(app, ["finetune", "--json", "--variant", "text+context"])
    assert out.exit_code == 0, out.output
    job = json.loads(out.stdout)
    assert job["status"] == "succeeded" and job["export_id"] == exported["export_id"]
    out = runner.invoke(app, ["finetune", "cancel", job["job_id"]])
    assert out.exit_code == 1 and "nothing to cancel" in out.output
    write_tables(paths.duckdb, make_rows(n_conversations=2))
    out = runner.invoke(app, ["export"])
    assert out.exit_code == 1 and "min_examples" in out.output
