"""A daily build leaves out the dbt unit tests when they passed on the same project, vars and dbt
(issue 25): they read the fixed rows their YAML gives, never the export, so they would pass again."""

from __future__ import annotations

import shutil
from pathlib import Path

from beep.build import build, unit_tests_key, unit_tests_passed_key
from beep.config import PROJECT_DIR, SAMPLE_EXPORT, Paths


def test_a_second_build_keeps_the_unit_tests_and_runs_every_data_test(fresh_paths: Paths, built_paths: Paths) -> None:
    assert unit_tests_passed_key(built_paths) == unit_tests_key(built_paths, None)
    summary = build(fresh_paths, SAMPLE_EXPORT, run_tests=True, quiet=True)
    assert summary.unit_tests_kept
    assert "unit_test" not in summary.dbt_results
    assert sum(summary.dbt_results["test"].values()) == summary.dbt_results["test"].get("pass", 0) > 100
    assert unit_tests_passed_key(fresh_paths) == unit_tests_key(fresh_paths, None)  # still recorded as passed


def test_the_key_follows_the_vars_and_every_project_file(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for name in ("models", "macros", "seeds"):
        shutil.copytree(PROJECT_DIR / name, project / name)
    shutil.copy(PROJECT_DIR / "dbt_project.yml", project / "dbt_project.yml")
    paths = Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep", project_dir=project)
    key = unit_tests_key(paths, None)
    assert unit_tests_key(paths, {"context_messages": 3}) != key
    unit_sql = project / "models" / "intermediate" / "int_slack__messages_cleaned.sql"
    unit_sql.write_text(unit_sql.read_text() + "\n-- a change\n")
    assert unit_tests_key(paths, None) != key
    assert unit_tests_passed_key(paths) is None  # no DuckDB file, no build: nothing passed yet
