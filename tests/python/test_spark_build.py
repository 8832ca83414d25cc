"""The same dbt project on Spark (dbt-spark, a local Spark in the dbt process): one build of the
bundled sample, compared row for row with the DuckDB build of the `built_paths` fixture, and the
later steps of `beep run` on the Spark-built dataset (docs/spark.md).

One Spark build for the whole module (session scope): Spark's fixed cost is high (start-up, and
about a quarter of a second for each of the ~110 data tests). Its warehouse, metastore and Parquet
files live in the fixture's tmp folder (Paths.spark_dir: <workdir>/spark/<db key>).

The build runs the unit tests (Spark's spelling of the macros on their edge cases) but not the data
tests (DBT_EXCLUDE_RESOURCE_TYPES=test): they would check data this module proves equal, row for
row, to DuckDB's, whose data tests pass, at ~30 s of CPU the suite's 10 minutes cannot spare.
`bench/bench_spark.py --quick` runs every data and unit test on Spark (docs/spark.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import pytest

from beep.build import build, build_fingerprint, build_is_current
from beep.config import SAMPLE_EXPORT, Paths
from beep.db import open_duckdb
from beep.dbt_runner import dbt_env, run_results
from beep.pipeline import RunOptions, run_pipeline
from beep.spark_dataset import built_relations, tables_dir

# the one Spark build runs in the first test's setup: about 3 minutes at a load of 5 on 2 cores
pytestmark = pytest.mark.timeout(900)

#: What the Spark build must produce at least (the marts the Python steps read and what they stand on).
EXPECTED_TABLES = {
    "stg_slack__users", "stg_slack__channels", "stg_slack__messages", "stg_slack__day_files",
    "int_slack__messages_cleaned", "int_conversations", "int_conversation_windows",
    "training_examples", "user_labels", "message_fate_counts",
    "fewshot_examples", "fewshot_generic", "model_prices",
}


#: The build's JVM (the dbt process's local Spark) compiles with the JIT's first tier only: it lives a
#: few minutes running ~140 small queries, where the optimizing compiler (C2) costs more CPU than it
#: saves. The whole build (dbt, Python, JVM) took 168 s of CPU with the JVM's defaults and 137 s with
#: C1 only (one build each of the sample at a load of ~9, CPU time of the process tree). The deeper
#: stack: C1's frames are larger than C2's, and Spark's plan optimizer recurses deeply. The serial
#: collector: a heap this small needs no parallel GC threads competing with the build; the whole
#: test file took 168 s of the machine's CPU without it and 123 s with it (each run alone on 2 cores,
#: /proc/stat before and after). A larger code cache: C1-only code fills the default one when the
#: JVM sizes itself for fewer processors ("Out of space in CodeCache for adapters", seen once).
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -Xss16m -XX:+UseSerialGC -XX:ReservedCodeCacheSize=256m"


@pytest.fixture(scope="session")
def spark_paths(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """Paths of a DuckDB file whose dataset `beep build --target spark` built from the sample."""
    root = tmp_path_factory.mktemp("spark")
    paths = Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAVA_TOOL_OPTIONS", JVM_OPTIONS)
        patch.setenv("DBT_EXCLUDE_RESOURCE_TYPES", "test")  # the data tests: see the module docstring
        build(paths, SAMPLE_EXPORT, run_tests=True, quiet=True, target="spark")
    (root / "seconds").write_text(f"{time.monotonic() - started:.1f}")
    return paths


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> tuple[str, list[str]]:
    """The table's schema (staging, intermediate, marts; main for the seeds) and its columns."""
    rows = con.execute(
        "select table_schema, column_name from information_schema.columns where table_catalog = ? and table_name = ? "
        "order by ordinal_position", [catalog, table]).fetchall()
    assert len({schema for schema, _ in rows}) == 1, f"{catalog}: {table} in more than one schema: {rows}"
    return rows[0][0], [column for _, column in rows]


def test_spark_tables_equal_duckdbs_row_for_row(spark_paths: Paths, built_paths: Paths) -> None:
    names = built_relations(run_results(spark_paths, "spark"))
    assert EXPECTED_TABLES <= set(names), f"the Spark build did not build {sorted(EXPECTED_TABLES - set(names))}"
    con = duckdb.connect()
    con.execute(f"attach '{built_paths.duckdb}' as duck (read_only)")
    con.execute(f"attach '{spark_paths.duckdb}' as spark (read_only)")
    differences = {}
    for name in names:
        schema, columns = _columns(con, "duck", name)
        # the view over Spark's Parquet sits in the layer schema DuckDB's build put the table in
        assert (schema, columns) == _columns(con, "spark", name), f"{name}: another schema or other columns on Spark"
        assert schema == ("main" if name in ("model_prices", "fewshot_examples", "fewshot_generic") else
                          "staging" if name.startswith("stg_") else "intermediate" if name.startswith("int_") else "marts")
        select = ", ".join(f'"{c}"' for c in columns)
        relation = f'"{schema}"."{name}"'
        # EXCEPT ALL both ways: the same rows, each as often (integer widths may differ: int vs bigint)
        only_duckdb, only_spark, n = con.execute(f"""
            select
                (select count(*) from (select {select} from duck.{relation} except all select {select} from spark.{relation})),
                (select count(*) from (select {select} from spark.{relation} except all select {select} from duck.{relation})),
                (select count(*) from spark.{relation})
        """).fetchone()
        if only_duckdb or only_spark or n == 0 and name in ("training_examples", "user_labels"):
            differences[name] = {"only_duckdb": only_duckdb, "only_spark": only_spark, "rows": n}
    assert not differences, f"Spark's tables differ from DuckDB's: {differences}"
    # the Python steps read them through views over the Parquet files
    spark_views = dict(con.execute(
        "select table_name, table_type from information_schema.tables where table_catalog = 'spark'").fetchall())
    assert {spark_views[name] for name in names} == {"VIEW"}
    sql = con.execute("select sql from duckdb_views() where database_name = 'spark' and view_name = 'training_examples'").fetchone()[0]
    assert str(tables_dir(spark_paths) / "training_examples") in sql


def test_spark_runs_every_unit_test_duckdb_runs_on_its_models(spark_paths: Paths, built_paths: Paths) -> None:
    spark = {r["unique_id"]: r["status"] for r in run_results(spark_paths, "spark")}
    duck = {r["unique_id"]: r["status"] for r in run_results(built_paths)}
    assert set(spark.values()) <= {"success", "pass"}, {k: v for k, v in spark.items() if v not in ("success", "pass")}
    manifest = json.loads((Path(dbt_env(spark_paths, "spark")["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    on_spark = {uid for uid, node in manifest["nodes"].items() if node["resource_type"] in ("model", "seed")}
    # every unit test DuckDB ran whose models all build on Spark ran on Spark too (the data tests are
    # left out here: see the module docstring)
    expected = set()
    duck_manifest = json.loads((Path(dbt_env(built_paths)["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    for uid in duck:
        node = {**duck_manifest["nodes"], **duck_manifest.get("unit_tests", {})}.get(uid)
        if node is None or node["resource_type"] != "unit_test":
            continue
        parents = [p for p in node["depends_on"]["nodes"] if p.split(".")[0] in ("model", "seed")]
        if parents and all(p in on_spark for p in parents):
            expected.add(uid)
    assert expected - set(spark) == set(), f"run on DuckDB but not on Spark: {sorted(expected - set(spark))}"
    assert sum(uid.startswith("unit_test.") for uid in spark) >= 6
    assert not any(uid.startswith("test.") for uid in spark)


def test_the_later_steps_of_beep_run_work_from_the_spark_dataset(spark_paths: Paths) -> None:
    """`beep build --target spark` then `beep run`: the build is current (not redone on DuckDB), and
    refine, export, finetune and evaluate run from the Spark-built tables."""
    fingerprint = build_fingerprint(spark_paths, SAMPLE_EXPORT, None, True)
    assert build_is_current(spark_paths, fingerprint)
    assert build_is_current(spark_paths, fingerprint, "spark")
    assert not build_is_current(spark_paths, fingerprint, "duckdb")  # `beep build` (DuckDB) builds again
    result = run_pipeline(spark_paths, RunOptions(export=SAMPLE_EXPORT, isolate_steps=False))
    assert "build" in result.skipped
    assert result.evaluation is not None and result.report_path is not None and result.report_path.is_file()
    with open_duckdb(str(spark_paths.duckdb), read_only=True) as con:
        n_examples = con.execute("select count(*) from training_examples").fetchone()[0]
        n_refined = con.execute("select count(*) from refined_training_examples").fetchone()[0]
        n_verdicts = con.execute("select count(*) from refine_verdicts").fetchone()[0]
        n_metrics = con.execute("select count(*) from evaluation_metrics").fetchone()[0]
    assert n_examples == n_refined == 3081
    assert n_verdicts > 0 and n_metrics > 0


def test_a_spark_build_whose_parquet_files_are_gone_is_not_current(spark_paths: Paths, tmp_path: Path) -> None:
    """The DuckDB views point at the Spark build's files: without them the build must run again."""
    import shutil

    copy = Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")
    shutil.copy(spark_paths.duckdb, copy.duckdb)
    fingerprint = build_fingerprint(copy, SAMPLE_EXPORT, None, True)
    # the copied views still read the original files ...
    assert build_is_current(copy, fingerprint)
    # ... and a DuckDB file whose views point at a folder that is gone is not current
    moved = tmp_path / "moved" / "training_examples"
    shutil.copytree(tables_dir(spark_paths) / "training_examples", moved)
    with open_duckdb(str(copy.duckdb)) as con:
        con.execute(f"create or replace view marts.training_examples as select * from read_parquet('{moved}/*.parquet')")
    assert build_is_current(copy, fingerprint)
    shutil.rmtree(moved)
    assert not build_is_current(copy, fingerprint)
