"""dbt's parse is shared: a new DuckDB file's first dbt command, or a build of another export folder,
starts from the last saved parse instead of parsing the whole project again (beep.dbt_runner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from beep.config import SAMPLE_EXPORT, Paths
from beep.dbt_runner import dbt_cwd, dbt_env, parse_cache, run_dbt


def _log(paths: Paths) -> str:
    return (Path(dbt_env(paths)["DBT_LOG_PATH"]) / "dbt.log").read_text(encoding="utf-8")


def test_a_new_duckdb_file_and_a_new_export_folder_start_from_the_saved_parse(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")  # dbt says how it parsed at debug level (Beep's default: info)
    first = Paths(duckdb=tmp_path / "one" / "beep.duckdb", workdir=tmp_path / "one" / ".beep")
    first.duckdb.parent.mkdir()
    run_dbt(first, ["parse"], quiet=True, export=SAMPLE_EXPORT)
    cache = parse_cache(first, "duckdb", None)
    assert cache.is_file()  # kept for the next DuckDB file of this name
    assert dbt_env(first)["BEEP_DUCKDB_PATH"] == "beep.duckdb" and dbt_cwd(first) == first.duckdb.parent

    other_export = tmp_path / "another-export"
    other_export.mkdir()
    second = Paths(duckdb=tmp_path / "two" / "beep.duckdb", workdir=tmp_path / "two" / ".beep")
    second.duckdb.parent.mkdir()
    run_dbt(second, ["parse"], quiet=True, export=other_export)
    log = _log(second)
    assert "Starting full parse" not in log, log[-2000:]
    assert "partial pars" in log.lower()

    # vars are part of what dbt checks: another value's parse is kept under its own key
    run_dbt(second, ["parse"], {"context_messages": 4}, quiet=True, export=other_export)
    assert parse_cache(second, "duckdb", {"context_messages": 4}) != cache
    assert parse_cache(second, "duckdb", {"context_messages": 4}).is_file()

    # and back to no vars: the folder holds the vars' parse, yet dbt starts from the saved one of no vars
    log_path = Path(dbt_env(second)["DBT_LOG_PATH"]) / "dbt.log"
    log_path.write_text("", encoding="utf-8")
    run_dbt(second, ["parse"], quiet=True, export=other_export)
    log = _log(second)
    assert "Unable to do partial parsing" not in log and "Starting full parse" not in log, log[-2000:]
    assert "partial pars" in log.lower()

    # the same vars again: the folder's own parse is the newest for this file and export folder, and is
    # kept (a shared copy another DuckDB file of this name saved since, here garbage, is not copied in)
    cache.write_bytes(b"not a parse")
    log_path.write_text("", encoding="utf-8")
    run_dbt(second, ["parse"], quiet=True, export=other_export)
    log = _log(second)
    assert "Unable to do partial parsing" not in log and "Starting full parse" not in log, log[-2000:]
    assert "partial pars" in log.lower()
