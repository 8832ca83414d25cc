"""The fate reconciliation of a daily `beep build` reads only the day files no passing run of it
counted (macros/tested_day_files.sql), and still fails when a message goes missing.

The sample's build (a passing run) recorded every day file with its messages, counted from the file.
On a copy, one file's record is made stale, as a new or changed file's would be: with
BEEP_DAY_FILES_TESTED (what `beep build` passes) the test's compiled SQL reads that file alone and
passes; its query fails on a fate count that lost a message, on a recorded count that differs from
the file, and on a listed file it cannot read.
"""

from __future__ import annotations

import re
from pathlib import Path

from beep.build import FRESH_FILES_LIMIT, EvalRunsTested, day_files_counted, unit_tests_key
from beep.config import SAMPLE_EXPORT, Paths
from beep.day_files import TESTED_TABLE
from beep.db import open_duckdb
from beep.dbt_runner import dbt_env, run_dbt

TEST = ["test", "--select", "assert_fate_counts_reconcile"]
FRESH = {"BEEP_DAY_FILES_TESTED": str(FRESH_FILES_LIMIT)}


def _compiled(paths: Paths) -> str:
    return (Path(dbt_env(paths)["DBT_TARGET_PATH"]) / "compiled" / "beep" / "tests" / "assert_fate_counts_reconcile.sql").read_text()


def _files_read(sql: str) -> list[str]:
    """The day files a compiled test names one by one (not a glob)."""
    return [path for path in re.findall(r"'([^']+\.json)'", sql) if "*" not in path]


def _failing(paths: Paths, sql: str) -> list[tuple]:
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        return con.execute(sql).fetchall()


def _execute(paths: Paths, sql: str, *params: object) -> None:
    with open_duckdb(str(paths.duckdb)) as con:
        con.execute(sql, list(params))


def test_only_the_files_no_passing_run_counted_are_read_and_a_lost_message_still_fails(fresh_paths: Paths) -> None:
    paths = fresh_paths
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        n_files, recorded, staged = con.execute(
            f"select count(*), sum(n_messages), (select count(*) from stg_slack__messages) from {TESTED_TABLE}").fetchone()
        stale = con.execute(f"select source_file from {TESTED_TABLE} where n_messages > 0 order by 1 limit 1").fetchone()[0]
    assert n_files == len(list(SAMPLE_EXPORT.glob("*/*.json"))) and recorded == staged > 0
    mark_stale = f"update {TESTED_TABLE} set n_bytes = -1 where source_file = ?"
    _execute(paths, mark_stale, stale)  # as if the file had changed since
    assert day_files_counted(paths, SAMPLE_EXPORT) == (1, n_files - 1)  # what `beep build` says it reads

    run_dbt(paths, TEST, quiet=True, export=SAMPLE_EXPORT, extra_env=FRESH)
    scoped = _compiled(paths)
    assert _files_read(scoped) == [f"{SAMPLE_EXPORT}/{stale}"]  # that file alone is read
    with open_duckdb(str(paths.duckdb), read_only=True) as con:  # the passing run recorded it again
        assert con.execute(f"select n_bytes > 0 and n_messages > 0 from {TESTED_TABLE} where source_file = ?",
                           [stale]).fetchone() == (True,)
    _execute(paths, mark_stale, stale)  # the record as the compiled test saw it
    assert _failing(paths, scoped) == []

    lose = """update message_fate_counts set n_messages = n_messages {} 1
              where rowid = (select min(rowid) from message_fate_counts where n_messages > 0)"""
    _execute(paths, lose.format("-"))  # a message lost from the fate counts
    assert _failing(paths, scoped) == [(staged, staged - 1)]  # raw messages, counted ones
    _execute(paths, lose.format("+"))
    assert _failing(paths, scoped) == []
    # a listed file that cannot be read (gone during the build) fails it rather than counting 0
    assert _failing(paths, scoped.replace(f"{SAMPLE_EXPORT}/{stale}", f"{SAMPLE_EXPORT}/{stale}.gone")) == [(None, staged)]
    # the kept files' recorded counts are what the test adds (not their rows in the models): a record
    # one message off fails it
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        kept = con.execute(f"select sum(n_messages) from {TESTED_TABLE} where source_file <> ?", [stale]).fetchone()[0]
    assert re.search(rf"\+ {kept} as n\b", scoped)
    assert _failing(paths, re.sub(rf"\+ {kept} as n\b", f"+ {kept + 1} as n", scoped)) == [(staged + 1, staged)]

    # without the env var (a plain `dbt build`, an analyst's) every day file is read; and selecting
    # message_fate_counts alone still runs the test (its one parent: the record is found by the graph)
    listed = run_dbt(paths, ["ls", "--select", "message_fate_counts", "--indirect-selection", "cautious",
                             "--resource-type", "test", "--output", "name"], quiet=True, export=SAMPLE_EXPORT)
    assert "assert_fate_counts_reconcile" in listed.stdout
    run_dbt(paths, TEST, quiet=True, export=SAMPLE_EXPORT)
    assert f"read_text('{SAMPLE_EXPORT}/*/*.json')" in _compiled(paths) and _files_read(_compiled(paths)) == []

    # files read by other staging code (or from another folder) were not counted by that run
    _execute(paths, f"update {TESTED_TABLE} set code_fingerprint = 'other'")
    assert day_files_counted(paths, SAMPLE_EXPORT) is None


def test_beep_build_asks_for_it_only_after_a_passing_build_of_the_same_project(fresh_paths: Paths) -> None:
    key = unit_tests_key(fresh_paths, None)
    assert EvalRunsTested.of(fresh_paths, key, full_refresh=False).day_files
    assert EvalRunsTested.of(fresh_paths, key, full_refresh=False).env()["BEEP_DAY_FILES_TESTED"] == str(FRESH_FILES_LIMIT)
    assert not EvalRunsTested.of(fresh_paths, key, full_refresh=True).day_files  # --rebuild: every file
    assert not EvalRunsTested.of(fresh_paths, "another project", full_refresh=False).day_files
    assert EvalRunsTested.of(fresh_paths, "another project", full_refresh=False).env() == {}
