"""Tables materialized 'reusable_table' (staging, intermediate) are kept while their inputs and SQL
are unchanged, and rebuilt as soon as either changes (macros/reusable_table.sql)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from beep.build import build
from beep.config import Paths
from beep.db import open_duckdb
from slack_fixtures import small_team, ts

#: The dataset models (and the day-file listing) without the refine/evaluation marts.
DATASET = "+training_examples +message_fate_counts stg_slack__day_files"
EXPORT_TABLES = ("stg_slack__messages", "stg_slack__day_files", "stg_slack__users", "stg_slack__channels")
CHAIN = ("int_slack__messages_cleaned", "int_conversation_links", "int_conversations")

#: Marks every row of a table so that a kept table (the very same rows) is told from a rebuilt one.
MARKS = {
    "stg_slack__messages": ("text_chars = -7", "text_chars = -7"),
    "stg_slack__day_files": ("n_bytes = n_bytes + 7000000000", "n_bytes >= 7000000000"),
    "stg_slack__users": ("source_file = 'marked'", "source_file = 'marked'"),
    "stg_slack__channels": ("purpose = 'marked'", "purpose = 'marked'"),
    "int_slack__messages_cleaned": ("source_file = 'marked'", "source_file = 'marked'"),
    "int_conversation_links": ("thread_ts = 'marked'", "thread_ts = 'marked'"),
    "int_conversations": ("channel_name = 'marked'", "channel_name = 'marked'"),
    "training_examples": ("prompt = 'marked'", "prompt = 'marked'"),
}


def _paths(tmp_path: Path) -> Paths:
    return Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")


def _mark(db: Path, *tables: str) -> None:
    with open_duckdb(str(db)) as con:
        for table in tables:
            con.execute(f"update {table} set {MARKS[table][0]}")


def _kept(db: Path, *tables: str) -> dict[str, bool]:
    """For each table, whether it still holds the marked rows (kept, not rebuilt)."""
    with open_duckdb(str(db), read_only=True) as con:
        return {t: bool(con.execute(f"select bool_and({MARKS[t][1]}) from {t}").fetchone()[0]) for t in tables}


def _n_messages(db: Path) -> int:
    with open_duckdb(str(db), read_only=True) as con:
        return con.execute("select count(*) from stg_slack__messages").fetchone()[0]


def test_tables_are_kept_until_their_inputs_or_sql_change(tmp_path: Path) -> None:
    export = small_team().write(tmp_path / "export")
    paths = _paths(tmp_path)
    build(paths, export, run_tests=False, quiet=True, select=DATASET)
    n_before = _n_messages(paths.duckdb)
    everything = (*EXPORT_TABLES, *CHAIN, "training_examples")

    # a var only training_examples reads: everything upstream of it is kept
    _mark(paths.duckdb, *everything)
    build(paths, export, run_tests=False, quiet=True, select=DATASET, dbt_vars={"context_messages": 3})
    assert _kept(paths.duckdb, *everything) == {**{t: True for t in (*EXPORT_TABLES, *CHAIN)}, "training_examples": False}

    # a var of the conversation split: the links and what reads them are rebuilt, the cleaning is kept
    _mark(paths.duckdb, *everything)
    build(paths, export, run_tests=False, quiet=True, select=DATASET, dbt_vars={"conversation_split": "gap"})
    assert _kept(paths.duckdb, *everything) == {
        **{t: True for t in EXPORT_TABLES}, "int_slack__messages_cleaned": True,
        "int_conversation_links": False, "int_conversations": False, "training_examples": False}

    # a day file changes (a message more): all is rebuilt from it, and the reconciliation passes
    _mark(paths.duckdb, *everything)
    day_file = sorted((export / "general").glob("*.json"))[0]
    messages = json.loads(day_file.read_text())
    messages.append({"type": "message", "user": "U001", "text": "one more", "ts": ts(5000)})
    day_file.write_text(json.dumps(messages))
    build(paths, export, run_tests=True, quiet=True, select=f"{DATASET} assert_fate_counts_reconcile")
    kept = _kept(paths.duckdb, *everything)
    assert kept == {**{t: False for t in everything}, "stg_slack__users": True, "stg_slack__channels": True}
    assert _n_messages(paths.duckdb) == n_before + 1
    # stg_slack__messages is incremental (macros/slack_export_files.sql): only that file was read again
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        assert con.execute("select bool_and((text_chars = -7) = (source_file <> ?)) from stg_slack__messages",
                           [f"general/{day_file.name}"]).fetchone() == (True,)

    # only a day file's modification time changes: rebuilt (the check lists the files, never opens them)
    _mark(paths.duckdb, *EXPORT_TABLES)
    stat = day_file.stat()
    os.utime(day_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    build(paths, export, run_tests=False, quiet=True, select=DATASET)
    assert _kept(paths.duckdb, "stg_slack__messages", "stg_slack__day_files") == {
        "stg_slack__messages": False, "stg_slack__day_files": False}

    # nothing changed: kept; --full-refresh (beep build --rebuild) rebuilds them all the same
    _mark(paths.duckdb, *everything)
    # (and the upgrade from a Beep before the layer schemas, which built every model in main: such a
    # copy, here made by hand, hides the model's table, main being first in the search path, until
    # the next build drops it, with the day-file listings kept beside it; nothing else in main goes)
    with open_duckdb(str(paths.duckdb)) as con:
        con.execute("create table main.training_examples as select * from marts.training_examples limit 0")
        con.execute("create table main.training_examples__day_files_built as select 1 as old")
        con.execute("create view main.int_conversations as select * from intermediate.int_conversations limit 0")
        con.execute("create table main.my_saved_counts as select 1 as n")  # an analyst's own tables
        con.execute("create table main.training_examples__q3_snapshot as select 1 as n")  # named after a model
        assert con.execute("select count(*) from training_examples").fetchone() == (0,)  # hidden
    build(paths, export, run_tests=False, quiet=True, select=DATASET)
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        assert sorted(r[0] for r in con.execute("select table_name from information_schema.tables where table_schema = 'main' "
                                                "and (table_name like 'training%' or table_name like 'int_%' or table_name like 'my_%' "
                                                "or table_name = 'ingests')").fetchall()) == [
            "ingests", "my_saved_counts", "training_examples__q3_snapshot"]
        assert con.execute("select count(*) from training_examples").fetchone()[0] > 0  # marts' again
    assert all(_kept(paths.duckdb, *everything[:-1]).values())
    build(paths, export, run_tests=False, quiet=True, select=DATASET, full_refresh=True)
    assert not any(_kept(paths.duckdb, *everything).values())

    # the same files' contents in another folder: rebuilt (the SQL names the folder)
    _mark(paths.duckdb, "stg_slack__messages")
    other = shutil.copytree(export, tmp_path / "other")
    build(paths, other, run_tests=False, quiet=True, select="stg_slack__messages")
    assert not _kept(paths.duckdb, "stg_slack__messages")["stg_slack__messages"]

    # a table of that name without Beep's fingerprint (made by hand, or by an older Beep): rebuilt,
    # and a model over a table without one (here: made by hand) is rebuilt too
    with open_duckdb(str(paths.duckdb)) as con:
        con.execute("create or replace table staging.stg_slack__messages as select * from staging.stg_slack__messages limit 1")
    _mark(paths.duckdb, "int_slack__messages_cleaned")
    build(paths, other, run_tests=False, quiet=True, select="int_slack__messages_cleaned")
    assert not _kept(paths.duckdb, "int_slack__messages_cleaned")["int_slack__messages_cleaned"]
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        assert con.execute("select count(*) from int_slack__messages_cleaned").fetchone()[0] == 1
    build(paths, other, run_tests=False, quiet=True, select="stg_slack__messages")
    assert _n_messages(paths.duckdb) == n_before + 1
