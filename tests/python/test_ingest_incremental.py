"""A daily ingest parses only the day files whose bytes changed (issue 25): the others' stored
checks (table ingest_file_checks) stand for them, and the result equals an ingest from scratch,
including the checks that compare files (duplicate keys across a folder, users missing from
users.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from beep.config import SAMPLE_EXPORT, Paths
from beep.db import open_duckdb
from beep.ingest import CHECK_VERSION, IngestError, IngestResult, ingest


def _paths(root: Path) -> Paths:
    return Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")


def _summary(result: IngestResult) -> tuple:
    return (result.n_day_files, result.n_messages, result.n_bytes,
            sorted((i.file, i.issue, i.n, i.detail) for i in result.issues))


def _next_day(export: Path, folder: str) -> tuple[Path, dict]:
    days = sorted((export / folder).glob("*.json"))
    last = json.loads(days[-1].read_text())
    return days[-1], last[0]


def test_a_second_ingest_parses_only_changed_files_and_finds_what_a_fresh_one_finds(tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(SAMPLE_EXPORT, export)
    daily = _paths(tmp_path / "daily")
    first = ingest(daily, export)
    assert first.n_day_files_unchanged == 0 and first.describe_reuse().startswith("parsed all")

    unchanged = ingest(daily, export)
    assert unchanged.n_day_files_unchanged == unchanged.n_day_files
    assert _summary(unchanged) == _summary(first)

    # The next day: a new day file (one message by a user missing from users.json, one that copies the
    # key of a message two days earlier in the same folder with another text), and an edited day file.
    last_file, message = _next_day(export, "general")
    (export / "general" / "2099-01-01.json").write_text(json.dumps([
        {**message, "ts": "4070908800.000100", "user": "UNOBODY01", "text": "who am I?"},
        {**message, "text": "the same key, another text"},
    ]))
    edited = json.loads(last_file.read_text())
    edited[-1] = {**edited[-1], "text": edited[-1].get("text", "") + " (edited)"}
    last_file.write_text(json.dumps(edited))

    again = ingest(daily, export)
    fresh = ingest(_paths(tmp_path / "fresh"), export)
    assert fresh.n_day_files_unchanged == 0
    assert again.n_day_files_unchanged == again.n_day_files - 2
    assert again.describe_reuse().startswith("parsed 2 new or changed day files of")
    assert _summary(again) == _summary(fresh)
    found = {(i.file, i.issue) for i in again.issues}
    assert ("general/2099-01-01.json", "unknown_user") in found
    assert ("general/2099-01-01.json", "duplicate_ts_different_text") in found


def test_stored_checks_of_another_check_version_are_not_reused(tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(SAMPLE_EXPORT, export)
    paths = _paths(tmp_path)
    ingest(paths, export)
    with open_duckdb(str(paths.duckdb)) as con:
        con.execute("update ingest_file_checks set check_version = ?", [CHECK_VERSION - 1])
    again = ingest(paths, export)
    assert again.n_day_files_unchanged == 0
    with open_duckdb(str(paths.duckdb)) as con:
        assert con.execute("select distinct check_version from ingest_file_checks").fetchall() == [(CHECK_VERSION,)]



def test_the_same_zip_ingested_again_keeps_its_files_times(tmp_path: Path) -> None:
    """dbt's incremental staging tells changed day files by size and modification time: the same zip
    ingested again (extracted again into its folder) must not look like a new export, or the next
    build would parse every day file again."""
    import zipfile

    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(SAMPLE_EXPORT.rglob("*.json")):
            zf.writestr(path.relative_to(SAMPLE_EXPORT).as_posix(), path.read_bytes())
    paths = _paths(tmp_path)
    first = ingest(paths, archive)
    times = {p.relative_to(first.export_path): p.stat().st_mtime_ns for p in first.export_path.rglob("*.json")}
    again = ingest(paths, archive)
    assert again.export_path == first.export_path
    assert {p.relative_to(again.export_path): p.stat().st_mtime_ns for p in again.export_path.rglob("*.json")} == times
    assert again.n_day_files_unchanged == again.n_day_files


def _zip(folder: Path, archive: Path, skip: set[str] = frozenset(), extra: dict[str, bytes] | None = None) -> Path:
    import zipfile

    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.json")):
            rel = path.relative_to(folder).as_posix()
            if rel not in skip:
                zf.writestr(rel, (extra or {}).pop(rel, None) or path.read_bytes())
        for rel, data in (extra or {}).items():
            zf.writestr(rel, data)
    return archive


def test_tomorrows_zip_lands_in_the_same_folder_and_a_refused_one_leaves_it(tmp_path: Path) -> None:
    """Every zip of a DuckDB file is unzipped into one folder: the next day's zip (another file name)
    is, to dbt's incremental models, the same export with a new day file, an edited one and a gone one
    (day files it carries unchanged keep their modification times). A zip that is refused leaves the
    last good extraction as it was."""
    paths = _paths(tmp_path)
    first = ingest(paths, _zip(SAMPLE_EXPORT, tmp_path / "acme Dec 5.zip"))
    files = sorted(p.relative_to(first.export_path).as_posix() for p in first.export_path.rglob("*/*.json"))
    edited, gone = files[0], files[1]
    times = {rel: (first.export_path / rel).stat().st_mtime_ns for rel in files}
    folder = edited.split("/")[0]
    new_day = f"{folder}/2099-01-01.json"
    day = json.loads((SAMPLE_EXPORT / edited).read_text())
    day[0]["text"] = "edited: " + str(day[0].get("text", ""))
    second = ingest(paths, _zip(SAMPLE_EXPORT, tmp_path / "acme Dec 6.zip", skip={gone},
                                extra={edited: json.dumps(day).encode(), new_day: json.dumps(day[:1]).encode()}))
    assert second.export_path == first.export_path  # one folder for this DuckDB file
    now = {p.relative_to(second.export_path).as_posix(): p.stat().st_mtime_ns for p in second.export_path.rglob("*/*.json")}
    assert gone not in now and new_day in now
    assert "edited: " in (second.export_path / edited).read_text()
    assert {rel: t for rel, t in now.items() if rel not in {edited, new_day}} == {
        rel: t for rel, t in times.items() if rel not in {edited, gone}}
    assert second.n_day_files_unchanged == second.n_day_files - 2  # the edited and the new day file parsed

    not_an_export = _zip(SAMPLE_EXPORT / folder, tmp_path / "not an export.zip")  # day files, no users.json
    with pytest.raises(IngestError, match="not an export.zip"):
        ingest(paths, not_an_export)
    assert {p.relative_to(second.export_path).as_posix(): p.stat().st_mtime_ns
            for p in second.export_path.rglob("*/*.json")} == now
    assert sorted(p.name for p in paths.exports_dir.iterdir()) == [second.export_path.name]
