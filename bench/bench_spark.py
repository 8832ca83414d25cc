"""The dbt project on DuckDB and on Spark (dbt-spark, a local Spark in the dbt process), side by side.

For one export (default: the realistic 1,000,000-message export of bench_dataset.py, generated
when missing), `dbt <command>` on each adapter from a fresh start: a new DuckDB file, a new Spark
warehouse, metastore and Parquet folder. Measured: wall time and the peak memory of the whole
process tree (psutil over dbt and its children: on Spark most of it is the JVM, which `time -v`
on the Python process would not see). The machine's load average before and after each run is
reported beside the numbers, since these machines are shared. Then the tables both built are
compared row for row (EXCEPT ALL both ways, through DuckDB reading Spark's Parquet files).

    .venv/bin/python bench/bench_spark.py                 # 1,000,000 messages, dbt run
    .venv/bin/python bench/bench_spark.py --quick         # the bundled sample, dbt build
    .venv/bin/python bench/bench_spark.py --command build --messages 20000

Results: bench/out/spark-<size>-<command>.json and a table on stdout (docs/spark.md quotes them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_dataset import ensure_export  # noqa: E402
from measure import Measurement, run_measured, tail  # noqa: E402

OUT = HERE / "out"
VENV_BIN = Path(sys.executable).parent
SAMPLE = REPO / "sample_data" / "acme-slack-export"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_adapter(adapter: str, command: str, export: Path, work: Path, project: Path) -> tuple[Measurement, dict]:
    """`dbt <command>` on one adapter from a fresh start; the measurement and the run's facts."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = {"DBT_PROFILES_DIR": str(project), "BEEP_DUCKDB_PATH": str(work / "beep.duckdb"),
           "BEEP_SPARK_DIR": str(work / "spark"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    cmd = [str(VENV_BIN / "dbt"), command, "--project-dir", str(project), "--target-path", str(work / "target"),
           "--log-path", str(work / "logs"), "--vars", json.dumps({"slack_export": str(export)})]
    if adapter == "spark":
        cmd += ["--target", "spark"]
    load_before = _load()
    print(f"  {adapter}: dbt {command} ... (load {load_before})", flush=True)
    m = run_measured(f"{adapter}-{command}", cmd, work / f"{adapter}.log", env=env, cwd=project)
    if m.returncode != 0:
        raise SystemExit(f"{adapter}: dbt {command} failed (exit {m.returncode}); log {m.log}:\n{tail(m.log)}")
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    slowest = sorted(results, key=lambda r: -r["execution_time"])[:5]
    return m, {"adapter": adapter, "seconds": round(m.seconds, 1), "peak_mb": round(m.peak_mb),
               "cpu_seconds": round(m.cpu_seconds, 1), "load_before": load_before, "load_after": _load(),
               "statuses": statuses,
               "slowest": [{"node": r["unique_id"], "seconds": round(r["execution_time"], 1)} for r in slowest]}


def compare(duck_db: Path, spark_tables: Path) -> dict[str, dict]:
    """Every table Spark wrote against DuckDB's table of the same name, row for row."""
    con = duckdb.connect()
    con.execute(f"attach '{duck_db}' as duck (read_only)")
    out = {}
    for folder in sorted(p for p in spark_tables.iterdir() if p.is_dir()):
        name, files = folder.name, (folder.as_posix() + "/*.parquet").replace("'", "''")
        found = con.execute(  # in its layer schema (staging, intermediate, marts; seeds in main)
            "select table_schema, column_name from information_schema.columns where table_catalog = 'duck' and table_name = ? "
            "order by ordinal_position", [name]).fetchall()
        if not found:
            continue
        relation = f'duck."{found[0][0]}"."{name}"'
        select = ", ".join(f'"{c}"' for _, c in found)
        only_duck, only_spark, rows = con.execute(f"""
            select (select count(*) from (select {select} from {relation} except all select {select} from read_parquet('{files}'))),
                   (select count(*) from (select {select} from read_parquet('{files}') except all select {select} from {relation})),
                   (select count(*) from read_parquet('{files}'))""").fetchone()
        out[name] = {"rows": rows, "only_duckdb": only_duck, "only_spark": only_spark}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="The bundled sample (5,000 messages) with dbt build.")
    parser.add_argument("--messages", type=int, default=1_000_000,
                        help="Size of the realistic generated export (bench_dataset.py's; default 1,000,000).")
    parser.add_argument("--command", choices=["run", "build"], default=None,
                        help="dbt run (the models) or dbt build (seeds, models, every test); "
                             "default: run, --quick: build.")
    parser.add_argument("--adapters", default="duckdb,spark", help="Comma-separated: duckdb, spark (default both).")
    parser.add_argument("--project", type=Path, default=REPO, help="The dbt project to measure (default: this repo).")
    args = parser.parse_args(argv)
    command = args.command or ("build" if args.quick else "run")
    OUT.mkdir(exist_ok=True)
    if args.quick:
        export, size = SAMPLE, "sample"
    else:
        export, _, _ = ensure_export("realistic", args.messages, OUT / "logs")
        size = str(args.messages)
    adapters = [a.strip() for a in args.adapters.split(",") if a.strip()]
    rows, works = [], {}
    for adapter in adapters:
        works[adapter] = OUT / f"spark-bench-{adapter}-{size}"
        _, facts = run_adapter(adapter, command, export, works[adapter], args.project.resolve())
        rows.append(facts)
        print(f"  {adapter}: {facts['seconds']} s, peak {facts['peak_mb']} MB (process tree), load "
              f"{facts['load_before']} -> {facts['load_after']}", flush=True)
    result = {"export": str(export), "command": f"dbt {command}", "rows": rows, "cpus": os.cpu_count(),
              "machine": platform.platform(), "at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    if {"duckdb", "spark"} <= set(adapters):
        result["equal"] = compare(works["duckdb"] / "beep.duckdb", works["spark"] / "spark" / "tables")
        differing = {k: v for k, v in result["equal"].items() if v["only_duckdb"] or v["only_spark"]}
        print(f"  row for row: {len(result['equal'])} tables compared, {len(differing)} differ {differing or ''}")
    path = OUT / f"spark-{size}-{command}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\n| adapter | dbt {command} | peak memory (process tree) | load average before → after |")
    print("| --- | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r['adapter']} | {r['seconds']} s | {r['peak_mb'] / 1024:.2f} GB | {r['load_before'][0]} → {r['load_after'][0]} |")
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
