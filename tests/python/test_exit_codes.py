"""docs/configuration.md's exit-code table stays true: every command in its examples column is run
here and exits with its row's code, and the table names no example this file cannot run.

Each command runs as a subprocess (the real entry point, its own signal handling), except `beep
refine` against the fake OpenAI server (in-process, so the server's thread answers it). About 20 s."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from beep.config import PROJECT_DIR, SAMPLE_EXPORT, Paths
from beep.locks import StepLock
from fake_openai.fixtures import fake_openai  # noqa: F401  (fixture)
from refine_testkit import example_ids, make_examples_db, responder

BEEP = str(Path(sys.executable).with_name("beep"))
DOC = PROJECT_DIR / "docs" / "configuration.md"


def documented() -> list[tuple[str, int]]:
    """(example, code) for every example of the table: its ';'-separated segments, backticks dropped,
    a parenthesised remark at the end left out."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("| Code | Meaning | Examples |"):]
    table = table[: table.index("\n\n")]
    found = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for segment in cells[2].split(";"):
            example = re.sub(r"\s*\([^)]*\)$", "", segment.strip()).replace("`", "")
            found.append((example, int(cells[0])))
    return found


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    # dbt as the shipped `beep` runs it, a plain subprocess (not the tests' fork server): the interrupted
    # builds below wait for it to start and stop it
    return {**os.environ, "BEEP_WORKDIR": str(tmp / ".beep"), "COLUMNS": "200", "BEEP_DBT_FORKSERVER": "0", **extra}


def _run(args: list[str], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BEEP, *args], check=False, env=_env(tmp, **env), capture_output=True, text=True, timeout=120,
                          cwd=tmp)


def _interrupted(sig: int) -> Callable[[Path], tuple[int, str]]:
    def run(tmp: Path) -> tuple[int, str]:
        proc = subprocess.Popen([BEEP, "build", "--db", str(tmp / "b.duckdb"), "--no-tests"], env=_env(tmp),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)
        try:
            deadline = time.monotonic() + 60
            while not psutil.Process(proc.pid).children(recursive=True):  # dbt started: the build is under way
                assert proc.poll() is None and time.monotonic() < deadline, "beep build ended before dbt started"
                time.sleep(0.05)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        return proc.returncode, err
    return run


def _busy(tmp: Path) -> tuple[int, str]:
    paths = Paths(duckdb=tmp / "b.duckdb", workdir=tmp / ".beep")
    with StepLock(paths, "build", wait_seconds=0):
        ran = _run(["build", "--db", str(paths.duckdb), "--no-tests", "--export", str(SAMPLE_EXPORT)], tmp,
                   BEEP_LOCK_WAIT_SECONDS="0")
    return ran.returncode, ran.stderr


def _not_an_export(tmp: Path) -> tuple[int, str]:
    with zipfile.ZipFile(tmp / "photos.zip", "w") as z:
        z.writestr("IMG_0001.txt", "a holiday")
    ran = _run(["ingest", "photos.zip", "--db", str(tmp / "b.duckdb")], tmp)
    assert "photos.zip: no users.json" in ran.stderr and ".beep" not in ran.stderr  # named by the zip
    return ran.returncode, ran.stderr


def _after_a_refusal(command: str) -> Callable[[Path], tuple[int, str]]:
    """`beep run` / `beep build` with no export named, after the last ingest of that DuckDB file was refused:
    refused again, naming that export, with nothing to resume (the same command can only fail again)."""
    def run(tmp: Path) -> tuple[int, str]:
        (tmp / "empty").mkdir()
        first = _run(["ingest", "empty", "--db", str(tmp / "b.duckdb")], tmp)
        assert first.returncode == 2, first.stderr
        ran = _run([command, "--db", str(tmp / "b.duckdb")], tmp)
        said = " ".join(ran.stderr.split())
        assert "was refused" in said and str(tmp / "empty") in said and "resumes" not in said, ran.stderr
        return ran.returncode, ran.stderr
    return run


def _cli(*args: str) -> Callable[[Path], tuple[int, str]]:
    def run(tmp: Path) -> tuple[int, str]:
        ran = _run([*args, "--db", str(tmp / "b.duckdb")] if args[0] != "predict" else [*args], tmp)
        return ran.returncode, ran.stderr
    return run


def _refused_value(tmp: Path) -> tuple[int, str]:
    """A value of the right type that macros/check_vars.sql refuses: refused before dbt starts (no DuckDB
    file), with the words dbt's on-run-start check would print."""
    code, err = _cli("build", "--var", "conversation_split=bogus")(tmp)
    said = " ".join(err.replace("│", " ").split())
    assert "Beep's dbt vars are wrong" in said and "conversation_split must be 'gap'" in said and '"bogus"' in said, err
    assert not (tmp / "b.duckdb").exists(), "dbt ran"
    return code, err


def _no_export(tmp: Path) -> tuple[int, str]:
    """Nothing to fine-tune on: refused before anything is uploaded, and no talk of a job to find on a rerun."""
    ran = _run(["finetune", "--provider", "openai", "--db", str(tmp / "b.duckdb")], tmp, OPENAI_API_KEY="sk-test")
    said = " ".join(ran.stderr.split())
    assert "export" in said and "beep export" in said, ran.stderr
    assert "job" not in said.lower(), ran.stderr
    return ran.returncode, ran.stderr


def _refine_undecided(tmp: Path) -> tuple[int, str]:
    raise AssertionError("run in-process: test_refine_leaving_examples_undecided_exits_3")


def _elsewhere(tmp: Path) -> tuple[int, str]:
    raise AssertionError("run by tests/python/test_kill_run.py (a SIGHUP needs beep run's worker)")


#: How this file runs each documented example.
RUNNERS: dict[str, Callable[[Path], tuple[int, str]]] = {
    "beep ingest sample_data/acme-slack-export": _cli("ingest", str(SAMPLE_EXPORT)),
    "beep build while another beep build holds the file": _busy,
    "beep ingest /nonexistent": _cli("ingest", "/nonexistent"),
    "beep run /nonexistent": _cli("run", "/nonexistent"),
    "beep ingest photos.zip": _not_an_export,
    "beep run after a refused ingest": _after_a_refusal("run"),
    "beep build after a refused ingest": _after_a_refusal("build"),
    "beep build --var no_such_var=1": _cli("build", "--var", "no_such_var=1"),
    "beep build --var conversation_split=bogus": _refused_value,
    "beep predict -k 0": _cli("predict", "-k", "0", "--text", "hello"),
    "beep predict --text hi --channel general --at 2025-03-04": _cli("predict", "--text", "hi", "--channel", "general",
                                                                     "--at", "2025-03-04"),
    "beep finetune --provider openai before any export": _no_export,
    "beep build stopped by SIGINT": _interrupted(signal.SIGINT),
    "beep build stopped by SIGTERM": _interrupted(signal.SIGTERM),
    "beep refine --provider openai when an answer stays unreadable": _refine_undecided,
    "beep run stopped by SIGHUP": _elsewhere,
}
IN_PROCESS_OR_ELSEWHERE = {_refine_undecided, _elsewhere}


def test_the_table_names_only_examples_this_file_knows() -> None:
    examples = documented()
    unknown = [e for e, _ in examples if e not in RUNNERS]
    assert not unknown, f"docs/configuration.md's exit-code table names {unknown}: add how to run each to RUNNERS"
    assert {code for _, code in examples} == {0, 1, 2, 3, 129, 130, 143}
    assert set(RUNNERS) == {e for e, _ in examples}


_RUN_HERE = [(e, c) for e, c in documented() if RUNNERS.get(e) not in IN_PROCESS_OR_ELSEWHERE]


@pytest.mark.parametrize(("example", "code"), _RUN_HERE, ids=[e for e, _ in _RUN_HERE])
def test_each_documented_example_exits_with_its_code(example: str, code: int, tmp_path: Path) -> None:
    got, err = RUNNERS[example](tmp_path)
    assert got == code, f"{example}: exit {got}, documented {code}\n{err[-2000:]}"
    assert "Traceback" not in err


def test_refine_leaving_examples_undecided_exits_3(fake_openai, tmp_path: Path) -> None:  # noqa: F811
    """The table's code 3, in-process against the fake OpenAI server (one example's answer stays unreadable)."""
    from beep.cli import app
    from typer.testing import CliRunner

    paths = make_examples_db(tmp_path / "beep.duckdb", 6)
    fake_openai.state.chat_responder = lambda body: "no idea" if "ex00000" in example_ids(body) else responder(body)
    ran = CliRunner().invoke(app, ["refine", "--provider", "openai", "--model", "gpt-4o-mini", "--db", str(paths.duckdb),
                                   "--batch-size", "3", "--max-reasks", "1", "--no-progress", "--no-refresh-models",
                                   "--retry-base", "0.01", "--retry-cap", "0.05"],
                             env={"BEEP_WORKDIR": str(tmp_path / ".beep")})
    assert ran.exit_code == 3, ran.output
    assert ("beep refine --provider openai when an answer stays unreadable", 3) in documented()
