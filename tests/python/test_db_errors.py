"""The DuckDB file: a locked file is waited for, then named with what to do; a file that is not a
DuckDB database is refused with what to do; the CLI prints both as messages, not tracebacks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from beep.db import DatabaseBusy, DatabaseUnreadable, connect

BEEP = Path(sys.executable).with_name("beep")


def test_a_file_that_is_not_duckdb_is_refused_with_what_to_do(tmp_path: Path) -> None:
    bad = tmp_path / "beep.duckdb"
    bad.write_text("not a database")
    with pytest.raises(DatabaseUnreadable, match="pass another --db"):
        with connect(bad):
            pass
    out = subprocess.run([str(BEEP), "report", "--db", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and "cannot be opened as a DuckDB file" in out.stderr and "Traceback" not in out.stderr


def test_a_locked_file_is_waited_for_then_named(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "beep.duckdb"
    with connect(db):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(DatabaseBusy, match="locked by another process"):
            with connect(db, wait_seconds=2.0):
                pass
        assert time.monotonic() - started >= 2.0
        assert "another process holds its lock" in capfd.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_duckdb_draws_no_progress_bar_on_stdout(tmp_path) -> None:
    """A query over 2 s made DuckDB draw a bar on stdout (issue 24: it leaked into `beep run`'s output)."""
    from beep.db import connect

    with connect(tmp_path / "beep.duckdb") as con:
        assert con.execute("select current_setting('enable_progress_bar')").fetchone()[0] is False


def test_connections_read_the_layer_schemas_and_create_in_main(tmp_path: Path) -> None:
    """Every connection Beep opens, read-only too, finds the dbt models in their layer schemas by their
    unqualified names (main first); a schema the file lacks is left out (DuckDB refuses it), and an
    unqualified CREATE still lands in main, among Beep's step tables."""
    from beep.db import open_duckdb, table_exists

    db = tmp_path / "beep.duckdb"
    with connect(db) as con:  # no dbt build yet: main only
        assert con.execute("select current_setting('search_path')").fetchone()[0] == "main"
        con.execute("create schema marts")
        con.execute("create table marts.user_labels as select 1 as label")
    with connect(db, read_only=True) as con:
        assert con.execute("select current_setting('search_path')").fetchone()[0] == "main,marts"
        assert con.execute("select label from user_labels").fetchall() == [(1,)]
        assert table_exists(con, "user_labels") and table_exists(con, "ingests") and not table_exists(con, "nothing")
    with open_duckdb(db) as con:
        con.execute("create table my_counts as select 2 as n")
        assert con.execute("select schema_name from duckdb_tables() where table_name = 'my_counts'").fetchall() == [("main",)]


def test_a_file_an_older_beep_built_is_refused_by_the_partial_dbt_refreshes_with_what_to_run(tmp_path: Path) -> None:
    """An older Beep built the dataset in main. refine's and evaluate's own small `dbt run`s ref() the
    dataset in marts, which only a whole `beep build` makes: they say so instead of failing in dbt."""
    from beep.config import Paths
    from beep.db import BuiltByAnOlderBeep, require_layer_schemas
    from beep.refine.refined_model import refresh_refined_models

    paths = Paths(duckdb=tmp_path / "old.duckdb", workdir=tmp_path / ".beep")
    with connect(paths.duckdb) as con:
        con.execute("create table main.training_examples (example_id varchar)")
    with pytest.raises(BuiltByAnOlderBeep, match=r"older Beep.*Run `beep build`"):
        refresh_refined_models(paths, force=True)
    assert not (paths.workdir / "dbt-logs").exists()  # refused before dbt started
    with connect(paths.duckdb) as con:
        con.execute("create schema marts")
        con.execute("create table marts.training_examples (example_id varchar)")
        require_layer_schemas(con)  # built since: nothing to refuse
        con.execute("drop table main.training_examples")
        require_layer_schemas(con)
