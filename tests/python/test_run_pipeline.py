"""`beep run`: the whole chain on the sample, the headline beside the baselines, and a rerun that
does no step twice; a failing step is named with how to resume."""

from __future__ import annotations

import duckdb
import pytest
from typer.testing import CliRunner

from beep.cli import app
from beep.config import Paths
from beep.pipeline import RunOptions, StepFailed, run_pipeline


def test_beep_run_end_to_end_then_rerun_does_nothing_twice(fresh_paths: Paths) -> None:
    runner = CliRunner()
    env = {"BEEP_WORKDIR": str(fresh_paths.workdir)}
    first = runner.invoke(app, ["run", "--db", str(fresh_paths.duckdb)], env=env)
    assert first.exit_code == 0, first.output
    for expected in ("macro F1", "top-5", "baseline", "newcomers only", "report:"):
        assert expected in first.output
    with duckdb.connect(str(fresh_paths.duckdb), read_only=True) as con:
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in ("refine_verdicts", "exports", "finetune_jobs", "eval_runs", "predictions", "metrics")}
    assert all(n > 0 for n in counts.values()), counts
    assert counts["exports"] == counts["finetune_jobs"] == counts["eval_runs"] == 1

    result = run_pipeline(fresh_paths, RunOptions())
    assert "build" in result.skipped
    assert result.refine is not None and result.refine.n_decided_now == 0
    assert result.export is not None and result.export.reused
    assert result.finetune is not None and result.finetune.reused
    assert result.evaluation is not None and result.evaluation.reused
    assert result.report_path is not None and result.report_path.exists()
    with duckdb.connect(str(fresh_paths.duckdb), read_only=True) as con:
        again = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in counts}
    assert again == counts


def test_a_failing_step_is_named_with_how_to_resume(fresh_paths: Paths) -> None:
    with pytest.raises(StepFailed) as err:
        run_pipeline(fresh_paths, RunOptions(provider="no-such-provider"))
    assert err.value.step == "refine"
    assert "run the same `beep run` again" in str(err.value)
