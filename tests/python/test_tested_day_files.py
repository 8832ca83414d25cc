"""The fate reconciliation of a daily `beep build` counts afresh only the day files no passing build
counted (macros/tested_day_files.sql, beep.build.record_tested_day_files), and still fails when a
message goes missing.

On a copy of the sample's build (whose passing build recorded every day file as counted), one file's
record is made stale, as a new or changed file's would be: with BEEP_DAY_FILES_TESTED (what `beep
build` passes) the test's compiled SQL reads that file alone and passes; its query fails on a fate
count that lost a message, and on a recorded count that differs from the messages the models hold.
"""

from __future__ import annotations

import re
from pathlib import Path

from beep.build import TESTED_DAY_FILES, EvalRunsTested, kept_tested_day_files, unit_tests_key
from beep.config import SAMPLE_EXPORT, Paths
from beep.db import open_duckdb
from beep.dbt_runner import dbt_env, run_dbt

TEST = ["test", "--select", "assert_fate_counts_reconcile"]


def _compiled(paths: Paths) -> str:
    return (Path(dbt_env(paths)["DBT_TARGET_PATH"]) / "compiled" / "beep" / "tests" / "assert_fate_counts_reconcile.sql").read_text()


def _failing(paths: Paths, sql: str) -> list[tuple]:
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_only_the_files_no_passing_build_counted_are_read_and_a_lost_message_still_fails(fresh_paths: Paths) -> None:
    paths = fresh_paths
    with open_duckdb(str(paths.duckdb)) as con:
        # the sample's passing build recorded every day file it counted, with its messages
        n_files, recorded, staged = con.execute(
            f"select count(*), sum(n_messages), (select count(*) from stg_slack__messages) from {TESTED_DAY_FILES}").fetchone()
        assert n_files == len(list(SAMPLE_EXPORT.glob("*/*.json"))) and recorded == staged > 0
        stale = con.execute(f"select source_file from {TESTED_DAY_FILES} where n_messages > 0 order by 1 limit 1").fetchone()[0]
        con.execute(f"update {TESTED_DAY_FILES} set n_bytes = -1 where source_file = ?", [stale])  # as if it changed
    assert kept_tested_day_files(paths) == n_files - 1

    run_dbt(paths, TEST, quiet=True, export=SAMPLE_EXPORT, extra_env={"BEEP_DAY_FILES_TESTED": "1"})
    scoped = _compiled(paths)
    assert re.findall(r"'([^']+\.json)'", scoped) == [f"{SAMPLE_EXPORT}/{stale}"]  # that file alone is read
    assert _failing(paths, scoped) == []

    with open_duckdb(str(paths.duckdb)) as con:  # a message lost from the fate counts
        con.execute("""update message_fate_counts set n_messages = n_messages - 1
                       where rowid = (select min(rowid) from message_fate_counts where n_messages > 0)""")
    assert _failing(paths, scoped) == [(staged, staged - 1)]  # raw messages, counted ones
    with open_duckdb(str(paths.duckdb)) as con:  # back
        con.execute("""update message_fate_counts set n_messages = n_messages + 1
                       where rowid = (select min(rowid) from message_fate_counts where n_messages > 0)""")
    assert _failing(paths, scoped) == []
    with open_duckdb(str(paths.duckdb)) as con:  # now a kept file's recorded count is off by one
        con.execute(f"update {TESTED_DAY_FILES} set n_messages = n_messages + 1 "
                    f"where source_file = (select min(source_file) from {TESTED_DAY_FILES} where source_file <> ?)", [stale])
    assert _failing(paths, scoped) == [(staged + 1, staged)]

    # without the env var (a plain `dbt build`, an analyst's) every day file is read
    run_dbt(paths, TEST, quiet=True, export=SAMPLE_EXPORT)
    assert "*/*.json" in _compiled(paths) and not re.findall(r"'[^'*]+\.json'", _compiled(paths))

    # files read by other staging code (or from another folder) were not counted by that build
    with open_duckdb(str(paths.duckdb)) as con:
        con.execute(f"update {TESTED_DAY_FILES} set code_fingerprint = 'other'")
    assert kept_tested_day_files(paths) == 0


def test_beep_build_asks_for_it_only_after_a_passing_build_of_the_same_project(fresh_paths: Paths) -> None:
    key = unit_tests_key(fresh_paths, None)
    assert EvalRunsTested.of(fresh_paths, key, full_refresh=False).day_files
    assert EvalRunsTested.of(fresh_paths, key, full_refresh=False).env()["BEEP_DAY_FILES_TESTED"] == "1"
    assert not EvalRunsTested.of(fresh_paths, key, full_refresh=True).day_files  # --rebuild: every file
    assert not EvalRunsTested.of(fresh_paths, "another project", full_refresh=False).day_files
    assert EvalRunsTested.of(fresh_paths, "another project", full_refresh=False).env() == {}
