"""Ingest guards: zip bombs refused on their compression ratio, exports without messages refused,
and what an export holds but Beep does not read counted in ingest_issues."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from beep.build import BuildRefused, build
from beep.config import Paths
from beep.ingest import IngestError, extract_zip, ingest
from slack_fixtures import small_team


def _paths(tmp_path: Path) -> Paths:
    return Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")


def _bomb(path: Path, size: int = 8 * 1024**2) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("users.json", "[]")
        zf.writestr("channels.json", "[]")
        zf.writestr("general/2024-01-01.json", b"\0" * size)  # ~1000:1
    return path


def test_a_member_over_the_compression_ratio_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    archive = _bomb(tmp_path / "bomb.zip")
    with pytest.raises(IngestError) as err:
        ingest(_paths(tmp_path), archive)  # far under the 20 GB total cap
    message = str(err.value)
    assert "general/2024-01-01.json" in message and "100:1" in message and "--max-ratio" in message
    assert not any((tmp_path / ".beep" / "exports").glob("**/*.json"))


def test_a_member_whose_header_understates_its_size_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    archive = _bomb(tmp_path / "bomb.zip")
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("general/2024-01-01.json")
    # rewrite the declared size (local header and central directory) to look harmless
    true_size = info.file_size.to_bytes(4, "little")
    raw = raw.replace(true_size, (1000).to_bytes(4, "little"))
    archive.write_bytes(bytes(raw))
    with pytest.raises(IngestError, match="general/2024-01-01.json"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_the_ratio_is_configurable_and_small_members_are_exempt(tmp_path: Path) -> None:
    archive = _bomb(tmp_path / "bomb.zip")
    extract_zip(archive, tmp_path / "out", max_ratio=5000)
    assert (tmp_path / "out" / "general" / "2024-01-01.json").stat().st_size == 8 * 1024**2
    small = _bomb(tmp_path / "small.zip", size=64 * 1024)  # highly compressible, but 64 KB can do no harm
    extract_zip(small, tmp_path / "out2")


def _empty_export(root: Path) -> Path:
    export = small_team().write(root)
    for day_file in export.glob("*/*.json"):
        day_file.write_text("[]")
    return export


def test_an_export_without_messages_is_refused_by_ingest_naming_it(tmp_path: Path) -> None:
    export = _empty_export(tmp_path / "empty export")
    with pytest.raises(IngestError, match="holds no messages") as err:
        ingest(_paths(tmp_path), export)
    assert str(export) in str(err.value)


def test_an_export_without_messages_is_refused_by_build_naming_it(tmp_path: Path) -> None:
    export = _empty_export(tmp_path / "empty export")
    with pytest.raises(BuildRefused, match="holds no messages") as err:
        build(_paths(tmp_path), export, run_tests=False, quiet=True)
    assert str(export) in str(err.value)
    assert not (tmp_path / ".beep" / "dbt-target").exists() and not (tmp_path / ".beep" / "dbt-logs").exists()  # refused before dbt ran


# ------------------------------------------------------------------ counted in ingest_issues

def test_non_json_files_and_unknown_user_ids_are_counted_and_the_build_summary_says_so(tmp_path: Path) -> None:
    from beep.db import open_duckdb
    from typer.testing import CliRunner

    from beep.cli import app
    from slack_fixtures import ts

    team = small_team()
    team.msg("general", "U999", "who am I?", ts(42))
    team.msg("general", "U999", "still nobody in users.json", ts(43))
    team.msg("infra", "U998", "me neither", ts(66))
    export = team.write(tmp_path / "export")
    (export / "general" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (export / "infra" / "notes.txt").write_text("not a day file")

    paths = _paths(tmp_path)
    result = ingest(paths, export)
    counts = result.issue_counts()
    assert counts["non_json_file"] == 2 and counts["unknown_user"] == 3
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        rows = con.execute("select file, issue, n, detail from ingest_issues order by file").fetchall()
    assert ("general/.DS_Store", "non_json_file") in {(f, i) for f, i, _, _ in rows}
    unknown = {f: (n, d) for f, i, n, d in rows if i == "unknown_user"}
    assert unknown["general/2024-03-04.json"][0] == 2 and "U999" in unknown["general/2024-03-04.json"][1]

    cli = CliRunner().invoke(app, ["build", "--db", str(paths.duckdb), "--no-tests"], env={"BEEP_WORKDIR": str(paths.workdir)})
    assert cli.exit_code == 0, cli.output
    flat = " ".join(cli.output.split())
    assert "3 messages come from 2 user id(s) missing from users.json" in flat
    assert "non_json_file 2" in flat and "unknown_user 3" in flat


# ------------------------------------------------------------------ said on screen, naming the file (issue item 9)

def test_a_zero_byte_day_file_is_named_on_screen_by_beep_ingest_and_by_run_s_ingest_step(tmp_path: Path, capsys) -> None:
    from typer.testing import CliRunner

    from beep.cli import app

    export = small_team().write(tmp_path / "export")
    (export / "general" / "2024-03-10.json").write_bytes(b"")
    paths = _paths(tmp_path)
    cli = CliRunner().invoke(app, ["ingest", str(export), "--db", str(paths.duckdb)],
                             env={"BEEP_WORKDIR": str(paths.workdir)})
    assert cli.exit_code == 0, cli.output
    assert "general/2024-03-10.json: empty_file - zero bytes: no messages" in cli.output, cli.output
    # `beep run` calls ingest() as it is: the default prints the same lines on stderr
    capsys.readouterr()
    ingest(paths, export)
    assert "general/2024-03-10.json: empty_file - zero bytes: no messages" in capsys.readouterr().err


def test_a_duplicate_ts_with_another_text_is_an_issue_and_an_identical_copy_is_not(tmp_path: Path) -> None:
    import json

    from beep.db import open_duckdb

    from slack_fixtures import day_of, ts

    team = small_team()
    team.msg("general", "U001", "the deploy is green", ts(42))
    team.msg("general", "U001", "the deploy is red", ts(42))       # same key, other text
    team.msg("general", "U002", "copied twice", ts(43))
    team.msg("general", "U002", "copied twice", ts(43))            # an identical copy: left alone
    team.msg("infra", "U003", "same ts in another folder", ts(42))  # another key
    export = team.write(tmp_path / "export")
    first = f"general/{day_of(ts(42))}.json"
    later = export / "general" / "2030-01-01.json"  # the key again in a later day file (a merged re-export)
    later.write_text(json.dumps([{"type": "message", "user": "U001", "text": "edited since", "ts": ts(42)},
                                 {"type": "message", "user": "U001", "text": "the deploy is green", "ts": ts(42)}]))
    paths = _paths(tmp_path)
    result = ingest(paths, export)
    assert result.issue_counts() == {"duplicate_ts_different_text": 2}
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        rows = con.execute("select file, n, detail from ingest_issues where issue = 'duplicate_ts_different_text' "
                           "order by file").fetchall()
    assert [(f, n) for f, n, _ in rows] == [(first, 1), ("general/2030-01-01.json", 1)]
    assert ts(42) in rows[0][2] and "excluded as duplicate" in rows[0][2]
    assert f"{ts(42)} (also in {first})" in rows[1][2]  # only the copy with other text; the identical one is not



def test_an_enterprise_export_s_variants_are_read_as_their_listed_conversations(tmp_path: Path) -> None:
    """What real exports do that the sample does not, in one export (one build):
    - users.json (the workspace) and org_users.json (the organization, a superset) both present: a
      person only in org_users.json is known to ingest and dbt alike, one in both keeps users.json's row;
    - a private channel (groups.json) in a folder named by its id: the listed channel's id and name;
    - a folder named in another Unicode form (``cafe`` + U+0301, as a zip made on macOS has it) than
      channels.json's ``café``: that channel, the prepared copy naming the folder as the listing does;
    - a message whose text is empty and whose words are in its blocks: kept (tests/python/test_blocks_text.py).
    Nothing is counted unlisted or unknown, no dbt test warns, and the export itself is not changed."""
    import json

    from beep.db import open_duckdb
    from slack_fixtures import ts
    from test_blocks_text import RICH

    nfc, nfd = "caf\u00e9", "cafe\u0301"
    team = small_team()
    team.msg("general", "W777", "I am in the organization's list only", ts(42))
    team.msg("G0SECRET1", "U001", "the launch date moves to friday, can you check the budget?", ts(300))
    team.msg("G0SECRET1", "U002", "budget is fine for friday", ts(301))
    team.msg("G0SECRET1", "U003", "then friday it is", ts(302))
    team.channel("C0CAFE0001", nfc)
    team.msg(nfc, "U001", "the espresso machine is broken again, who can fix it?", ts(600))
    team.msg(nfc, "U002", "I will look at it after lunch", ts(601))
    team.msg("general", "U001", "", ts(500), blocks=RICH)
    export = team.write(tmp_path / "export")
    org = json.loads((export / "users.json").read_text())
    org = [({**u, "name": "alice-org", "profile": {"display_name": "Alice of the org"}} if u["id"] == "U001" else u)
           for u in org] + [{"id": "W777", "name": "wanda", "profile": {"display_name": "Wanda"}}]
    (export / "org_users.json").write_text(json.dumps(org))
    (export / "groups.json").write_text(json.dumps([{"id": "G0SECRET1", "name": "launch-plans", "created": 1700000000,
                                                     "is_archived": False, "members": ["U001", "U002", "U003"]}]))
    (export / nfc).rename(export / nfd)
    paths = _paths(tmp_path)

    # a zip takes the other path (the renames happen in the extracted folder): no build needed to see them
    zipped = ingest(paths, _zipped(export, tmp_path / "export.zip"))
    assert (zipped.export_path / nfc).is_dir() and not (zipped.export_path / nfd).exists()

    result = ingest(paths, export)
    expected = {"folder_name_normalized": 1, "text_from_blocks": 1}
    assert zipped.issue_counts() == result.issue_counts() == expected, result.issue_counts()
    assert (result.export_path / nfc).is_dir() and not (result.export_path / nfd).exists()
    summary = build(paths, result.export_path, run_tests=True, quiet=True,
                    select="+training_examples +message_fate_counts stg_slack__day_files")
    assert summary.warned_tests == [] and summary.n_unknown_user_messages == 0
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        users = {u: (n, f) for u, n, f in con.execute("select user_id, user_name, source_file from stg_slack__users").fetchall()}
        channels = dict(con.execute("select channel_folder, list(distinct [channel_id, channel_name, is_listed_channel::varchar]) "
                                    "from int_slack__messages_cleaned group by 1").fetchall())
        examples = dict(con.execute("select channel_id, count(*) from training_examples group by 1").fetchall())
        [(blocks_reason,)] = con.execute("select exclusion_reason from int_slack__messages_cleaned where ts = ?",
                                         [ts(500)]).fetchall()
    assert users["W777"] == ("Wanda", "org_users.json") and users["U001"] == ("alice", "users.json")
    assert len(users) == len(team.users) + 1
    assert channels["G0SECRET1"] == [["G0SECRET1", "launch-plans", "true"]]
    assert channels[nfc] == [["C0CAFE0001", nfc, "true"]]
    assert examples["G0SECRET1"] == 2 and examples["C0CAFE0001"] == 1
    assert blocks_reason is None
    assert (export / nfd).is_dir() and not (export / nfc).exists()  # the export itself is not changed


def _zipped(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.rglob("*"):
            zf.write(path, path.relative_to(folder).as_posix())
    return archive
