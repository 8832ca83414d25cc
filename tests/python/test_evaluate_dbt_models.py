"""The dbt evaluation views: built on a fresh DuckDB (typed empty inputs), then live over the
tables `beep evaluate` writes — latest metrics per model, run-to-run comparison, model vs baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _evaluate_world import build_world
from beep.build import FRESH_FILES_LIMIT, EvalRunsTested, unit_tests_key
from beep.config import Paths
from beep.db import open_duckdb
from beep.dbt_runner import DbtFailed, run_dbt
from beep.evaluate.api import evaluate
from beep.evaluate.views import SELECTOR, stale_views

VIEWS = {
    "evaluation_runs", "evaluation_metrics", "evaluation_predictions", "evaluation_latest_metrics",
    "evaluation_run_comparison", "evaluation_model_vs_baselines",
}


def test_views_exist_after_a_plain_dbt_build_before_any_evaluation(built_db: Path) -> None:
    con = open_duckdb(str(built_db), read_only=True)
    try:
        names = {r[0] for r in con.execute("select view_name from duckdb_views() where schema_name = 'marts'").fetchall()}
        assert VIEWS <= names
        for view in VIEWS:
            assert con.execute(f"select count(*) from {view}").fetchone()[0] == 0
    finally:
        con.close()


def test_stale_views_are_the_ones_built_over_the_empty_fallback(tmp_path: Path) -> None:
    con = open_duckdb(str(tmp_path / "v.duckdb"))
    con.execute("create table metrics (eval_run_id varchar)")
    con.execute("create view evaluation_runs as select cast(null as varchar) as eval_run_id where false")
    con.execute("create view evaluation_metrics as select * from main.metrics")
    assert stale_views(con) == ["evaluation_runs"]
    con.close()


def test_views_read_the_evaluation_tables(tmp_path: Path) -> None:
    world = build_world(tmp_path / "w")
    paths = Paths(duckdb=world.db, workdir=tmp_path / "w" / ".beep")
    first = evaluate(paths, model=world.model)
    second = evaluate(paths, model=world.model, new_run=True)
    run_dbt(paths, ["build", "--select", SELECTOR], quiet=True)  # the views and all their data tests
    con = open_duckdb(str(world.db), read_only=True)
    try:
        tables = {r[0] for r in con.execute("select view_name from duckdb_views() where schema_name = 'marts'").fetchall()}
        assert VIEWS <= tables
        assert stale_views(con) == []
        latest = con.execute("select distinct eval_run_id from evaluation_latest_metrics").fetchall()
        assert latest == [(second.eval_run_id,)]
        n_metrics = con.execute("select count(*) from metrics where eval_run_id = ?", [second.eval_run_id]).fetchone()[0]
        assert con.execute("select count(*) from evaluation_latest_metrics").fetchone()[0] == n_metrics
        rows = con.execute(
            """select run_number, previous_eval_run_id, delta from evaluation_run_comparison
               where model = ? and slice = 'all' and metric = 'f1_macro' order by run_number""",
            [world.model],
        ).fetchall()
        assert rows == [(1, None, None), (2, first.eval_run_id, 0.0)]  # same model, same data: no change
        vs = con.execute(
            """select model_value, best_baseline, best_baseline_value, margin from evaluation_model_vs_baselines
               where eval_run_id = ? and slice = 'all' and metric = 'f1_macro'""",
            [second.eval_run_id],
        ).fetchone()
        best = max((v["all"]["f1_macro"], k) for k, v in second.headline.items() if k.startswith("baseline:"))
        assert vs[0] == second.headline[world.model]["all"]["f1_macro"]
        assert (vs[2], vs[1]) == best and abs(vs[3] - (vs[0] - vs[2])) < 1e-12
        n_pred = con.execute("select count(*) from evaluation_predictions where eval_run_id = ?", [first.eval_run_id]).fetchone()[0]
        assert n_pred == 40 * 5
    finally:
        con.close()
    _only_untested_runs_are_tested(paths, world, first, second)


def _only_untested_runs_are_tested(paths: Paths, world: Any, first: Any, second: Any) -> None:
    """macros/untested_eval_runs.sql: given BEEP_EVAL_RUNS_TESTED_THROUGH (what `beep build` passes),
    the tests over every stored prediction check only the runs finished after it; without it, all."""
    con = open_duckdb(str(world.db))
    try:
        first_done = con.execute("select cast(finished_at as varchar) from eval_runs where eval_run_id = ?",
                                 [first.eval_run_id]).fetchone()[0]
        # the older run's stored people lose an id, as if it had been written wrong and tested long ago
        con.execute("""update predictions set top_people = '[{"user_id": null, "probability": 0.5, "reason": null}]'
                       where eval_run_id = ?""", [first.eval_run_id])
    finally:
        con.close()
    people = ["test", "--select", "evaluation_prediction_people"]
    run_dbt(paths, people, quiet=True, extra_env={"BEEP_EVAL_RUNS_TESTED_THROUGH": first_done})  # only the second run
    with pytest.raises(DbtFailed, match="assert_prediction_people_complete"):
        run_dbt(paths, people, quiet=True)  # every run
    # which moment `beep build` passes: the last passing build's, while the project, vars and dbt are the same
    key = unit_tests_key(paths, None)
    con = open_duckdb(str(world.db))
    try:
        newest = con.execute("select cast(max(finished_at) as varchar) from eval_runs").fetchone()[0]
        con.execute("insert or replace into pipeline_steps (step, fingerprint, result, seconds, finished_at) "
                    "values ('build', 'f', ?, 1, current_timestamp)",
                    [f'{{"unit_tests_passed": "{key}", "eval_runs_tested_through": "{first_done}"}}'])
    finally:
        con.close()
    assert EvalRunsTested.of(paths, key, full_refresh=False) == EvalRunsTested(first_done, newest, day_files=True)
    assert EvalRunsTested.of(paths, key, full_refresh=False).env() == {"BEEP_EVAL_RUNS_TESTED_THROUGH": first_done,
                                                                       "BEEP_DAY_FILES_TESTED": str(FRESH_FILES_LIMIT),
                                                                       "BEEP_UNTESTED_ROWS": "1"}
    assert EvalRunsTested.of(paths, key, full_refresh=True).through is None  # --rebuild: every run
    assert EvalRunsTested.of(paths, "another project", full_refresh=False).through is None
    assert second.eval_run_id != first.eval_run_id
