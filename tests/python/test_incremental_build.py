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
from rich.console import Console
from beep.build import build
from beep.commands.build_cmd import print_summary
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
    assert summary.day_files_read == DayFilesRead(0, n_files, 0, summary.day_files_read.n_messages)

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
    # no build here ran the data tests: the scopes pile up for the next tested one (macros/untested_rows.sql)
    with open_duckdb(str(incremental.duckdb), read_only=True) as con:
        assert con.execute("select count(*) from intermediate.int_conversations__untested where whole").fetchone() == (1,)
        assert (channel,) in con.execute("select channel_folder from intermediate.int_conversations__untested "
                                         "where not whole").fetchall()
        assert con.execute("select count(*) from intermediate.int_slack__messages_cleaned__untested "
                           "where ts = ?", [f"{late:.6f}"]).fetchone() == (1,)

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
    # and a reply a minute after the channel's last message before this day: a conversation that goes
    # on across the files, so the channel's cut must come before that conversation began
    newcomer_channel = newcomer_file.parent.name
    before = [m for f in (export / newcomer_channel).glob("*.json") if f.name != newcomer_file.name
              for m in _load(f) if m.get("user") and not m.get("subtype") and "thread_ts" not in m]
    last_before = max(before, key=lambda m: float(m["ts"]))
    other = next(m["user"] for m in before if m["user"] != last_before["user"])
    messages.append({"type": "message", "user": other, "text": f"<@{last_before['user']}> one more thing on that",
                     "ts": f"{float(last_before['ts']) + 60:.6f}"})
    _save(newcomer_file, messages)
    summary = build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    with open_duckdb(str(incremental.duckdb), read_only=True) as con:
        # the channels are recomputed from a cut, not whole: rows before it are kept
        cut, n_kept, crossing_starts = con.execute(
            "select s.from_at, (select count(*) from int_conversation_links k where k.channel_folder = s.channel_folder "
            "and k.message_at < s.from_at), (select min(c.message_at) from int_conversation_links c "
            "where c.conversation_key = (select conversation_key from int_conversation_links r "
            "where r.channel_folder = s.channel_folder and r.ts = ?)) "
            "from int_conversation_links__last_scope s where s.channel_folder = ?",
            [last_before["ts"], newcomer_channel]).fetchone()
        assert cut is not None and n_kept > 0, (cut, n_kept)
        assert cut <= crossing_starts, "the cut falls inside a conversation the new messages continue"
        assert con.execute("select count(*) from int_conversation_links where channel_folder = ? and ts = ? "
                           "and linked_ts = ?", [newcomer_channel, f"{float(last_before['ts']) + 60:.6f}",
                                                 last_before["ts"]]).fetchone() == (1,)
    assert _day_files_read(incremental) == added
    # the examples of the other channels are relabelled in place, not computed again
    assert _recomputed(incremental) == _scoped(added)
    read = summary.day_files_read
    assert (read.n_read, read.n_files) == (len(added), len(list(export.glob("*/*.json"))))
    with open_duckdb(str(incremental.duckdb), read_only=True) as con:
        assert read.n_messages == con.execute("select count(*) from int_conversation_links").fetchone()[0]
    assert 0 < read.n_messages_recomputed < read.n_messages  # the day's channel from its cut on, not the history
    assert read.describe().startswith(f"parsed {len(added)} new or changed day file")
    assert f"conversations computed again for {read.n_messages_recomputed:,} of {read.n_messages:,}" in read.describe()
    shown = Console(record=True, width=400)
    print_summary(summary, shown)  # what `beep build` prints (`beep run` prints the same line)
    assert f"incremental build: {read.describe()}" in shown.export_text()
    _check_equal(export, incremental, tmp_path, "day 6")


def _ts(at: float) -> str:
    return f"{at:.6f}"


def test_a_channel_is_recomputed_from_a_cut_no_link_or_thread_crosses(tmp_path: Path) -> None:
    """The channel models recompute a touched channel from its latest cut before the day's changes
    (macros/incremental_messages.sql, duckdb__channel_cuts): a message whose predecessor is more than
    conversation_gap_minutes older and that no earlier conversation (a thread) goes on past. Two
    cases where a cut placed by only one of the two rules would be wrong, each compared with a build
    from scratch: in a busy channel (over conversation_quiet_messages in the gap) the last messages of
    a burst start conversations of their own, yet a late message @-mentions someone who wrote early in
    the burst and links to them; and a thread opened on day 1 goes on past day 2's quiet gap."""
    people = [f"U{n:07d}" for n in range(1, 21)]
    export = tmp_path / "export"
    (export / "busy").mkdir(parents=True)
    (export / "users.json").write_text(json.dumps([{"id": u, "name": f"person{u[-2:]}", "real_name": f"Person {u[-2:]}",
                                                    "deleted": False, "is_bot": False} for u in people]))
    (export / "channels.json").write_text(json.dumps([{"id": "C0BUSY0001", "name": "busy", "members": people}]))
    day1, day2 = 1_736_157_600.0, 1_736_244_000.0  # 2025-01-06 and -07, 10:00 UTC
    # day 1: a thread opened in the morning, then at noon a burst of 17 messages in 8 minutes, each by
    # someone else and mentioning no one: past the 15th no message links to the one before
    parent = {"type": "message", "user": people[19], "text": "Who owns the deploy pipeline these days?",
              "ts": _ts(day1), "thread_ts": _ts(day1), "reply_count": 1}
    reply = {"type": "message", "user": people[18], "text": "I do, ask away", "ts": _ts(day1 + 120),
             "thread_ts": _ts(day1), "parent_user_id": people[19]}
    burst = [{"type": "message", "user": people[i], "text": f"status update number {i} from me",
              "ts": _ts(day1 + 7200 + 30 * i)} for i in range(17)]
    # and an early message with a second copy in a later file (the first file's copy is kept)
    early = {"type": "message", "user": people[5], "text": "early bird note", "ts": _ts(day1 - 7200)}
    _save(export / "busy" / "2025-01-06.json", [early, parent, reply, *burst])
    _save(export / "busy" / "2025-01-07.json", [
        {"type": "message", "user": people[0], "text": "good morning, anything broken?", "ts": _ts(day2)}])
    _save(export / "busy" / "2025-01-10.json", [{**early, "text": "early bird note, as the second copy says it"}])
    # the same channel's folder named by its id (an export may hold both: the id maps to one channel),
    # with a conversation from 07:55 to 08:05 on day 1: a cut of the name's folder at 08:00 falls inside it
    (export / "C0BUSY0001").mkdir()
    _save(export / "C0BUSY0001" / "2025-01-06.json", [
        {"type": "message", "user": people[10 + i % 2], "text": f"<@{people[10 + (i + 1) % 2]}> point {i} about the rota",
         "ts": _ts(day1 - 7493 + 60 * i)} for i in range(11)])
    incremental = _paths(tmp_path / "incremental")
    build(incremental, export, run_tests=False, quiet=True, select=SELECT)

    def cut_at() -> Any:
        with open_duckdb(str(incremental.duckdb), read_only=True) as con:
            return con.execute("select from_at from int_conversation_links__last_scope where channel_folder = 'busy'"
                               ).fetchone()[0]

    def at(ts: str) -> Any:
        with open_duckdb(str(incremental.duckdb), read_only=True) as con:
            return con.execute("select message_at from int_conversation_links where channel_folder = 'busy' and ts = ?", [ts]).fetchone()[0]

    # a new file with a message a minute after the burst that @-mentions the author of its fifth message
    # (a file of another day: an exporter in another time zone). Cut by conversations alone, the
    # channel would be recomputed from the burst's last message, which is a conversation of its own.
    late = {"type": "message", "user": people[17], "text": f"<@{people[4]}> about your update: is it done?",
            "ts": _ts(day1 + 7200 + 30 * 16 + 60)}
    _save(export / "busy" / "2025-01-08.json", [late])
    build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    with open_duckdb(str(incremental.duckdb), read_only=True) as con:
        assert con.execute("select linked_ts from int_conversation_links where ts = ?",
                           [late["ts"]]).fetchone() == (burst[4]["ts"],)
    assert cut_at() == at(burst[0]["ts"])  # the burst's start: the thread's message before it is 2 hours older
    _check_equal(export, incremental, tmp_path, "a late mention into a busy burst")

    # the thread goes on days later (its parent's day is recomputed), then day 2 is re-exported with its
    # morning message edited: that message has a quiet gap before it but lies inside the thread, so the
    # cut goes back to the thread's parent
    _save(export / "busy" / "2025-01-09.json", [
        {"type": "message", "user": people[19], "text": "thanks, the pipeline question is solved",
         "ts": _ts(day2 + 2 * 86_400), "thread_ts": _ts(day1), "parent_user_id": people[19]}])
    build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    _check_equal(export, incremental, tmp_path, "a thread reply days later")
    day2_file = export / "busy" / "2025-01-07.json"
    edited = _load(day2_file)
    morning = next(m for m in edited if m["ts"] == _ts(day2))
    morning.update(text=morning["text"] + " (edited)", edited={"user": morning["user"], "ts": morning["ts"]})
    _save(day2_file, edited)
    build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    assert cut_at() == at(parent["ts"])
    with open_duckdb(str(incremental.duckdb), read_only=True) as con:
        assert con.execute("select from_at from training_examples__last_scope where channel_folder = 'busy'"
                           ).fetchone()[0] == at(parent["ts"])  # inherited down to the examples
    _check_equal(export, incremental, tmp_path, "an edit inside a thread that spans days")

    # day 1 re-exported without the early message: its copy in an unchanged file is the one kept now,
    # with its own text. The change is that message's, though no changed file holds it any more.
    day1_file = export / "busy" / "2025-01-06.json"
    _save(day1_file, [m for m in _load(day1_file) if m["ts"] != early["ts"]])
    build(incremental, export, run_tests=False, quiet=True, select=SELECT)
    assert cut_at() is None or cut_at() <= at(early["ts"])
    with open_duckdb(str(incremental.duckdb), read_only=True) as con:
        assert con.execute("select clean_text from int_conversations where channel_folder = 'busy' and ts = ?",
                           [early["ts"]]).fetchone()[0] \
            .startswith("early bird note, as the second copy")
    _check_equal(export, incremental, tmp_path, "a message whose kept copy moved to an unchanged file "
                 "(and the examples of the channel's other folder)")
