"""Run dbt (the repo's project and profile) against the DuckDB file of a :class:`Paths`.

dbt runs as a subprocess: its adapter state, logging and DuckDB connection stay out of our process,
and the DuckDB file is released as soon as dbt exits. The subprocess dies with the process that
started it (SIGTERM from the kernel, beep.worker.die_with_parent), so a killed `beep build` leaves no
dbt behind writing the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from beep import dbt_forkserver
from beep.config import Paths
from beep.worker import die_with_parent


class DbtFailed(RuntimeError):
    """A dbt command exited non-zero; the message carries dbt's own error lines."""


def dbt_env(paths: Paths, target: str = "duckdb") -> dict[str, str]:
    """The environment dbt needs: the profile in the repo and the DuckDB file of ``paths``; for
    the ``spark`` target also the folder of the local Spark (BEEP_SPARK_DIR, docs/spark.md) and a
    target folder of its own, so that switching targets keeps dbt's partial parsing of each."""
    env = dict(os.environ)
    # set by `beep build` alone, for the build it runs (macros/untested_eval_runs.sql)
    env.pop("BEEP_EVAL_RUNS_TESTED_THROUGH", None)
    env.pop("BEEP_UNTESTED_ROWS", None)
    env["DBT_PROFILES_DIR"] = str(paths.project_dir)
    # the file's name, relative to dbt's working folder (dbt_cwd): dbt keys its partial parsing on the
    # profile's connection values, so every DuckDB file of the same name can start from one parse
    env["BEEP_DUCKDB_PATH"] = paths.duckdb.name
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # dbt.log at info (each node, its result, every error): at debug it also logged every statement's SQL,
    # 4 % of the CPU of a daily `dbt build` (docs/benchmarks.md); DBT_LOG_LEVEL_FILE=debug brings it back
    env.setdefault("DBT_LOG_LEVEL_FILE", "info")
    # each DuckDB file has its own dbt target, logs and Spark under a shared work folder: two files in one
    # folder never read each other's run_results.json or overwrite each other's Spark tables
    env.setdefault("DBT_LOG_PATH", str(paths.workdir / "dbt-logs" / paths.db_key))
    env.setdefault("DBT_TARGET_PATH", str(paths.workdir / "dbt-target" / paths.db_key))
    for key in ("DBT_LOG_PATH", "DBT_TARGET_PATH"):  # absolute: dbt runs in the DuckDB file's folder
        env[key] = str(Path(env[key]).resolve())
    if target == "spark":
        env["BEEP_SPARK_DIR"] = str(Path(env.get("BEEP_SPARK_DIR") or paths.spark_dir).resolve())
        env["DBT_TARGET_PATH"] = env["DBT_TARGET_PATH"].rstrip("/\\") + "-spark"
    return env


def dbt_cwd(paths: Paths) -> Path:
    """The folder dbt runs in: the DuckDB file's, since the profile names the file relative to it."""
    return paths.duckdb.resolve().parent


def parse_cache(paths: Paths, target: str, vars: Mapping[str, Any] | None) -> Path:
    """Where the last partial_parse.msgpack of this project, target, vars and DuckDB file name is kept.

    dbt parses the whole project (about 6 s of CPU) when its target folder holds no saved parse, as
    in every new DuckDB file's; from a saved one it re-reads only what changed (about 3 s less). The
    copy is shared by all DuckDB files of the same name; dbt itself checks that it still fits (dbt's
    version, the vars, the profile's connection values, every project file's checksum, the
    environment variables the project read) and parses again where it does not.
    """
    key = json.dumps([target, paths.duckdb.name, dict(vars or {})], sort_keys=True, default=str)
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    return paths.project_dir / "target" / "beep-parse-cache" / f"{name}.msgpack"


#: Beside a target folder's partial_parse.msgpack: the parse cache key (its file name) it was made for.
_PARSE_KEY = "beep-parse-key"


def _start_from_saved_parse(target_path: Path, cache: Path) -> None:
    """Seed the target folder from the shared copy of this key's last parse (a cache: failures are ignored).

    The folder keeps its own parse when that was made for the same key (the same vars): it is the
    newest for this DuckDB file and export folder. A parse made with other vars, or none, is replaced
    by the shared copy: from it dbt would parse the whole project again (as a build with ``--vars``
    between two builds without did).
    """
    saved = target_path / "partial_parse.msgpack"
    try:
        if saved.is_file() and (target_path / _PARSE_KEY).read_text(encoding="utf-8") == cache.name:
            return
    except OSError:
        pass  # no key recorded: a folder of an older Beep, or a failed run
    try:
        # this run's parse is of another key: until it succeeds (_keep_parse), the folder's key is unknown
        (target_path / _PARSE_KEY).unlink(missing_ok=True)
        if not cache.is_file():
            return
        target_path.mkdir(parents=True, exist_ok=True)
        partial = saved.with_name(f"{saved.name}.{os.getpid()}.tmp")
        shutil.copyfile(cache, partial)
        os.replace(partial, saved)
    except OSError:
        pass


def _keep_parse(target_path: Path, cache: Path) -> None:
    """Keep the target folder's saved parse as the shared copy (written whole, then renamed), and
    record in the folder which key its parse is for."""
    saved = target_path / "partial_parse.msgpack"
    if not saved.is_file():
        return
    try:
        (target_path / _PARSE_KEY).write_text(cache.name, encoding="utf-8")
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        shutil.copyfile(saved, partial)
        os.replace(partial, cache)
    except OSError:
        pass


def run_dbt(
    paths: Paths,
    args: Sequence[str],
    vars: Mapping[str, Any] | None = None,
    *,
    quiet: bool = False,
    target: str = "duckdb",
    export: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <args>`` (e.g. ``["build"]``) with ``vars``; raise :class:`DbtFailed` on failure.

    ``target``: ``duckdb`` (profiles.yml's default target) or ``spark`` (``--target spark``).
    ``export``: the Slack export folder, passed as BEEP_SLACK_EXPORT (macros/slack_export_files.sql)
    rather than as the var slack_export, which would make dbt parse the whole project again for
    every other folder; dbt re-reads only the models that read it. ``extra_env``: more environment
    variables for this run (read by macros at execution only, so dbt's parse stays valid).
    dbt's output streams to the terminal unless ``quiet`` (then it is captured and, on failure,
    the error lines are put in the exception).
    """
    paths.workdir.mkdir(parents=True, exist_ok=True)
    script = Path(sys.executable).with_name("dbt")  # the console script beside this Python
    # (``python -m dbt.cli.main`` works too, but makes runpy warn on every call)
    dbt_args = [*args, "--project-dir", str(paths.project_dir)]
    if target == "spark":
        dbt_args += ["--target", "spark"]
    if vars:
        dbt_args += ["--vars", json.dumps(dict(vars))]
    cmd = ([str(script)] if script.is_file() else [sys.executable, "-m", "dbt.cli.main"]) + dbt_args
    env = dbt_env(paths, target)
    if export is not None:
        env["BEEP_SLACK_EXPORT"] = str(Path(export).resolve())
    env.update(extra_env or {})
    if not quiet and not sys.stdout.isatty():
        env.setdefault("DBT_USE_COLORS", "false")  # no escape codes in logs and pipes
    target_path, cache = Path(env["DBT_TARGET_PATH"]), parse_cache(paths, target, vars)
    _start_from_saved_parse(target_path, cache)
    proc = None
    if dbt_forkserver.wanted(target):  # BEEP_DBT_FORKSERVER=1: dbt imported once per process (the tests)
        proc = dbt_forkserver.run(dbt_args, env=env, cwd=dbt_cwd(paths), quiet=quiet)
    if proc is None:  # the default; or the fork server is busy with another thread's command
        proc = subprocess.run(
            cmd,
            env=env,
            cwd=dbt_cwd(paths),
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only a prctl call, safe between fork and exec
            text=True,
            stdout=subprocess.PIPE if quiet else None,
            stderr=subprocess.STDOUT if quiet else None,
        )
    if proc.returncode != 0:
        detail = _error_detail(proc.stdout or "")
        raise DbtFailed(f"`dbt {' '.join(args)}` failed (exit {proc.returncode}).\n{detail}".rstrip())
    _keep_parse(target_path, cache)
    return proc


def warm_dbt_forkserver(scratch: Path) -> bool:
    """Have this process's dbt fork server parse the project twice in its own process, in DuckDB and dbt
    folders under ``scratch`` (a folder for the warm-up alone; the caller may remove it afterwards), so that each dbt command after it starts
    with what dbt builds once per process (beep.dbt_forkserver, "Warming up"). For a process that runs
    many dbt commands (a test worker); nothing without ``BEEP_DBT_FORKSERVER=1``. Whether both parses
    succeeded (a failure only costs the warm-up: the commands run as before)."""
    if not dbt_forkserver.wanted("duckdb"):
        return False
    paths = Paths(duckdb=scratch / "warm-up.duckdb", workdir=scratch / ".beep")
    paths.workdir.mkdir(parents=True, exist_ok=True)
    args = ["parse", "--quiet", "--project-dir", str(paths.project_dir)]
    # dbt's static parser (dbt_extractor) leaves a native thread pool behind, which no forked child has
    env, cwd = {**dbt_env(paths), "DBT_STATIC_PARSER": "false"}, dbt_cwd(paths)
    try:
        done = [dbt_forkserver.run(args, env=env, cwd=cwd, quiet=True, in_server=True) for _ in range(2)]
    except (dbt_forkserver.ForkServerError, OSError):  # the server is dropped: the next command starts one
        return False
    return all(proc is not None and proc.returncode == 0 for proc in done)


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
