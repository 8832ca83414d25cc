"""`--var` is checked before dbt runs (names and value types against dbt_project.yml), and `beep
build` takes --var and --rebuild like `beep run`."""

from __future__ import annotations

from pathlib import Path

import re

import pytest
from typer.testing import CliRunner

from beep.cli import app
from beep.config import PROJECT_DIR
from beep.dbt_vars import VarError, declared_vars, parse_var_options
from slack_fixtures import small_team


def test_good_vars_parse_as_json() -> None:
    assert parse_var_options(["context_messages=3", "clean_links=false", "mention_style=remove",
                              "conversation_gap_minutes=7.5", "refine_model=gpt-4o-mini"], PROJECT_DIR) == {
        "context_messages": 3, "clean_links": False, "mention_style": "remove",
        "conversation_gap_minutes": 7.5, "refine_model": "gpt-4o-mini"}


@pytest.mark.parametrize(("item", "expected"), [
    ("context_messages=abc", 'context_messages takes a whole number (e.g. 3), got "abc"'),
    ("context_messages=2.5", "context_messages takes a whole number"),
    ("clean_links=yes", "clean_links takes true or false"),
    ("refine_balance=1", "refine_balance takes true or false"),
    ("context_message=3", "no such dbt var. Did you mean context_messages?"),
    ("max_label=3", "Did you mean max_labels?"),
    ("context_messages", "takes KEY=VALUE"),
])
def test_bad_vars_are_refused_with_what_to_pass(item: str, expected: str) -> None:
    with pytest.raises(VarError) as err:
        parse_var_options([item], PROJECT_DIR)
    assert expected in str(err.value)


def test_the_refine_vars_the_models_use_are_declared() -> None:
    declared = declared_vars(PROJECT_DIR)
    used = set()
    for path in [*PROJECT_DIR.glob("models/**/*.sql"), *PROJECT_DIR.glob("macros/*.sql"), *PROJECT_DIR.glob("tests/*.sql")]:
        used |= set(re.findall(r"var\(\s*['\"]([a-z_]+)['\"]", path.read_text()))
    assert {"refine_provider", "refine_model", "refine_fewshot_hash", "refine_balance", "refine_balance_seed"} <= used
    assert used <= set(declared), f"used but not declared in dbt_project.yml: {sorted(used - set(declared))}"


@pytest.mark.parametrize("command", ["build", "run"])
def test_the_cli_refuses_a_bad_var_before_doing_anything(tmp_path: Path, command: str) -> None:
    db = tmp_path / "beep.duckdb"
    for item, expected in (("context_messages=abc", "takes a whole number"), ("context_message=3", "Did you mean context_messages")):
        result = CliRunner().invoke(app, [command, "--db", str(db), "--var", item], env={"BEEP_WORKDIR": str(tmp_path / ".beep")})
        assert result.exit_code == 2, result.output
        assert expected in " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())
        assert "Jinja" not in result.output and "Compilation Error" not in result.output
    assert not db.exists()


def test_dbt_refuses_wrong_refine_vars_before_building(tmp_path: Path) -> None:
    from beep.build import build
    from beep.config import Paths
    from beep.dbt_runner import DbtFailed

    paths = Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")
    export = small_team().write(tmp_path / "export")
    with pytest.raises(DbtFailed) as err:
        build(paths, export, run_tests=False, quiet=True, select="stg_slack__users",
              dbt_vars={"refine_balance": "yes", "refine_balance_seed": "x", "refine_model": ""})
    for expected in ("refine_balance must be true or false", "refine_balance_seed must be a whole number",
                     "refine_model must be null"):
        assert expected in str(err.value)


def test_beep_build_takes_var_and_rebuild(tmp_path: Path) -> None:
    export = small_team().write(tmp_path / "export")
    env = {"BEEP_WORKDIR": str(tmp_path / ".beep")}
    args = ["build", "--db", str(tmp_path / "beep.duckdb"), "--export", str(export), "--no-tests"]
    first = CliRunner().invoke(app, [*args, "--var", "context_messages=2"], env=env)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, [*args, "--var", "context_messages=2"], env=env)
    assert again.exit_code == 0 and "skipped (--rebuild forces it)" in again.output
    forced = CliRunner().invoke(app, [*args, "--var", "context_messages=2", "--rebuild"], env=env)
    assert forced.exit_code == 0 and "skipped" not in forced.output
    from beep.db import open_duckdb
    with open_duckdb(str(tmp_path / "beep.duckdb"), read_only=True) as con:
        assert con.execute("select max(n_context_messages) from training_examples").fetchone()[0] <= 2
