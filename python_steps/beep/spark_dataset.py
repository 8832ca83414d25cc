"""A dataset built by dbt on Spark, made readable to the Python steps (docs/spark.md).

`beep build --target spark` runs the dbt project on Spark (profiles.yml target ``spark``): the
staging, intermediate and mart tables land as Parquet under ``<spark dir>/tables/<model>/``. The
Python steps keep their own tables (refine_verdicts, predictions, ...) in the DuckDB file, so the
design is: **DuckDB reads the Spark-built Parquet**. Each table Spark built becomes a DuckDB view
over its Parquet files (no copy), and the dbt models over the Python-owned tables (tag
``duckdb_side``: models/staging/beep, marts/refine, marts/evaluation, marts/alerts, disabled on
Spark) are then built on DuckDB over those views. Every later step (refine, export, finetune,
evaluate, predict, report) reads the DuckDB file as after a DuckDB build.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from beep.config import STEP_SCHEMA, Paths
from beep.db import connect

#: The dbt target names Beep knows (profiles.yml).
TARGETS = ("duckdb", "spark")
#: profiles.yml's name for each target.
PROFILE_TARGETS = {"duckdb": "dev", "spark": "spark"}
#: The dbt selector of the models that read the Python steps' tables (built on DuckDB).
DUCKDB_SIDE_SELECTOR = "tag:duckdb_side"


class SparkDatasetMissing(RuntimeError):
    """The Spark build's Parquet files are not where the DuckDB views expect them."""


def spark_dir(paths: Paths) -> Path:
    """Where the local Spark keeps its warehouse, metastore and Parquet tables (:attr:`Paths.spark_dir`)."""
    return paths.spark_dir


def tables_dir(paths: Paths) -> Path:
    """dbt_project.yml's location_root on Spark: one folder of Parquet files per table."""
    return spark_dir(paths) / "tables"


def built_relations(run_results: list[dict[str, object]]) -> list[str]:
    """The tables (models and seeds) a dbt run on Spark built successfully, by name."""
    names = []
    for result in run_results:
        unique_id = str(result.get("unique_id", ""))
        kind = unique_id.split(".", 1)[0]
        if kind in ("model", "seed") and result.get("status") == "success":
            names.append(unique_id.rsplit(".", 1)[-1])
    return sorted(set(names))


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def publish_to_duckdb(paths: Paths, names: list[str], schemas: Mapping[str, str] | None = None) -> list[str]:
    """Create (or replace) one DuckDB view per Spark-built table over its Parquet files, in the
    model's layer schema as a DuckDB build would put it (``schemas``: name -> schema, from the
    manifest, :func:`beep.table_docs.model_schemas`; ``main`` for a name it lacks, the seeds); return
    the names published. A table of the same name from an earlier DuckDB build is dropped first, and
    so is a copy in ``main`` left by a Beep from before the layer schemas (it would hide the view)."""
    root = tables_dir(paths)
    missing = [name for name in names if not any((root / name).glob("*.parquet"))]
    if missing:
        raise SparkDatasetMissing(
            f"The Spark build reported {', '.join(missing)} built, but {root} holds no Parquet files for "
            "them. On a real cluster, location_root (dbt_project.yml) must be a folder this machine can read "
            "too (docs/spark.md); locally, run `beep build --target spark --rebuild`."
        )
    schemas = schemas or {}
    with connect(paths.duckdb) as con:
        kinds = {(schema, name): kind for schema, name, kind in con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database()"
        ).fetchall()}
        for name in names:
            schema = schemas.get(name, STEP_SCHEMA)
            con.execute(f"create schema if not exists {_quote(schema)}")
            if kinds.get((schema, name)) == "BASE TABLE":
                con.execute(f"drop table {_quote(schema)}.{_quote(name)}")
            if schema != STEP_SCHEMA and (STEP_SCHEMA, name) in kinds:
                kind = "view" if kinds[(STEP_SCHEMA, name)] == "VIEW" else "table"
                con.execute(f"drop {kind} {_quote(STEP_SCHEMA)}.{_quote(name)}")
            glob = (root / name).as_posix() + "/*.parquet"
            con.execute(f"create or replace view {_quote(schema)}.{_quote(name)} as "
                        f"select * from read_parquet({_sql_string(glob)})")
    return names


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def spark_views_readable(paths: Paths) -> bool:
    """Whether the DuckDB views over a Spark build still find their Parquet files."""
    with connect(paths.duckdb, read_only=True) as con:
        try:
            con.execute("select 1 from training_examples limit 1").fetchall()
        except Exception:  # noqa: BLE001 - duckdb raises IOException / InvalidInputException for missing files
            return False
    return True


def count_zero_byte_day_files(export_path: Path) -> int:
    """Day files of zero bytes: Spark's file listing leaves them out, so they are counted here."""
    return sum(1 for day_file in export_path.glob("*/*.json") if day_file.is_file() and day_file.stat().st_size == 0)


def last_build_target(result_json: str | None) -> str:
    """The target of a build as recorded in pipeline_steps.result (older rows: DuckDB)."""
    if not result_json:
        return "duckdb"
    result = json.loads(result_json) if isinstance(result_json, str) else result_json
    return str(result.get("target") or "duckdb")
