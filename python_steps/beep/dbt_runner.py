"""Run dbt (the repo's project and profile) against the DuckDB file of a :class:`Paths`.

dbt runs as a subprocess: its adapter state, logging and DuckDB connection stay out of our process,
and the DuckDB file is released as soon as dbt exits. The subprocess dies with the process that
started it (SIGTERM from the kernel, beep.worker.die_with_parent), so a killed `beep build` leaves no
dbt behind writing the file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from beep.config import Paths
from beep.worker import die_with_parent


class DbtFailed(RuntimeError):
    """A dbt command exited non-zero; the message carries dbt's own error lines."""


def dbt_env(paths: Paths, target: str = "duckdb") -> dict[str, str]:
    """The environment dbt needs: the profile in the repo and the DuckDB file of ``paths``; for
    the ``spark`` target also the folder of the local Spark (BEEP_SPARK_DIR, docs/spark.md) and a
    target folder of its own, so that switching targets keeps dbt's partial parsing of each."""
    env = dict(os.environ)
    env["DBT_PROFILES_DIR"] = str(paths.project_dir)
    env["BEEP_DUCKDB_PATH"] = str(paths.duckdb)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # each DuckDB file has its own dbt target, logs and Spark under a shared work folder: two files in one
    # folder never read each other's run_results.json or overwrite each other's Spark tables
    env.setdefault("DBT_LOG_PATH", str(paths.workdir / "dbt-logs" / paths.db_key))
    env.setdefault("DBT_TARGET_PATH", str(paths.workdir / "dbt-target" / paths.db_key))
    if target == "spark":
        env["BEEP_SPARK_DIR"] = str(Path(env.get("BEEP_SPARK_DIR") or paths.spark_dir).resolve())
        env["DBT_TARGET_PATH"] = env["DBT_TARGET_PATH"].rstrip("/\\") + "-spark"
    return env


def run_dbt(
    paths: Paths,
    args: Sequence[str],
    vars: Mapping[str, Any] | None = None,
    *,
    quiet: bool = False,
    target: str = "duckdb",
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <args>`` (e.g. ``["build"]``) with ``vars``; raise :class:`DbtFailed` on failure.

    ``target``: ``duckdb`` (profiles.yml's default target) or ``spark`` (``--target spark``).
    dbt's output streams to the terminal unless ``quiet`` (then it is captured and, on failure,
    the error lines are put in the exception).
    """
    paths.workdir.mkdir(parents=True, exist_ok=True)
    script = Path(sys.executable).with_name("dbt")  # the console script beside this Python
    # (``python -m dbt.cli.main`` works too, but makes runpy warn on every call)
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "dbt.cli.main"]
    cmd += [*args, "--project-dir", str(paths.project_dir)]
    if target == "spark":
        cmd += ["--target", "spark"]
    if vars:
        cmd += ["--vars", json.dumps(dict(vars))]
    env = dbt_env(paths, target)
    if not quiet and not sys.stdout.isatty():
        env.setdefault("DBT_USE_COLORS", "false")  # no escape codes in logs and pipes
    proc = subprocess.run(
        cmd,
        env=env,
        cwd=paths.project_dir,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - only a prctl call, safe between fork and exec
        text=True,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.STDOUT if quiet else None,
    )
    if proc.returncode != 0:
        detail = _error_detail(proc.stdout or "")
        raise DbtFailed(f"`dbt {' '.join(args)}` failed (exit {proc.returncode}).\n{detail}".rstrip())
    return proc


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TIMESTAMP = re.compile(r"^\d{2}:\d{2}:\d{2}\s+")


def _error_detail(output: str) -> str:
    """dbt's own account of what failed: the block after "Completed with …", without colours or times."""
    lines = [_TIMESTAMP.sub("", _ANSI.sub("", line)).rstrip() for line in output.splitlines()]
    lines = [line for line in lines if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.startswith("Completed with")), None)
    if start is None:
        start = next((i for i, line in enumerate(lines) if "Error" in line), max(len(lines) - 30, 0))
    block = [line for line in lines[start:] if not line.startswith("Done. PASS=")]
    return "\n".join(block[:60])


def run_results(paths: Paths, target: str = "duckdb") -> list[dict[str, Any]]:
    """The per-node results of the last dbt invocation on ``target`` (target/run_results.json)."""
    results = Path(dbt_env(paths, target)["DBT_TARGET_PATH"]) / "run_results.json"
    if not results.exists():
        return []
    return list(json.loads(results.read_text())["results"])
