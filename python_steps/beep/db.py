"""Short-lived DuckDB connections.

DuckDB lets one process write a file at a time and a writer locks out other processes, so every
step opens the file only for the few statements it needs (`with connect(path) as con: ...`) and
closes it straight away: an analyst's session or a `dbt run` can get in between two writes. When
another process holds the file, :func:`connect` waits and retries for a while and then says who
to look for.

The file has a schema per layer (docs/analysts.md): the dbt models in ``staging``, ``intermediate``
and ``marts`` (dbt_project.yml), the Python steps' own tables in ``main``. Every connection Beep
opens reads unqualified names through :data:`SEARCH_PATH` (:func:`set_search_path`), ``main``
first, so that an unqualified ``create table`` still lands in ``main``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from beep.config import LAYER_SCHEMAS, SEARCH_PATH, STEP_SCHEMA
from beep.migrations import migrate

__all__ = ["LAYER_SCHEMAS", "SEARCH_PATH", "STEP_SCHEMA", "BuiltByAnOlderBeep", "DatabaseBusy", "DatabaseUnreadable",
           "connect", "open_duckdb", "require_layer_schemas",
           "set_search_path", "table_exists"]


class DatabaseUnreadable(RuntimeError):
    """The path is not a DuckDB file Beep can open (a folder, a damaged or foreign file)."""


class BuiltByAnOlderBeep(ValueError):
    """The file's dataset is still where a Beep from before the layer schemas built it (``main``)."""


class DatabaseBusy(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than we were willing to wait."""


def _is_lock_error(err: Exception) -> bool:
    text = str(err).lower()
    return "lock" in text or "could not set lock" in text or "conflicting lock" in text


def _memory_limit() -> str:
    """BEEP_DUCKDB_MEMORY_LIMIT (e.g. 1GB, 512MB), as the dbt profile reads it; 1GB by default."""
    value = os.environ.get("BEEP_DUCKDB_MEMORY_LIMIT", "1GB").strip()
    if not value or not all(c.isalnum() or c in ". " for c in value):
        raise ValueError(f"BEEP_DUCKDB_MEMORY_LIMIT={value!r} is not a size like 1GB or 512MB")
    return value


@contextmanager
def connect(path: Path, *, read_only: bool = False, wait_seconds: float = 60.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the DuckDB file (creating it and its Beep tables when writing), yield, close.

    Retries while another process holds the write lock, for up to ``wait_seconds``.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist yet: build the dataset first with `beep build` (or `beep run`)."
        )
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    said = False
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as err:
            if not _is_lock_error(err):
                raise DatabaseUnreadable(
                    f"{path} cannot be opened as a DuckDB file ({err}). If it is not Beep's database, pass "
                    f"another --db (or BEEP_DUCKDB_PATH); if it is damaged, move it away and run `beep run` "
                    f"again to rebuild it."
                ) from err
            if time.monotonic() > deadline:
                raise DatabaseBusy(
                    f"{path} is locked by another process (a dbt run, a notebook, another beep step?) "
                    f"and stayed locked for {wait_seconds:.0f} s. Close that session and run again. "
                    f"DuckDB said: {err}"
                ) from err
            if not said and wait_seconds >= 2:
                sys.stderr.write(f"waiting up to {wait_seconds:.0f} s for {path}: another process holds its lock\n")
                said = True
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        # timestamps Beep stores (current_timestamp into timestamp columns) are UTC, whatever the machine's zone
        con.execute("set TimeZone = 'UTC'")
        # DuckDB's buffer pool would otherwise grow to 80 % of RAM holding pages a step read once;
        # the same limit as the dbt profile (beyond it DuckDB spills to disk)
        con.execute(f"set memory_limit = '{_memory_limit()}'")
        # DuckDB draws its own progress bar on stdout for queries over 2 s: stdout is for results
        con.execute("set enable_progress_bar = false")
        if not read_only:
            migrate(con)
        set_search_path(con)
        yield con
    finally:
        con.close()


def set_search_path(con: duckdb.DuckDBPyConnection) -> str:
    """Make unqualified names find the dbt models in their layer schemas as well as the step tables
    in ``main`` (:data:`SEARCH_PATH`, those of its schemas the file has: DuckDB refuses a search path
    naming a schema that does not exist, as in a file no dbt build has run on); return the path set.

    ``main`` comes first: an unqualified ``create table`` lands there, and a model's old copy left in
    ``main`` by a Beep from before the layer schemas would hide the new one, until the next build
    drops it (macros/layer_schemas.sql)."""
    present = {row[0] for row in con.execute(
        "select schema_name from duckdb_schemas() where database_name = current_database()").fetchall()}
    path = ",".join(schema for schema in SEARCH_PATH if schema in present)
    con.execute(f"set search_path = '{path}'")
    return path


def open_duckdb(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB connection to a Beep file with :func:`set_search_path` applied, as an analyst's
    session would be (no migrations, no waiting for a lock): for scripts, benchmarks and tests that
    query the models by their unqualified names. The caller closes it (or uses ``with``)."""
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        set_search_path(con)
    except BaseException:
        con.close()
        raise
    return con


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view of that name exists in one of the schemas of :data:`SEARCH_PATH`
    (the step tables' ``main`` or a layer schema of the dbt models) of the connection's file."""
    row = con.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        "and list_contains(?, table_schema) and table_name = ?",
        [list(SEARCH_PATH), name],
    ).fetchone()
    return bool(row and row[0])


def pruned_column(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """``pruned_at`` when ``table`` has that column (migrations.m015_pruned), else ``null``: what a query
    selects so that a file of an older Beep opened read-only (not migrated yet) reads as never pruned."""
    row = con.execute(
        "select count(*) from information_schema.columns where table_catalog = current_database() "
        "and table_schema = 'main' and table_name = ? and column_name = 'pruned_at'", [table]).fetchone()
    return "pruned_at" if row and row[0] else "cast(null as timestamp)"


def require_layer_schemas(con: duckdb.DuckDBPyConnection, model: str = "training_examples") -> None:
    """Refuse, saying what to run, a file whose dataset an older Beep built in ``main``: the dbt models a
    step rebuilds on its own (refine's, the evaluation views) ``ref()`` the dataset in its layer schema,
    which only a whole `beep build` makes (and that build also drops the old copies in ``main``)."""
    rows = con.execute(
        "select table_schema from information_schema.tables where table_catalog = current_database() "
        "and table_name = ?", [model]).fetchall()
    schemas = {schema for (schema,) in rows}
    if STEP_SCHEMA in schemas and not schemas & set(LAYER_SCHEMAS):
        raise BuiltByAnOlderBeep(
            f"This DuckDB file was built by an older Beep: its dataset ({model}) is in the schema {STEP_SCHEMA}, "
            f"and Beep now keeps the dbt models in {', '.join(LAYER_SCHEMAS)}. Run `beep build` (or `beep run`) "
            "once on it: it moves them and keeps every step's results.")
