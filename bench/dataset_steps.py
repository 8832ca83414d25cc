"""The non-dbt steps bench_dataset.py measures, each run as its own process:

    python bench/dataset_steps.py scan  EXPORT_DIR            bare read_json scan of every day file
    python bench/dataset_steps.py plain EXPORT_DIR DUCKDB     bench/plain_sql_method.sql on a DuckDB file
    python bench/dataset_steps.py seed  EXPORT_DIR DUCKDB     bench/seed_method.sql (the seed's method) on a DuckDB file
    python bench/dataset_steps.py parquet EXPORT_DIR DUCKDB [ROUNDS]   what reading Parquet made once at ingest would
                                                              save: the staging model's SQL as bench_dataset.py's last
                                                              `dbt run` ran it, from the JSON and from a Parquet copy

Both use the same DuckDB settings as the dbt profile (memory_limit, threads, preserve_insertion_order;
env BEEP_DUCKDB_MEMORY_LIMIT / BEEP_DUCKDB_THREADS as in profiles.yml), so the comparison is fair.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
PLACEHOLDER = "__SLACK_EXPORT__"


def _settings(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"set memory_limit = '{os.environ.get('BEEP_DUCKDB_MEMORY_LIMIT', '1GB')}'")
    con.execute(f"set threads = {int(os.environ.get('BEEP_DUCKDB_THREADS', '2'))}")
    con.execute("set preserve_insertion_order = false")


def scan(export_dir: Path) -> None:
    con = duckdb.connect()
    _settings(con)
    pattern = str(export_dir / "*" / "*.json").replace("'", "''")
    rows, chars = con.execute(
        f"""select count(*), sum(length(text)) from read_json('{pattern}', format = 'array', filename = true,
            maximum_object_size = 33554432,
            columns = {{'type': 'VARCHAR', 'subtype': 'VARCHAR', 'user': 'VARCHAR', 'bot_id': 'VARCHAR',
                       'text': 'VARCHAR', 'ts': 'VARCHAR', 'thread_ts': 'VARCHAR', 'parent_user_id': 'VARCHAR',
                       'reply_count': 'BIGINT', 'client_msg_id': 'VARCHAR', 'edited': 'JSON', 'files': 'JSON',
                       'hidden': 'BOOLEAN'}})"""
    ).fetchone()
    print(f"scanned {rows} messages, {chars} characters of text")


def plain(export_dir: Path, db: Path, script_name: str = "plain_sql_method.sql") -> None:
    """Run a bench SQL script statement by statement on `db`, printing each statement's time."""
    script = (HERE / script_name).read_text().replace(PLACEHOLDER, str(export_dir).replace("'", "''"))
    con = duckdb.connect(str(db))
    _settings(con)
    for statement in duckdb.extract_statements(script):
        started = time.perf_counter()
        con.execute(statement)
        first = next((ln for ln in str(statement.query).splitlines() if ln.strip() and not ln.startswith("--")), "")
        print(f"{time.perf_counter() - started:8.2f}s  {first[:90]}", flush=True)
    con.close()


def parquet(export_dir: Path, db: Path, rounds: int = 2) -> None:
    """Time the staging model from the day files' JSON, the one-off JSON -> Parquet conversion of the
    same columns, and the staging model from that Parquet file; check that both give the same rows."""
    # the staging model as bench_dataset.py's last `dbt run` ran it (its --target-path)
    compiled = HERE / "out" / "target-dbt_run" / "run" / "beep" / "models" / "staging" / "stg_slack__messages.sql"
    ddl = compiled.read_text()
    select = ddl[ddl.index("as (") + 4:ddl.rindex(")")]
    start = select.index("read_json(")
    end = select.index("\n  )", start) + len("\n  )")
    reader = select[start:end]
    if str(export_dir) not in reader:
        raise SystemExit(f"{compiled} was compiled for another export: run bench/bench_dataset.py on {export_dir} first")
    copy = db.with_suffix(".messages.parquet")
    con = duckdb.connect(str(db))
    _settings(con)
    for _ in range(rounds):
        timings = {}
        started = time.perf_counter()
        con.execute(f"create or replace table stg_from_json as {select}")
        timings["staging from JSON"] = time.perf_counter() - started
        started = time.perf_counter()
        con.execute(f"copy (select * from {reader}) to '{copy}' (format parquet)")
        timings["JSON -> Parquet, once"] = time.perf_counter() - started
        started = time.perf_counter()
        con.execute(f"create or replace table stg_from_parquet as {select.replace(reader, f'read_parquet({chr(39)}{copy}{chr(39)})')}")
        timings["staging from Parquet"] = time.perf_counter() - started
        print("  ".join(f"{name} {seconds:.2f}s" for name, seconds in timings.items()), flush=True)
    different = con.execute("select count(*) from (select * from stg_from_json except all select * from stg_from_parquet)").fetchone()
    print(f"rows only in the JSON build: {different[0] if different else '?'}")
    con.close()
    copy.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "scan":
        scan(Path(argv[1]).resolve())
        return 0
    if len(argv) >= 3 and argv[0] in ("plain", "seed"):
        plain(Path(argv[1]).resolve(), Path(argv[2]).resolve(),
              "plain_sql_method.sql" if argv[0] == "plain" else "seed_method.sql")
        return 0
    if len(argv) >= 3 and argv[0] == "parquet":
        parquet(Path(argv[1]).resolve(), Path(argv[2]).resolve(), int(argv[3]) if len(argv) > 3 else 2)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
