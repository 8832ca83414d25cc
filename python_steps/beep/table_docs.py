"""The descriptions of the tables the Python steps own, written into DuckDB as comments.

The text lives once, in the dbt sources of models/staging/beep/ (``_beep.yml``): dbt docs show it,
and :func:`write_comments` writes it into the DuckDB file (``COMMENT ON TABLE`` / ``COMMENT ON
COLUMN``), so an analyst sees it in ``duckdb_tables()`` / ``duckdb_columns()`` beside the dbt
models' own descriptions (``persist_docs`` in dbt_project.yml). It runs after the migrations
(:func:`beep.migrations.migrate`), and only when the YAML changed since it last ran: the YAML's
hash is kept on the last line of ``_beep_migrations``' comment. The Python steps' tables live in
``main`` (:data:`beep.config.STEP_SCHEMA`); the models in their layer schemas (:func:`model_schemas`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from beep.config import PROJECT_DIR, STEP_SCHEMA

#: Where the sources describing the Python steps' tables live.
SOURCES_DIR = PROJECT_DIR / "models" / "staging" / "beep"
#: The table whose comment carries the hash of the descriptions last written.
MARKER_TABLE = "_beep_migrations"
_MARK = "beep docs "


@dataclass(frozen=True)
class TableDoc:
    """A table's description and its columns' (name -> description)."""

    name: str
    description: str
    columns: dict[str, str]


def _source_files(sources_dir: Path) -> list[Path]:
    return sorted(sources_dir.glob("*.yml")) if sources_dir.is_dir() else []


def docs_hash(sources_dir: Path = SOURCES_DIR) -> str:
    """A hash of the YAML files the descriptions come from."""
    digest = hashlib.sha256()
    for path in _source_files(sources_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def source_tables(sources_dir: Path = SOURCES_DIR) -> dict[str, TableDoc]:
    """Every table of the dbt sources in ``sources_dir``'s YAML files, by name."""
    tables: dict[str, TableDoc] = {}
    for path in _source_files(sources_dir):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for source in document.get("sources") or []:
            for table in source.get("tables") or []:
                columns = {c["name"]: " ".join(str(c.get("description") or "").split())
                           for c in table.get("columns") or []}
                tables[table["name"]] = TableDoc(
                    name=table["name"], description=" ".join(str(table.get("description") or "").split()),
                    columns=columns,
                )
    return tables


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def write_comments(con: duckdb.DuckDBPyConnection, sources_dir: Path = SOURCES_DIR, *, force: bool = False) -> int:
    """Write the sources' descriptions as comments on the tables and columns that exist in ``con``'s
    schema of the step tables (:data:`~beep.config.STEP_SCHEMA`, ``main``); return how many comments were written (0 when the YAML is unchanged since the last
    time, unless ``force``)."""
    current = docs_hash(sources_dir)
    if not current or not _source_files(sources_dir):
        return 0
    rows = con.execute(
        "select comment from duckdb_tables() where database_name = current_database() and schema_name = ? "
        "and table_name = ?", [STEP_SCHEMA, MARKER_TABLE]
    ).fetchall()
    if not rows:
        return 0
    recorded = (rows[0][0] or "").rsplit("\n", 1)[-1].split(":", 1)[0]
    if not force and recorded == _MARK + current:
        return 0
    docs = source_tables(sources_dir)
    existing: dict[str, set[str]] = {}
    for table, column in con.execute(
        "select table_name, column_name from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and not internal", [STEP_SCHEMA]
    ).fetchall():
        existing.setdefault(table, set()).add(column)
    written = 0
    for name, doc in docs.items():
        if name not in existing:
            continue
        description = doc.description
        if name == MARKER_TABLE:
            # a line an analyst can read, as the dbt tables' "beep fingerprint ..." line
            description = (f"{description}\n{_MARK}{current}: the version of these descriptions (models/staging/beep/"
                           "*.yml), written into the file by python_steps/beep/table_docs.py")
        table = f"{_quote(STEP_SCHEMA)}.{_quote(name)}"
        con.execute(f"comment on table {table} is {_literal(description)}")
        written += 1
        for column, text in doc.columns.items():
            if column in existing[name] and text:
                con.execute(f"comment on column {table}.{_quote(column)} is {_literal(text)}")
                written += 1
    return written


def _literal(text: str) -> str:
    """A SQL string literal (COMMENT ON takes no bound parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _manifest_nodes(manifest_path: Path) -> dict[str, dict[str, object]]:
    """dbt's manifest's models and seeds, by name."""
    return {
        node["name"]: node
        for node in json.loads(manifest_path.read_text(encoding="utf-8"))["nodes"].values()
        if node.get("resource_type") in ("model", "seed")
    }


def _duckdb_schema(node: dict[str, object]) -> str:
    """The DuckDB schema of a model or seed: its +schema as it is (dbt_project.yml: staging,
    intermediate, marts; macros/layer_schemas.sql), the step tables' ``main`` without one (seeds).
    Read from the config, not the node's schema: on Spark every table sits in the target's schema."""
    config = node.get("config")
    schema = config.get("schema") if isinstance(config, dict) else None
    return str(schema).strip() if schema else STEP_SCHEMA


def model_schemas(manifest_path: Path) -> dict[str, str]:
    """Each model's and seed's schema in the DuckDB file (name -> schema), from dbt's manifest
    (of either target); empty when there is no manifest."""
    if not manifest_path.is_file():
        return {}
    return {name: _duckdb_schema(node) for name, node in _manifest_nodes(manifest_path).items()}


def write_model_comments(con: duckdb.DuckDBPyConnection, manifest_path: Path, names: list[str]) -> int:
    """Comment the relations ``names`` (views over a Spark build's Parquet, which dbt's persist_docs
    never sees), each in its model's DuckDB schema (:func:`model_schemas`), and their columns with
    their models' and seeds' descriptions in dbt's manifest; return how many comments were written."""
    if not manifest_path.is_file():
        return 0
    nodes = _manifest_nodes(manifest_path)
    existing: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for schema, table, kind, column in con.execute(
        """select c.schema_name, c.table_name, case when v.view_name is null then 'table' else 'view' end, c.column_name
           from duckdb_columns() as c
           left join duckdb_views() as v
             on v.database_name = c.database_name and v.schema_name = c.schema_name and v.view_name = c.table_name
           where c.database_name = current_database() and not c.internal"""
    ).fetchall():
        existing.setdefault((schema, table), (kind, set()))[1].add(column)
    written = 0
    for name in names:
        node = nodes.get(name)
        if node is None:
            continue
        schema = _duckdb_schema(node)
        if (schema, name) not in existing:
            continue
        kind, columns = existing[(schema, name)]
        relation = f"{_quote(schema)}.{_quote(name)}"
        description = " ".join(str(node.get("description") or "").split())
        if description:
            con.execute(f"comment on {kind} {relation} is {_literal(description)}")
            written += 1
        node_columns = node.get("columns")
        for column, doc in (node_columns if isinstance(node_columns, dict) else {}).items():
            text = " ".join(str(doc.get("description") or "").split())
            if text and column in columns:
                con.execute(f"comment on column {relation}.{_quote(column)} is {_literal(text)}")
                written += 1
    return written
