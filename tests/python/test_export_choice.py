"""The user's data is never swapped for the bundled sample: the sample is the default only on a
fresh DuckDB file. After a refused ingest, or on a DB built from the user's export, `beep build`,
`beep run` and plain `dbt build` (no --vars) reuse that export or refuse, naming it."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from beep import pipeline
from beep.build import BuildRefused, resolve_export
from beep.cli import app
from beep.config import SAMPLE_EXPORT, Paths
from beep.db import open_duckdb
from beep.dbt_runner import DbtFailed, run_dbt
from beep.ingest import IngestError, ingest
from slack_fixtures import small_team


def _paths(tmp_path: Path) -> Paths:
    return Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")


def _flat(text: str) -> str:
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


def _n_messages(paths: Paths) -> int:
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        return con.execute("select count(*) from stg_slack__messages").fetchone()[0]


def test_a_fresh_db_builds_the_sample(tmp_path: Path) -> None:
    assert resolve_export(_paths(tmp_path), None) == SAMPLE_EXPORT
    assert pipeline.default_run_source(_paths(tmp_path)) == SAMPLE_EXPORT


def test_after_a_refused_ingest_nothing_builds_the_sample(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    bad = small_team().write(tmp_path / "my export")
    (bad / "general" / "2024-03-04.json").write_text("[{oops")
    with pytest.raises(IngestError):
        ingest(paths, bad)

    with pytest.raises(BuildRefused) as err:
        resolve_export(paths, None)
    assert str(bad) in str(err.value) and "refused" in str(err.value) and "beep build --export FOLDER" in str(err.value)

    cli = CliRunner().invoke(app, ["build", "--db", str(paths.duckdb)], env={"BEEP_WORKDIR": str(paths.workdir)})
    assert cli.exit_code == 2 and "was refused" in _flat(cli.output) and str(bad) in _flat(cli.output)

    with pytest.raises(BuildRefused, match="was refused"):
        pipeline.default_run_source(paths)

    with pytest.raises(DbtFailed) as dbt_err:  # plain dbt, no --vars
        run_dbt(paths, ["run", "--select", "stg_slack__users"], quiet=True)
    assert "was refused" in str(dbt_err.value) and "slack_export" in str(dbt_err.value)

    # naming the export explicitly is always possible, and a good ingest clears the refusal
    (bad / "general" / "2024-03-04.json").write_text("[]")
    assert resolve_export(paths, SAMPLE_EXPORT) == SAMPLE_EXPORT
    good = ingest(paths, bad)
    assert resolve_export(paths, None) == good.export_path


def test_beep_run_without_an_argument_reuses_the_users_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _paths(tmp_path)
    export = small_team().write(tmp_path / "export")
    archive = tmp_path / "acme.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in export.rglob("*"):
            zf.write(path, path.relative_to(export).as_posix())
    result = ingest(paths, archive)
    assert pipeline.default_run_source(paths) == archive.resolve()

    seen: list[Path] = []

    def fake_ingest(paths_: Paths, source: Path) -> None:
        seen.append(Path(source))
        raise RuntimeError("stop here")

    monkeypatch.setattr(pipeline, "ingest", fake_ingest)
    with pytest.raises(pipeline.StepFailed):
        pipeline.run_pipeline(paths, pipeline.RunOptions())
    assert seen == [archive.resolve()]

    archive.unlink()  # the zip is gone: the prepared folder is reused
    assert pipeline.default_run_source(paths) == result.export_path
    shutil.rmtree(result.export_path)  # both gone: refused, naming it
    with pytest.raises(BuildRefused) as err:
        pipeline.default_run_source(paths)
    assert str(result.export_path) in str(err.value) and "no longer exists" in str(err.value)


def test_plain_dbt_without_vars_reads_the_last_ingested_export_or_says_what_to_pass(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    export = small_team().write(tmp_path / "export")
    ingest(paths, export)
    run_dbt(paths, ["run", "--select", "stg_slack__messages"], quiet=True)  # no --vars
    assert _n_messages(paths) == 11  # the user's 11 messages, not the sample's thousands

    shutil.rmtree(export)
    with pytest.raises(DbtFailed) as err:
        run_dbt(paths, ["run", "--select", "stg_slack__messages"], quiet=True)
    assert "no longer exists" in str(err.value) and "--vars '{slack_export:" in str(err.value)
    assert _n_messages(paths) == 11  # nothing replaced
