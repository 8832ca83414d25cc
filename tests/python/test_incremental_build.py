"""An incremental build equals a build from scratch, row for row, after every day a daily run adds.

stg_slack__messages is incremental on DuckDB (macros/slack_export_files.sql): a build after the
first reads only the day files that are new or changed since it read them. Here days arrive one by
one into one export folder, with what a real daily export brings: a thread reply days after its
parent (which rewrites the parent's day file: reply_count), the last day re-exported with an edited
and a deleted message, an older day re-exported with a reaction more, a day file emptied and one
gone, a new responder (every label changes). After each step every table and view dbt builds from the export is compared with a
--full-refresh build of the same folder into a fresh DuckDB file, and the compiled SQL shows which
day files the incremental build read.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from beep.build import build
from beep.config import Paths
from beep.day_files import DayFilesRead
from beep.db import open_duckdb
from beep.dbt_runner import dbt_env, run_results
from beep.sample.generator import generate_export

#: every table dbt builds from the export: staging, intermediate and the dataset marts (the marts
#: over the Python steps' tables are full rebuilds over these)
SELECT = "+training_examples +message_fate_counts +user_labels +stg_slack__reactions +stg_slack__day_files"

# 5 incremental dbt runs and 3 from-scratch builds of a 900-message export: 42 s on 2 cores (load 1.5)
pytestmark = pytest.mark.timeout(600)


def _paths(root: Path) -> Paths:
    return Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")


def _load(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text()))


def _save(path: Path, messages: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(messages, indent=1))


def _day_files_read(paths: Paths) -> set[str] | None:
    """The day files the last build's stg_slack__messages read (None: it read the whole glob)."""
    compiled = Path(dbt_env(paths)["DBT_TARGET_PATH"]) / "compiled" / "beep" / "models" / "staging" / "stg_slack__messages.sql"
    sql = compiled.read_text()
    if "where false" in sql:
        return set()
    if "*/*.json" in sql:
        return None
    return {"/".join(m.split("/")[-2:]) for m in re.findall(r"'([^']+\.json)'", sql)}


#: the models kept up to date day file by day file (macros/incremental_messages.sql): message by
#: message, and channel by channel
BY_MESSAGE = ("int_slack__messages_cleaned", "stg_slack__reaction_counts", "stg_slack__reactions")
BY_CHANNEL = ("int_conversation_links", "int_conversations", "training_examples")


def _recomputed(paths: Paths) -> dict[str, set[str]]:
    """The day files each model kept day file by day file had in its last build's scope."""
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        return {model: {r[0] for r in con.execute(
            f"select source_file from {model}__day_files_built where recomputed_in_last_build").fetchall()}
            for model in BY_MESSAGE + BY_CHANNEL}


def _scoped(files: set[str]) -> dict[str, set[str]]:
    return dict.fromkeys(BY_MESSAGE + BY_CHANNEL, files)


def _models(paths: Paths) -> list[str]:
    names = [str(r["unique_id"]).rsplit(".", 1)[-1] for r in run_results(paths)
             if str(r["unique_id"]).startswith("model.") and r["status"] == "success"]
    assert "training_examples" in names and "stg_slack__messages" in names
    return sorted(names)


def _differences(incremental: Paths, scratch: Paths) -> dict[str, tuple[int, int, int]]:
    differences = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{incremental.duckdb}' as inc (read_only)")
        con.execute(f"attach '{scratch.duckdb}' as new (read_only)")
        for name in _models(scratch):
            found = con.execute(  # the model's layer schema (staging, intermediate, marts)
                "select table_schema, column_name from information_schema.columns where table_catalog = 'new' "
                "and table_name = ? order by ordinal_position", [name]).fetchall()
            schema = found[0][0]
            select = ", ".join(f'"{c}"' for _, c in found)
            only_inc, only_new, n = con.execute(f"""
                select
                    (select count(*) from (select {select} from inc."{schema}"."{name}" except all select {select} from new."{schema}"."{name}")),
                    (select count(*) from (select {select} from new."{schema}"."{name}" except all select {select} from inc."{schema}"."{name}")),
                    (select count(*) from new."{schema}"."{name}")""").fetchone()
            if only_inc or only_new:
                differences[name] = (only_inc, only_new, n)
    return differences


def _check_equal(export: Path, incremental: Paths, root: Path, step: str) -> None:
    # a new DuckDB file each time; the dbt folder is kept (dbt's partial parse saves seconds)
    scratch = _paths(root / "scratch")
    scratch.duckdb.unlink(missing_ok=True)
    build(scratch, export, run_tests=False, quiet=True, select=SELECT, full_refresh=True)
    assert _differences(incremental, scratch) == {}, f"after {step}: incremental tables differ from a build from scratch"


def test_days_added_one_by_one_build_the_tables_a_full_refresh_builds(tmp_path: Path) -> None:
    full = tmp_path / "generated"
    generate_export(full, messages=900, seed=11, people=8, channels=4, days=6)
    days = sorted({p.stem for p in full.glob("*/*.json")})
    assert len(days) == 6
    export = tmp_path / "export"
    export.mkdir()
    for top in full.glob("*.json"):
        shutil.copy(top, export / top.name)

    def add_day(day: str) -> set[str]:
        added = set()
        for file in full.glob(f"*/{day}.json"):
            (export / file.parent.name).mkdir(exist_ok=True)
            shutil.copy(file, export / file.parent.name / file.name)
            added.add(f"{file.parent.name}/{file.name}")
        return added

    # the first four days: the first build reads every file
    for day in days[:4]:
        add_day(day)
    incremental = _paths(tmp_path / "incremental")
    build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    assert _day_files_read(incremental) is None
    summary = build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    assert _day_files_read(incremental) == set(), "nothing changed, yet day files were read again"
    assert _recomputed(incremental) == _scoped(set())
    n_files = len(list(export.glob("*/*.json")))
    assert summary.day_files_read == DayFilesRead(0, n_files)

    # day 5, with a reply in a thread whose parent is on day 1: the parent's file changes too
    added = add_day(days[4])
    reply_file = export / min(added)
    channel = reply_file.parent.name
    parent_file = export / channel / f"{days[0]}.json"
    parents = _load(parent_file)
    parent = next(m for m in parents if m.get("user") and not m.get("subtype") and "thread_ts" not in m)
    parent.update(thread_ts=parent["ts"], reply_count=parent.get("reply_count", 0) + 1)
    _save(parent_file, parents)
    replies = _load(reply_file)
    late = max(float(m["ts"]) for m in replies) + 1
    replies.append({"type": "message", "user": parent["user"], "text": "following up on this, days later",
                    "ts": f"{late:.6f}", "thread_ts": parent["ts"], "parent_user_id": parent["user"]})
    _save(reply_file, replies)
    build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    assert _day_files_read(incremental) == added | {f"{channel}/{parent_file.name}"}
    assert _recomputed(incremental) == _scoped(added | {f"{channel}/{parent_file.name}"})
    _check_equal(export, incremental, tmp_path, "day 5 and a late thread reply")

    # day 5 re-exported: a message edited, one deleted; day 2 re-exported with a reaction more,
    # a day-3 file emptied, a day-4 file gone
    last = _load(reply_file)
    edited = next(m for m in last if m.get("user") and not m.get("subtype"))
    edited.update(text=edited["text"] + " (edited: a longer text)", edited={"user": edited["user"], "ts": edited["ts"]})
    deleted = next(m for m in reversed(last) if m is not edited and m.get("user") and m.get("thread_ts") != parent["ts"])
    last.remove(deleted)
    _save(reply_file, last)
    day2 = min(export.glob(f"*/{days[1]}.json"))
    older = _load(day2)
    reacted = next(m for m in older if m.get("user"))
    reacted.setdefault("reactions", []).append({"name": "tada", "users": [reacted["user"]], "count": 1})
    _save(day2, older)
    emptied = max(export.glob(f"*/{days[2]}.json"))
    _save(emptied, [])
    gone = min(export.glob(f"*/{days[3]}.json"))
    gone.unlink()
    build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    relative = {f"{p.parent.name}/{p.name}" for p in (reply_file, day2, emptied)}
    assert _day_files_read(incremental) == relative
    assert _recomputed(incremental) == _scoped(relative)  # (the gone file's rows deleted)
    with open_duckdb(str(incremental.duckdb), read_only=True) as con:
        assert con.execute("select count(*) from stg_slack__messages where source_file = ?",
                           [f"{gone.parent.name}/{gone.name}"]).fetchone() == (0,)
        assert con.execute("select count(*) from stg_slack__messages where ts = ? and channel_folder = ?",
                           [deleted["ts"], channel]).fetchone() == (0,)
        assert con.execute("select text, is_edited from stg_slack__messages where ts = ? and channel_folder = ?",
                           [edited["ts"], channel]).fetchone() == (edited["text"], True)
    _check_equal(export, incremental, tmp_path, "day 5 re-exported")

    # day 6, with a reply by someone new (U0000000, sorted first): every responder's label moves up
    # by one, so every example changes, not only those of the day's channels
    added = add_day(days[5])
    newcomer_file = export / min(added)
    messages = _load(newcomer_file)
    answered = max((m for m in messages if m.get("user") and not m.get("subtype") and "thread_ts" not in m),
                   key=lambda m: float(m["ts"]))
    messages.append({"type": "message", "user": "U0000000", "text": f"<@{answered['user']}> I can take this one",
                     "ts": f"{float(answered['ts']) + 30:.6f}"})
    _save(newcomer_file, messages)
    summary = build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    assert _day_files_read(incremental) == added
    every_file = {f"{f.parent.name}/{f.name}" for f in export.glob("*/*.json")}
    assert _recomputed(incremental) == {**_scoped(added), "training_examples": every_file}
    assert summary.day_files_read == DayFilesRead(len(added), len(list(export.glob("*/*.json"))))
    assert summary.day_files_read.describe().startswith(f"parsed {len(added)} new or changed day file")
    _check_equal(export, incremental, tmp_path, "day 6")
