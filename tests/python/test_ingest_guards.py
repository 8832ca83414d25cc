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
    assert not (tmp_path / ".beep" / "dbt-target").exists()  # refused before dbt ran


# ------------------------------------------------------------------ counted in ingest_issues

def test_non_json_files_and_unknown_user_ids_are_counted_and_the_build_summary_says_so(tmp_path: Path) -> None:
    import duckdb
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
    with duckdb.connect(str(paths.duckdb), read_only=True) as con:
        rows = con.execute("select file, issue, n, detail from ingest_issues order by file").fetchall()
    assert ("general/.DS_Store", "non_json_file") in {(f, i) for f, i, _, _ in rows}
    unknown = {f: (n, d) for f, i, n, d in rows if i == "unknown_user"}
    assert unknown["general/2024-03-04.json"][0] == 2 and "U999" in unknown["general/2024-03-04.json"][1]

    cli = CliRunner().invoke(app, ["build", "--db", str(paths.duckdb), "--no-tests"], env={"BEEP_WORKDIR": str(paths.workdir)})
    assert cli.exit_code == 0, cli.output
    flat = " ".join(cli.output.split())
    assert "3 messages come from 2 user id(s) missing from users.json" in flat
    assert "non_json_file 2" in flat and "unknown_user 3" in flat
