"""`beep build`: run the dbt project over an export and summarise the dataset it produced."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from beep.config import SAMPLE_EXPORT, Paths
from beep.db import SEARCH_PATH, connect, table_exists
from beep.day_files import SEEN_TABLE, TESTED_TABLE, DayFilesRead, day_files_read
from beep.dbt_runner import dbt_env, run_dbt, run_results
from beep.ingest import SLACKBOT_ID, export_fingerprint, last_export
from beep.locks import one_at_a_time
from beep.table_docs import model_schemas, write_model_comments
from beep.spark_dataset import (
    DUCKDB_SIDE_SELECTOR,
    built_relations,
    count_zero_byte_day_files,
    last_build_target,
    publish_to_duckdb,
    spark_views_readable,
)

if TYPE_CHECKING:
    import duckdb

#: What the dataset's content depends on besides the export and the vars.
_PROJECT_INPUTS = ("dbt_project.yml", "models", "macros", "seeds", "tests")


@dataclass
class DatasetSummary:
    """Headline numbers of the built dataset."""

    export_path: Path
    n_raw_messages: int = 0
    n_examples: int = 0
    n_conversations: int = 0
    n_labels: int = 0
    newcomer_share: float = 0.0
    fates: list[tuple[str, str | None, int]] = field(default_factory=list)
    labels: list[tuple[int, str, int]] = field(default_factory=list)
    #: Responders sharing the one `other` label (more responders than var max_labels), 0 when none do.
    n_folded_responders: int = 0
    #: Messages whose author is missing from users.json (their label is named by the id), and how many such ids.
    n_unknown_user_messages: int = 0
    n_unknown_users: int = 0
    #: What `beep ingest` handled in this export (issue -> occurrences), when it was ingested.
    ingest_issues: dict[str, int] = field(default_factory=dict)
    #: Where dbt built the dataset: duckdb, or spark (then read through DuckDB views over Parquet).
    target: str = "duckdb"
    #: Day files of zero bytes, counted in Python on Spark (its file listing leaves them out).
    n_zero_byte_day_files: int = 0
    #: What dbt did in this build (dbt status -> nodes, by kind: model, test, seed, ...); empty when skipped.
    dbt_results: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The tests that warned (severity warn: the data is used, but look): (test name, failing rows, the
    #: first of them as text).
    warned_tests: list[tuple[str, int | None, list[str]]] = field(default_factory=list)
    #: Rows of the main tables (name -> rows), read after the build.
    table_rows: dict[str, int] = field(default_factory=dict)
    #: Wall time of the build, seconds (0 when skipped).
    seconds: float = 0.0
    #: Day files the incremental stg_slack__messages parsed in this build, of all (None: Spark, skipped).
    day_files_read: DayFilesRead | None = None
    #: The dbt unit tests were left out: they passed in an earlier build of the same project, vars and
    #: dbt (:func:`unit_tests_key`); they read fixed rows, never the export, so they would pass again.
    unit_tests_kept: bool = False
    #: The data tests over stored predictions checked only the evaluation runs finished after this
    #: moment (the older ones passed them in an earlier build: :class:`EvalRunsTested`); None: every run.
    eval_runs_tested_through: str | None = None
    #: The fate reconciliation test read only the day files no passing run of it had counted: (files
    #: read, files taken with the counts recorded then) (macros/tested_day_files.sql); None: every file.
    day_files_counted: tuple[int, int] | None = None
    #: The tables kept day file by day file whose data tests checked only the rows no passing build had
    #: tested (table -> scopes recorded since; macros/untested_rows.sql); None: every row was tested.
    rows_tested: dict[str, int] | None = None


#: The tables whose row counts a build's summary shows, in the order of the chain.
MAIN_TABLES = ("stg_slack__messages", "int_conversations", "training_examples", "user_labels")


#: How many of a warned test's failing rows the build's summary shows.
WARNED_ROWS_SHOWN = 5


def warned_tests(results: list[dict[str, object]], db: Path | None = None) -> list[tuple[str, int | None, list[str]]]:
    """The tests of run_results.json that warned: their names (the node name, as `dbt test --select`
    takes it), how many rows failed them and, with ``db`` (a DuckDB build), the first failing rows,
    read by running the test's compiled SQL again (each row's values joined by ", ")."""
    out = []
    for result in results:
        unique_id = str(result.get("unique_id", ""))
        if result.get("status") == "warn" and unique_id.split(".", 1)[0] in ("test", "unit_test"):
            failures = result.get("failures")
            name = unique_id.split(".")[2] if unique_id.count(".") >= 2 else unique_id
            out.append((name, int(failures) if isinstance(failures, int) else None,
                        _failing_rows(db, result.get("compiled_code")) if db is not None else []))
    return out


def _failing_rows(db: Path, sql: object) -> list[str]:
    if not isinstance(sql, str) or not sql.strip():
        return []
    try:
        with connect(db, read_only=True) as con:
            rows = con.execute(f"select * from ({sql}) as failing limit {WARNED_ROWS_SHOWN}").fetchall()
    except Exception:  # noqa: BLE001 - the rows are a courtesy: the warning stands without them
        return []
    return [", ".join("null" if v is None else str(v) for v in row) for row in rows]


def warned_test_lines(tests: list[tuple[str, int | None, list[str]]]) -> list[str]:
    """One line per test that warned, naming it, its failing rows' count and the first of them (for
    `beep build` and `beep run`)."""
    lines = []
    for name, failures, shown in tests:
        rows = f"{failures:,} row{'s' if failures != 1 else ''}" if failures is not None else "rows"
        which = (f": {'; '.join(shown)}{' …' if failures is not None and failures > len(shown) else ''}"
                 if shown else "")
        lines.append(f"dbt test {name} warned on {rows}{which} (the data is used; the test is defined in models/**/_*.yml)")
    return lines


def incremental_line(summary: "DatasetSummary") -> str | None:
    """What an incremental build did instead of everything (``beep build`` and ``beep run`` print it),
    or None for a build that did everything (or kept no record: Spark)."""
    if summary.day_files_read is None:
        return None
    return (f"incremental build: {summary.day_files_read.describe()}"
            + ("; dbt's unit tests not run (they passed on this project, vars and dbt before)"
               if summary.unit_tests_kept else "")
            + (f"; the tests over stored predictions checked the evaluation runs finished after "
               f"{summary.eval_runs_tested_through[:19]} (the older ones passed them before)"
               if summary.eval_runs_tested_through else "")
            + (f"; the fate reconciliation read {summary.day_files_counted[0]:,} day file"
               f"{'s' if summary.day_files_counted[0] != 1 else ''} (the other "
               f"{summary.day_files_counted[1]:,} with the counts recorded when it last passed)"
               if summary.day_files_counted else "")
            + (f"; the data tests of the {len(summary.rows_tested)} tables kept day file by day file checked the rows "
               "computed since the last passing build (the others passed them then)"
               if summary.rows_tested else ""))


def dbt_result_counts(results: list[dict[str, object]]) -> dict[str, dict[str, int]]:
    """dbt's run_results.json nodes counted by kind (model, test, unit_test, seed, ...) and status
    (success, pass, fail, error, skipped, warn)."""
    counts: dict[str, dict[str, int]] = {}
    for result in results:
        kind = str(result.get("unique_id", "")).split(".", 1)[0] or "other"
        status = str(result.get("status", "unknown"))
        counts.setdefault(kind, {}).setdefault(status, 0)
        counts[kind][status] += 1
    return counts


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """While inside, file descriptor 1 (what a child process such as dbt writes to) is stderr:
    stdout carries results only."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def resolve_export(paths: Paths, export: Path | None) -> Path:
    """The export folder to build: the one given, else the one this DuckDB file last ingested or
    built; the bundled sample only on a fresh DB. :class:`BuildRefused` when the last ingest was
    refused or the last export is gone: Beep never builds another export in place of the user's."""
    if export is not None:
        return Path(export).resolve()
    last = last_export(paths)
    if last is None:
        return SAMPLE_EXPORT
    if last.kind == "refused":
        raise BuildRefused(
            f"The last `beep ingest` of {last.source_path} was refused, so there is no export to build "
            f"(Beep does not build the bundled sample in its place):\n  {last.error.splitlines()[0] if last.error else ''}\n"
            f"Fix the export and run `beep ingest {last.source_path}` again, or name the export to build "
            f"(`beep build --export FOLDER`, `beep run PATH`; the bundled sample is {SAMPLE_EXPORT})."
        )
    assert last.export_path is not None
    if not last.export_path.is_dir():
        raise BuildRefused(
            f"This DuckDB file was last built from {last.export_path}, which no longer exists. Run "
            f"`beep ingest {last.source_path}` again, or name the export to build (`beep build --export FOLDER`, "
            "`beep run PATH`)."
        )
    return last.export_path


class BuildRefused(ValueError):
    """The build cannot start (an export without messages, an export Beep will not guess); the
    message names the export and says what to do."""


def _has_a_message(export_path: Path) -> bool:
    """Whether any day file of the folder may hold a message object (a '{' in its first 64 KB):
    cheap, and false only for exports whose day files are all empty arrays, blank or not JSON."""
    for day_file in export_path.glob("*/*.json"):
        try:
            with open(day_file, "rb") as f:
                if b"{" in f.read(1 << 16):
                    return True
        except OSError:
            continue
    return False


def _refuse_empty(export_path: Path) -> None:
    raise BuildRefused(
        f"The export {export_path} holds no messages, so the dataset would be empty. Export the "
        "workspace again with its message history, or point Beep at the right folder (`beep build "
        "--export PATH`, or `beep ingest PATH` first)."
    )


@one_at_a_time("build")  # a second build of this DuckDB file waits for the first (beep.locks)
def build(
    paths: Paths,
    export: Path | None = None,
    *,
    run_tests: bool = True,
    quiet: bool = False,
    dbt_vars: dict[str, object] | None = None,
    select: str | None = None,
    target: str = "duckdb",
    full_refresh: bool = False,
) -> DatasetSummary:
    """`dbt build` (or `dbt run` without tests) of the whole project over ``export``.

    ``dbt_vars`` overrides project vars (context_messages, max_labels, cleaning switches, …);
    ``select`` limits the build to a dbt selection (then no build fingerprint is recorded).
    ``target`` ``spark``: the project builds on Spark (profiles.yml target spark), its tables become
    DuckDB views over their Parquet files, and the models over the Python steps' tables build on
    DuckDB over them (beep.spark_dataset, docs/spark.md).
    ``full_refresh``: dbt's --full-refresh, so that the tables materialized 'reusable_table'
    (staging, intermediate; macros/reusable_table.sql) are rebuilt even when their inputs and SQL
    are unchanged. ``quiet`` False: dbt's own output streams, on stderr (stdout is for results).
    """
    export_path = resolve_export(paths, export)
    if any(export_path.glob("*/*.json")) and not _has_a_message(export_path):
        _refuse_empty(export_path)  # (no day files at all: dbt's own check says what to do)
    fingerprint = build_fingerprint(paths, export_path, dbt_vars, run_tests)
    with connect(paths.duckdb):
        pass  # creates the file and the Python-owned tables dbt sources read
    started = time.monotonic()
    unit_key = unit_tests_key(paths, dbt_vars) if run_tests and target == "duckdb" and not select else None
    keep_unit_tests = unit_key is not None and not full_refresh and unit_tests_passed_key(paths) == unit_key
    tested = EvalRunsTested.of(paths, unit_key, full_refresh) if unit_key is not None else EvalRunsTested()
    args = (["build" if run_tests else "run"] + (["--full-refresh"] if full_refresh else [])
            + (["--select", select, "--indirect-selection", "cautious"] if select else [])
            + (["--exclude-resource-type", "unit_test"] if keep_unit_tests else []))
    all_vars = dict(dbt_vars or {})  # the export goes to dbt as BEEP_SLACK_EXPORT (run_dbt's export)
    results: list[dict[str, object]] = []
    summary_untested: dict[str, int] | None = None
    counted = day_files_counted(paths, export_path) if tested.day_files and target == "duckdb" else None
    with _stdout_to_stderr():
        if target == "spark":
            run_dbt(paths, args, vars=all_vars, quiet=quiet, target="spark", export=export_path)
            results += run_results(paths, "spark")
            manifest = Path(dbt_env(paths, "spark")["DBT_TARGET_PATH"]) / "manifest.json"
            # each view in its model's layer schema, as on DuckDB: the DuckDB-side models ref() them there
            published = publish_to_duckdb(paths, built_relations(run_results(paths, "spark")), model_schemas(manifest))
            with connect(paths.duckdb) as con:  # the views over Parquet get their models' descriptions
                write_model_comments(con, manifest, published)
            if not select:  # the models over the Python steps' tables, on DuckDB over the Spark-built views
                run_dbt(paths, [args[0], "--select", DUCKDB_SIDE_SELECTOR], vars=all_vars, quiet=quiet,
                        export=export_path)
                results += run_results(paths)
        else:
            run_dbt(paths, args, vars=all_vars, quiet=quiet, export=export_path, extra_env=tested.env())
            results += run_results(paths)
            if run_tests and not select:  # every data test ran and passed (run_dbt raises otherwise)
                summary_untested = clear_untested_scopes(paths)
    summary = summarize(paths, export_path)
    summary.target = target
    summary.dbt_results = dbt_result_counts(results)
    summary.warned_tests = warned_tests(results, paths.duckdb if target == "duckdb" else None)
    summary.seconds = time.monotonic() - started
    summary.unit_tests_kept = keep_unit_tests
    summary.eval_runs_tested_through = tested.through
    summary.day_files_counted = counted
    summary.rows_tested = summary_untested if tested.day_files and target == "duckdb" else None
    if target == "duckdb" and any(r.get("unique_id") == "model.beep.stg_slack__messages" for r in results):
        summary.day_files_read = day_files_read(paths.duckdb, conversations_built=any(
            r.get("unique_id") == "model.beep.int_conversation_links" for r in results))
    if target == "spark":
        summary.n_zero_byte_day_files = count_zero_byte_day_files(export_path)
    if select:
        return summary
    if summary.n_raw_messages == 0:
        _refuse_empty(export_path)
    with connect(paths.duckdb) as con:
        con.execute(
            "insert or replace into pipeline_steps (step, fingerprint, result, seconds, finished_at) "
            "values ('build', ?, ?, ?, current_timestamp)",
            [fingerprint, json.dumps({"export_path": str(export_path), "n_examples": summary.n_examples,
                                      "dbt_vars": dbt_vars or {}, "target": target,
                                      "unit_tests_passed": unit_key,
                                      "eval_runs_tested_through": tested.now}, default=str),
             time.monotonic() - started],
        )
    return summary


def clear_untested_scopes(paths: Paths) -> dict[str, int]:
    """After a build whose every data test passed: empty each <model>__untested table (the scopes its
    builds recomputed since the last passing one, macros/untested_rows.sql), as they are now tested.
    Only the incremental models' own: beside the model in its layer schema, with the model's
    <model>__day_files_built (an analyst's `q3__untested` is left alone). Returns how many scopes each
    table held (model -> rows)."""
    cleared: dict[str, int] = {}
    with connect(paths.duckdb) as con:
        tables = con.execute("""
            with untested as (
                select schema_name, table_name, table_name[:-length('__untested') - 1] as model
                from duckdb_tables()
                where database_name = current_database() and schema_name <> 'main' and suffix(table_name, '__untested')
            )
            select schema_name, table_name from untested
            where (schema_name, model) in (select schema_name, table_name from duckdb_tables()
                                           where database_name = current_database())
              and (schema_name, model || '__day_files_built') in (select schema_name, table_name from duckdb_tables()
                                                                 where database_name = current_database())
            order by 1, 2""").fetchall()
        for schema, table in tables:
            name = f'"{schema}"."{table}"'
            cleared[table.removesuffix("__untested")] = con.execute(f"select count(*) from {name}").fetchone()[0]
            con.execute(f"delete from {name}")
    return cleared


def project_fingerprint(project_dir: Path) -> str:
    """A hash of every file the dbt project's output depends on."""
    digest = hashlib.sha256()
    for name in _PROJECT_INPUTS:
        root = project_dir / name
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix in {".sql", ".yml", ".csv"})
        for path in files:
            digest.update(path.relative_to(project_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def unit_tests_key(paths: Paths, dbt_vars: dict[str, object] | None) -> str:
    """What the dbt unit tests' outcome depends on: the project's files, the vars and the versions of
    dbt and DuckDB. Not the export: a unit test reads the fixed rows its YAML gives."""
    from importlib.metadata import version

    parts = [project_fingerprint(paths.project_dir), dbt_vars or {},
             [version(name) for name in ("dbt-core", "dbt-duckdb", "duckdb")]]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EvalRunsTested:
    """Which evaluation runs a build's data tests over stored predictions check (macros/untested_eval_runs.sql).

    A finished run's predictions never change: a run a passing build tested is not tested again while
    the project, the vars and dbt (:func:`unit_tests_key`) stay the same and no --full-refresh is asked.
    ``through``: the newest finish of the runs the last passing build tested (None: test every run);
    ``now``: the newest finish of the finished runs before this build, recorded when it passes."""

    through: str | None = None
    now: str | None = None
    #: The last build passed with the same key and no --full-refresh is asked: the fate reconciliation
    #: test may take the day files that build counted as counted (macros/tested_day_files.sql), and the
    #: data tests of the tables kept day file by day file check only the rows no passing build tested
    #: (macros/untested_rows.sql, :func:`clear_untested_scopes`).
    day_files: bool = False

    @classmethod
    def of(cls, paths: Paths, key: str, full_refresh: bool) -> "EvalRunsTested":
        with connect(paths.duckdb) as con:
            last = con.execute("select result ->> '$.unit_tests_passed', result ->> '$.eval_runs_tested_through' "
                               "from pipeline_steps where step = 'build' order by finished_at desc limit 1").fetchone()
            newest = con.execute("select cast(max(finished_at) as varchar) from eval_runs "
                                 "where status = 'finished'").fetchone()
        same = bool(last and last[0] == key and not full_refresh)
        return cls(last[1] if same else None, newest[0] if newest else None, same)

    def env(self) -> dict[str, str]:
        return ({"BEEP_EVAL_RUNS_TESTED_THROUGH": self.through} if self.through else {}) | (
            {"BEEP_DAY_FILES_TESTED": str(FRESH_FILES_LIMIT), "BEEP_UNTESTED_ROWS": "1"} if self.day_files else {})


#: The most day files the fate reconciliation reads one by one (macros/tested_day_files.sql); past
#: it, one read of the whole folder is cheaper (15,804 files: 1.5 s read whole, 6 s one by one).
FRESH_FILES_LIMIT = 500


def day_files_counted(paths: Paths, export_path: Path) -> tuple[int, int] | None:
    """What the fate reconciliation of a build about to run will read, as macros/tested_day_files.sql
    decides it: (day files to read, day files recorded as they are now by the last passing run of
    the test); None without a record, when the staging code or folder changed since it, or past
    :data:`FRESH_FILES_LIMIT` files to read (the test then reads every file)."""
    with connect(paths.duckdb, read_only=True) as con:
        if not (table_exists(con, TESTED_TABLE) and table_exists(con, SEEN_TABLE)):
            return None
        recorded = {source: (n_bytes, modified_us) for source, n_bytes, modified_us in con.execute(
            f"select source_file, n_bytes, modified_us from {TESTED_TABLE} where code_fingerprint = "
            f"(select any_value(code_fingerprint) from {SEEN_TABLE})").fetchall()}
        last = con.execute("select result ->> '$.export_path' from pipeline_steps where step = 'build' "
                           "order by finished_at desc limit 1").fetchone()
    if not recorded or not last or Path(str(last[0])).resolve() != export_path.resolve():
        return None
    kept = read = 0
    for path in export_path.glob("*/*.json"):
        stat = path.stat()
        if recorded.get(f"{path.parent.name}/{path.name}") == (stat.st_size, stat.st_mtime_ns // 1000):
            kept += 1
        else:
            read += 1
    return (read, kept) if read <= FRESH_FILES_LIMIT else None


def unit_tests_passed_key(paths: Paths) -> str | None:
    """The :func:`unit_tests_key` of the last build, when it ran (or kept) the unit tests and passed."""
    if not paths.duckdb.exists():
        return None
    with connect(paths.duckdb) as con:
        row = con.execute("select result ->> '$.unit_tests_passed' from pipeline_steps where step = 'build' "
                          "order by finished_at desc limit 1").fetchone()
    return row[0] if row else None


def build_fingerprint(paths: Paths, export_path: Path, dbt_vars: dict[str, object] | None, run_tests: bool) -> str:
    """What a build's output depends on: the export's files, the dbt project, the vars. Not the
    target: DuckDB and Spark build the same rows (tests/python/test_spark_build.py), so a dataset
    built on Spark is current for `beep run`'s later steps."""
    parts = [export_fingerprint(export_path), project_fingerprint(paths.project_dir), dbt_vars or {}, run_tests]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_is_current(paths: Paths, fingerprint: str, target: str | None = None) -> bool:
    """Whether the dataset in the DuckDB file is the latest build and was built from exactly these
    inputs (and, when ``target`` is given, on that target; `beep run` accepts either)."""
    if not paths.duckdb.exists():
        return False
    with connect(paths.duckdb) as con:
        if not table_exists(con, "training_examples"):
            return False
        row = con.execute(
            "select fingerprint, result from pipeline_steps where step = 'build' order by finished_at desc limit 1"
        ).fetchone()
    if not (row and row[0] == fingerprint):
        return False
    if target is not None and last_build_target(row[1]) != target:
        return False
    # a Spark build is read through views over its Parquet files: current only while they are there
    return last_build_target(row[1]) != "spark" or spark_views_readable(paths)


def summarize(paths: Paths, export_path: Path) -> DatasetSummary:
    """Read the headline numbers of the dataset from the DuckDB file."""
    summary = DatasetSummary(export_path=export_path)
    with connect(paths.duckdb, read_only=True) as con:
        if not table_exists(con, "training_examples"):
            return summary
        n, n_conv, newcomers = con.execute(
            "select count(*), count(distinct conversation_id), coalesce(avg(case when responder_spoke_before then 0 else 1 end), 0) from training_examples"
        ).fetchone()
        summary.n_examples, summary.n_conversations, summary.newcomer_share = int(n), int(n_conv), float(newcomers)
        summary.fates = [
            (fate, reason, int(count))
            for fate, reason, count in con.execute(
                "select fate, reason, sum(n_messages) from message_fate_counts group by all order by fate, 3 desc"
            ).fetchall()
        ]
        summary.n_raw_messages = sum(count for _, _, count in summary.fates)
        summary.labels = [
            (int(label), str(name), int(count))
            for label, name, count in con.execute("select label, user_name, n_examples from user_labels order by label").fetchall()
        ]
        summary.n_labels = len(summary.labels)
        summary.n_folded_responders = int(con.execute(
            "select coalesce(sum(n_users), 0) from user_labels where n_users > 1").fetchone()[0])
        summary.table_rows = {  # by the name an analyst's plain connection needs: the schema too
            f"{where[0]}.{table}": int(con.execute(f'select count(*) from "{where[0]}"."{table}"').fetchall()[0][0])
            for table in MAIN_TABLES
            if (where := con.execute("select table_schema from information_schema.tables where table_catalog = "
                                     "current_database() and table_name = ? and list_contains(?, table_schema) "
                                     "order by list_position(?, table_schema) limit 1",
                                     [table, list(SEARCH_PATH), list(SEARCH_PATH)]).fetchone())
        }
        if table_exists(con, "stg_slack__messages") and table_exists(con, "stg_slack__users"):
            n_msgs, n_ids = con.execute(
                "select count(*), count(distinct m.user_id) from stg_slack__messages as m "
                "where m.user_id is not null and m.user_id <> ? and m.user_id not in (select user_id from stg_slack__users)",
                [SLACKBOT_ID],
            ).fetchone()
            summary.n_unknown_user_messages, summary.n_unknown_users = int(n_msgs), int(n_ids)
        if table_exists(con, "ingests"):
            summary.ingest_issues = {
                str(issue): int(n)
                for issue, n in con.execute(
                    "select issue, sum(n) from ingest_issues where ingest_id = ("
                    " select ingest_id from ingests where export_path = ? order by ingested_at desc limit 1)"
                    " group by issue order by issue",
                    [str(export_path)],
                ).fetchall()
            }
    return summary


def last_build_vars(con: "duckdb.DuckDBPyConnection") -> dict[str, object]:
    """The dbt vars the last `beep build` / `beep run` built the dataset with (beyond dbt_project.yml):
    prediction prompts must be built the way the training prompts were."""
    if not table_exists(con, "pipeline_steps"):  # a dataset built by dbt alone
        return {}
    row = con.execute(
        "select result from pipeline_steps where step = 'build' order by finished_at desc limit 1"
    ).fetchone()
    if not row or not row[0]:
        return {}
    result = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return dict(result.get("dbt_vars") or {})
