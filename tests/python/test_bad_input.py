"""Bad input gets a clear error that names the file and says what to do, or a count — never silent loss."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from beep.build import build
from beep.config import PROJECT_DIR, Paths
from beep.db import open_duckdb
from beep.dbt_runner import DbtFailed
from beep.ingest import IngestError, extract_zip, ingest
from slack_fixtures import small_team, ts


def _paths(tmp_path: Path) -> Paths:
    return Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")


def _fates(db: Path) -> dict[tuple[str, str | None], int]:
    with open_duckdb(str(db), read_only=True) as con:
        return {(f, r): n for f, r, n in con.execute("select fate, reason, sum(n_messages) from message_fate_counts group by all").fetchall()}


# ------------------------------------------------------------------------------ refused input

def test_malformed_day_file_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    export = small_team().write(tmp_path / "export")
    bad = export / "general" / "2024-03-05.json"
    bad.write_text('[{"type": "message", "user": "U001", "text": "hi", "ts": "1709629200.000100"},\n {"user": "U002" "text": "x"}]')
    with pytest.raises(IngestError) as err:
        ingest(_paths(tmp_path), export)
    message = str(err.value)
    assert "general/2024-03-05.json" in message and "line 2" in message and "Re-export" in message
    # dbt on the raw folder refuses too, and DuckDB names the file
    with pytest.raises(DbtFailed) as dbt_err:
        build(_paths(tmp_path), export, run_tests=False, quiet=True, select="stg_slack__messages")
    assert "2024-03-05.json" in str(dbt_err.value)


@pytest.mark.parametrize("missing", ["users.json", "channels.json"])
def test_missing_top_level_file_is_refused_with_what_to_do(tmp_path: Path, missing: str) -> None:
    export = small_team().write(tmp_path / "export", skip=(missing,))
    with pytest.raises(IngestError, match=f"no {missing}"):
        ingest(_paths(tmp_path), export)
    with pytest.raises(DbtFailed) as err:
        build(_paths(tmp_path), export, run_tests=False, quiet=True, select="staging")
    assert f"Missing {missing}" in str(err.value) and "run again" in str(err.value)


def test_day_file_that_is_not_an_array_is_refused(tmp_path: Path) -> None:
    export = small_team().write(tmp_path / "export")
    (export / "general" / "2024-03-06.json").write_text('{"type": "message"}')
    with pytest.raises(IngestError, match=r"general/2024-03-06.json: expected a JSON array"):
        ingest(_paths(tmp_path), export)


def _zip(path: Path, entries: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("entry", "expected"),
    [("../evil.json", "zip slip"), ("/etc/evil.json", "absolute path"), ("ok/../../evil.json", "zip slip")],
)
def test_zip_entries_escaping_the_folder_are_refused(tmp_path: Path, entry: str, expected: str) -> None:
    archive = _zip(tmp_path / "export.zip", {"users.json": b"[]", "channels.json": b"[]", entry: b"[]"})
    with pytest.raises(IngestError) as err:
        ingest(_paths(tmp_path), archive)
    assert entry in str(err.value) and expected in str(err.value)
    assert not (tmp_path / "evil.json").exists()


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "export.zip", {"users.json": b"[]"}, symlink="general/2024-01-01.json")
    with pytest.raises(IngestError, match="symbolic link"):
        ingest(_paths(tmp_path), archive)


def test_zip_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "export.zip", {"users.json": b"[]", "channels.json": b"[" + b" " * 5000 + b"]"})
    with pytest.raises(IngestError, match="over the cap"):
        extract_zip(archive, tmp_path / "out", max_bytes=1000)


def test_zip_with_a_top_folder_is_extracted_and_built(tmp_path: Path) -> None:
    export = small_team().write(tmp_path / "export")
    archive = tmp_path / "Acme Slack export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in export.rglob("*"):
            zf.write(path, "Acme Slack export/" + path.relative_to(export).as_posix())
    paths = _paths(tmp_path)
    result = ingest(paths, archive)
    assert result.export_path.name == "Acme Slack export" and (result.export_path / "users.json").exists()
    assert result.n_messages == 11 and result.n_day_files == 2
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        assert con.execute("select n_messages from ingests").fetchall() == [(11,)]


# ------------------------------------------------------------------------ handled and counted

def test_messy_export_is_built_with_every_problem_counted(tmp_path: Path) -> None:
    team = small_team()
    at = 120.0
    def add(user: str | None, text: str, **extra: object) -> None:
        nonlocal at
        team.msg("general", user, text, ts(at), **extra)
        at += 1
    add("U001", "who knows about the billing export?")
    add(None, "a message without a user")                          # no_user
    add("U002", "")                                                 # empty_text
    add("U003", "x" * (2 * 1024 * 1024))                            # a 2 MB message
    add("U001", "odd \u0000 nul \u200f rtl \u202e override 👩\u200d💻 zwj e\u0301 ok")
    add("U002", "lone \ud800 surrogate here")                      # DuckDB refuses unpaired surrogates
    team.msg("general", "U002", "lone \ud800 surrogate here", ts(at - 1))  # the previous message again (same ts)
    team.msg("secret-project", "U001", "a folder missing from channels.json", ts(200))
    team.msg("secret-project", "U002", "still counted", ts(201))
    export = team.write(tmp_path / "export")
    (export / "general" / "2024-03-10.json").write_bytes(b"")      # zero-byte day file

    paths = _paths(tmp_path)
    # the raw folder is refused by DuckDB (the lone surrogate), naming the file
    with pytest.raises(DbtFailed, match="2024-03-04.json"):
        build(paths, export, run_tests=False, quiet=True, select="stg_slack__messages")

    result = ingest(paths, export)
    counts = result.issue_counts()
    assert counts == {"lone_surrogate_repaired": 2, "empty_file": 1, "unlisted_channel": 1}
    assert result.export_path != export.resolve()                    # repairs go to a prepared copy
    assert "\\ud800" in (export / "general" / "2024-03-04.json").read_text()  # the original is untouched

    summary = build(paths, result.export_path, run_tests=True, quiet=True,
                    select="+training_examples +message_fate_counts stg_slack__day_files")
    fates = _fates(paths.duckdb)
    raw = sum(len(json.loads(p.read_text() or "[]")) for p in result.export_path.glob("*/*.json"))
    assert sum(fates.values()) == raw == summary.n_raw_messages
    assert fates[("excluded", "no_user")] == 1
    assert fates[("excluded", "empty_text")] == 1
    assert fates[("excluded", "duplicate")] == 1
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        prompts = [p for (p,) in con.execute("select prompt from training_examples").fetchall()]
        channels = {c for (c,) in con.execute("select channel_name from training_examples").fetchall()}
        issues = con.execute("select issue, n from ingest_issues order by issue").fetchall()
        [(repaired,)] = con.execute("select clean_text from int_slack__messages_cleaned where clean_text like 'lone%'").fetchall()
        [(odd_raw, odd_clean)] = con.execute("select m.text, c.clean_text from stg_slack__messages m join "
                                             "int_slack__messages_cleaned c using (channel_folder, ts) "
                                             "where m.text like 'odd %'").fetchall()
    assert "secret-project" in channels                              # kept, named after its folder
    assert all(len(p) <= 5000 + len("\n\n###\n\n") for p in prompts)  # the 2 MB message is cut
    assert any(p.startswith("x" * 100) for p in prompts)
    odd = next(p for p in prompts if "nul" in p)
    assert "\x00" not in odd and "\u200f" not in odd and "\u202e" not in odd
    assert "override 👩\u200d💻 zwj" in odd  # a ZWJ emoji sequence is kept whole, not dropped
    from beep.rules.messages import CleaningRules, clean_message
    assert clean_message(odd_raw, CleaningRules.from_project(PROJECT_DIR)) == odd_clean  # the live cleaning equals the macro's
    assert "e\u0301 ok" in odd
    assert repaired == "lone surrogate here"  # U+FFFD is a symbol: the emoji rule removes it
    assert issues == [("empty_file", 1), ("lone_surrogate_repaired", 2), ("unlisted_channel", 1)]
    # the tests that warned are named, with their rows (the folder missing from channels.json)
    assert ("in_a_listed_folder_stg_slack__day_files_channel_folder", 1, ["secret-project"]) in summary.warned_tests
    from io import StringIO

    from rich.console import Console

    from beep.commands.build_cmd import print_summary
    shown = StringIO()
    print_summary(summary, Console(file=shown, width=300))
    assert ("warning: dbt test in_a_listed_folder_stg_slack__day_files_channel_folder warned on 1 row: secret-project "
            "(the data is used" in shown.getvalue())


def test_fate_reconciliation_counts_files_as_duckdb_reads_them(tmp_path: Path) -> None:
    # the reconciliation test counts each file's array elements without the staging models: a
    # zero-byte file, a blank one and `[]` hold no messages, a byte order mark is skipped, exactly as
    # read_json reads them (a plain build, without `beep ingest`'s repairs)
    export = small_team().write(tmp_path / "export")
    general = export / "general"
    (general / "2024-04-01.json").write_bytes(b"")
    (general / "2024-04-02.json").write_text(" \n\t\n")
    (general / "2024-04-03.json").write_text("[]")
    (general / "2024-04-04.json").write_bytes(
        "\ufeff".encode() + json.dumps([{"type": "message", "user": "U001", "text": "after a BOM", "ts": ts(900)}]).encode())
    (general / "2024-04-05.json").write_text(
        json.dumps([{"type": "message", "user": "U002", "text": "blanks after the array", "ts": ts(901)}]) + "\n \t\n")
    paths = _paths(tmp_path)
    build(paths, export, run_tests=True, quiet=True, select="+message_fate_counts assert_fate_counts_reconcile")
    assert sum(_fates(paths.duckdb).values()) == 13


def test_an_export_folder_with_a_quote_in_its_name_builds(tmp_path: Path) -> None:
    export = small_team().write(tmp_path / "Bob's [old] export")
    paths = _paths(tmp_path)
    build(paths, export, run_tests=True, quiet=True, select="+training_examples +message_fate_counts")
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        files = {f for (f,) in con.execute("select distinct source_file from stg_slack__messages").fetchall()}
        assert files and all(not f.startswith("/") and "Bob" not in f for f in files)  # relative to the export
    assert sum(_fates(paths.duckdb).values()) == 11


def test_an_export_without_day_files_is_refused_with_what_to_do(tmp_path: Path) -> None:
    export = small_team().write(tmp_path / "export")
    for day_file in export.glob("*/*.json"):
        day_file.unlink()
    with pytest.raises(DbtFailed) as err:
        build(_paths(tmp_path), export, run_tests=False, quiet=True, select="+training_examples")
    assert "Missing */*.json" in str(err.value) and "one folder per channel" in str(err.value)


def test_a_zwj_emoji_sequence_is_kept_whole_by_the_live_cleaning_too() -> None:
    """`beep predict` and the Slack app clean like the macro: a ZWJ sequence (👩‍💻 = U+1F469 U+200D
    U+1F4BB, with skin tones and U+FE0F too) stays one emoji; a lone pictograph, a dangling joiner and
    :shortcodes: go (clean_emoji)."""
    from beep.rules.messages import CleaningRules, clean_message

    rules = CleaningRules.from_project(PROJECT_DIR)
    assert clean_message("pairing 👩\u200d💻 today", rules) == "pairing 👩\u200d💻 today"
    assert clean_message("👩🏽\u200d💻 and 🏳\ufe0f\u200d🌈", rules) == "👩🏽\u200d💻 and 🏳\ufe0f\u200d🌈"
    assert clean_message("ok 👍 done :tada: 👩\u200d x", rules) == "ok done x"
    assert clean_message("pairing 👩\u200d💻 today", CleaningRules.from_project(PROJECT_DIR, {"clean_emoji": False})) == "pairing 👩\u200d💻 today"


def test_day_files_below_a_conversation_folder_are_counted_not_silently_skipped(tmp_path: Path) -> None:
    """Neither ingest nor dbt reads <folder>/<sub>/<day>.json: a reviewer's export with its channel folders one
    level down lost 4,683 of 5,000 messages with "0 handled problems". Now each such folder is counted and
    named, with the listed conversations that have no folder at the top."""
    export = small_team().write(tmp_path / "export")
    (export / "acme").mkdir()
    (export / "general").rename(export / "acme" / "general")
    (export / "infra" / "2024").mkdir()
    day = next((export / "infra").glob("*.json"))
    (export / "infra" / "2024" / day.name).write_bytes(day.read_bytes())
    result = ingest(_paths(tmp_path), export)
    nested = {i.file: i for i in result.issues if i.issue == "nested_json_files"}
    assert sorted(nested) == ["acme/", "infra/"] and "e.g. acme/general/" in nested["acme/"].detail
    assert nested["infra/"].n == 1 and "not read" in nested["infra/"].detail
    [listed] = [i for i in result.issues if i.issue == "listed_without_folder"]
    assert "general" in listed.detail


def test_a_conversation_listed_twice_is_refused_naming_the_listings(tmp_path: Path) -> None:
    """The same channel in channels.json and groups.json (a channel made private) passed ingest and then failed
    the build on a unique test that named no file."""
    export = small_team().write(tmp_path / "export")
    channels = json.loads((export / "channels.json").read_text())
    (export / "groups.json").write_text(json.dumps([channels[0]]))
    with pytest.raises(IngestError, match=r"groups.json: the conversation '.*' is listed again \(first in channels.json\)"):
        ingest(_paths(tmp_path), export)
