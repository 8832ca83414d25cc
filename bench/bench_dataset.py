"""Benchmark: building the dataset from a 1,000,000-message Slack export with dbt, beside yardsticks.

    .venv/bin/python bench/bench_dataset.py                      # 1,000,000 messages, realistic shape (the documented run)
    .venv/bin/python bench/bench_dataset.py --quick              # 20,000 messages: a smoke run (docs untouched)
    .venv/bin/python bench/bench_dataset.py --shape dense        # the old shape: few, big day files
    .venv/bin/python bench/bench_dataset.py --memory-check 5000000   # also one `dbt run` on a 5,000,000-message export

The export's shape: `realistic` (default) is `beep sample generate --profile large` (2,000 people, 300
channels, 365 days: one file per channel per day, tens of messages each, about 16,000 day files per
1,000,000 messages, like a real export); `dense` is the bundled sample's generator scaled up (40
people, 20 channels: about 3,800 files of 260 messages per 1,000,000), the shape measured before.

Steps, each a separate process measured for wall time, CPU time and the peak RSS of its whole
process tree (bench/measure.py), interleaved round by round so that other load hits them alike:
  generate   writes the export (cached under bench/out/, reused when present)
  scan       a bare DuckDB read_json of every day file (the floor of any reader)
  seed_sql   bench/seed_method.sql: the seed's method in minimal hand-written DuckDB SQL
  plain_sql  bench/plain_sql_method.sql: Beep's method as one plain DuckDB SQL script (the yardstick)
  pandas     bench/pandas_method.py: the seed notebook's way (pandas, a Python loop, LabelEncoder)
  dbt_run    `dbt run` on the same export, fresh DuckDB file
  dbt_rerun  `dbt run` again on dbt_run's DuckDB file, nothing changed: the staging and intermediate
             tables are kept (materialized 'reusable_table', macros/reusable_table.sql)
  dbt_rerun_vars  `dbt run` on a copy of that file (same file name, another folder) after a change
             of vars (context_messages 5 -> 4),
             with dbt's partial-parse state removed first, as a change of vars makes dbt parse again:
             what `beep build --var ...` costs on an export already built
  dbt_build  `dbt build` (seeds, models, data and unit tests), fresh DuckDB file
  dbt_run_baseline  (with --baseline-project) `dbt run` of another checkout of this project, e.g. a
             git worktree at an older commit, to compare models before and after a change

Times are medians over --repeat rounds (every round in bench/out/dataset-<shape>-<messages>.json);
peak memory is the highest of the rounds. The plain script's tables are compared row for row with
dbt's (training_examples, user_labels, message_fate_counts), so the yardstick provably computes the
same thing. Per-model times come from dbt's run_results.json (the median round's). The full run
rewrites the "Building the dataset (dbt)" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from measure import Measurement, run_measured, tail, write_doc_section  # noqa: E402

OUT = HERE / "out"
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BEGIN bench_dataset (written by bench/bench_dataset.py) -->", "<!-- END bench_dataset -->"
VENV_BIN = Path(sys.executable).parent
COMPARED = {
    "training_examples": "example_id, conversation_id, channel_id, target_ts, responder_user_id, label, prompt, "
                         "completion, n_context_messages, responder_spoke_before, prior_participant_ids, "
                         "mentioned_user_ids",
    "user_labels": "user_id, user_name, label, n_examples",
    "message_fate_counts": "channel_name, fate, reason, n_messages",
}
# issue 12's targets, on the realistic shape: dbt run <= 2x the seed's SQL and >= 2x faster than pandas;
# dbt build <= 3x the seed's SQL; peak memory <= 1.5 GB, also at 5,000,000 messages
TARGET_RUN_VS_SEED, TARGET_PANDAS_VS_RUN, TARGET_BUILD_VS_SEED, TARGET_PEAK_GB = 2.0, 2.0, 3.0, 1.5
SHAPES = {
    "realistic": {"profile": "large", "seed": 1, "people": 2000, "channels": 300, "days": 365},
    "dense": {"profile": "sample", "seed": 7, "people": 40, "channels": 20, "days": 182},
}
STEP_ORDER = ("scan", "seed_sql", "plain_sql", "pandas", "dbt_run", "dbt_rerun", "dbt_rerun_vars", "dbt_build",
              "dbt_run_baseline")
DBT_STEPS = ("dbt_run", "dbt_rerun", "dbt_rerun_vars", "dbt_build", "dbt_run_baseline")
#: the var the dbt_rerun_vars step changes (the default is 5)
RERUN_VARS = {"context_messages": 4}
WHAT = {
    "generate": "write the export (`beep sample generate`)",
    "scan": "bare DuckDB `read_json` of every day file (5 columns the seed needs)",
    "seed_sql": "the seed's method in minimal DuckDB SQL (`bench/seed_method.sql`)",
    "plain_sql": "Beep's method as one plain DuckDB script (`bench/plain_sql_method.sql`)",
    "pandas": "the seed notebook's way: pandas + a Python loop + LabelEncoder (`bench/pandas_method.py`)",
    "dbt_run": "**`dbt run`** (all models)",
    "dbt_rerun": "`dbt run` again, nothing changed (staging and intermediate tables kept)",
    "dbt_rerun_vars": "`dbt run` after a change of vars (`context_messages: 4`; dbt parses again; the tables upstream of the change kept)",
    "dbt_build": "**`dbt build`** (seeds, models, every data and unit test)",
    "dbt_run_baseline": "`dbt run` of the baseline checkout (before)",
}


_last_measurement: Measurement | None = None  # the latest dbt step's, also when it failed


class BenchFailed(RuntimeError):
    """A measured step failed; the message carries the end of its log."""


def _check(m: Measurement) -> Measurement:
    if m.returncode != 0:
        raise BenchFailed(f"step {m.name} failed (exit {m.returncode}); log {m.log}:\n{tail(m.log)}")
    return m


def generate_command(shape: str, messages: int, out: Path) -> list[str]:
    """`beep sample generate` for this shape and size (the `beep sample` app alone, without the whole CLI)."""
    s = SHAPES[shape]
    cli = "from beep.commands.sample_cmd import sample_app; sample_app(prog_name='beep sample')"
    return [sys.executable, "-c", cli, "generate", "--out", str(out), "--profile", s["profile"],
            "--messages", str(messages), "--seed", str(s["seed"]), "--people", str(s["people"]),
            "--channels", str(s["channels"]), "--days", str(s["days"]), "--no-truth"]


def generate_text(shape: str, messages: int) -> str:
    s = SHAPES[shape]
    return (f"beep sample generate OUT --profile {s['profile']} --messages {messages} --seed {s['seed']} "
            f"--people {s['people']} --channels {s['channels']} --days {s['days']} --no-truth")


def ensure_export(shape: str, messages: int, logs: Path) -> tuple[Path, Measurement | None, dict]:
    """The export for this shape and size, generated unless a complete copy is cached."""
    s = SHAPES[shape]
    export = OUT / f"export-{shape}-{messages}-s{s['seed']}-p{s['people']}-c{s['channels']}-d{s['days']}"
    marker = export.with_name(export.name + ".done.json")
    if marker.exists() and (export / "users.json").exists():
        return export, None, json.loads(marker.read_text())
    if export.exists():
        shutil.rmtree(export)
    print(f"  generating {messages:,} messages ({shape}) into {export} ...", flush=True)
    m = _check(run_measured("generate", generate_command(shape, messages, export), logs / f"generate-{messages}.log"))
    info = {"shape": shape, "messages": messages, **s, "seconds": round(m.seconds, 2),
            "cpu_seconds": round(m.cpu_seconds, 2), "peak_mb": round(m.peak_mb),
            "bytes": sum(p.stat().st_size for p in export.rglob("*") if p.is_file()),
            "day_files": sum(1 for _ in export.glob("*/*.json")),
            "channels_with_files": sum(1 for p in export.iterdir() if p.is_dir())}
    marker.write_text(json.dumps(info, indent=2))
    return export, m, info


def reproducible_argv(argv: list[str]) -> str:
    """The command line for the docs: this machine's baseline folder becomes DIR, its label goes."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--baseline-project", "--baseline-label"):
            skip = "=" not in arg
            if name == "--baseline-project":
                kept.append("--baseline-project DIR")
            continue
        kept.append(arg)
    return " ".join(kept)


def dbt_step(name: str, command: str, export: Path, db: Path, logs: Path,
             project: Path = REPO, *, start_from: Path | None = None, extra_vars: dict | None = None,
             reparse: bool = False) -> tuple[Measurement, list[dict]]:
    """`dbt <command>` on a fresh DuckDB file; returns the measurement and per-node timings.

    ``start_from``: the DuckDB file to start from instead (copied, or reused when it is ``db``
    itself); ``extra_vars``: vars besides slack_export; ``reparse``: remove dbt's partial-parse
    state first (what a change of vars does).

    Failing data tests do not stop the benchmark (the time is still the time of the whole build):
    they are returned with status "fail" and reported. Any other failure stops it.
    """
    if start_from != db:
        for path in (db, db.with_name(db.name + ".wal")):
            path.unlink(missing_ok=True)
        if start_from is not None:
            shutil.copyfile(start_from, db)
    target = OUT / f"target-{name}"
    (target / "run_results.json").unlink(missing_ok=True)
    if reparse:
        (target / "partial_parse.msgpack").unlink(missing_ok=True)
    env = {"DBT_PROFILES_DIR": str(project), "BEEP_DUCKDB_PATH": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    m = run_measured(name, [str(VENV_BIN / "dbt"), command, "--project-dir", str(project),
                            "--target-path", str(target), "--log-path", str(logs / f"dbt-{name}"),
                            "--vars", json.dumps({"slack_export": str(export), **(extra_vars or {})})],
                     logs / f"{name}.log", env=env, cwd=project)
    global _last_measurement
    _last_measurement = m
    results_file = target / "run_results.json"
    if not results_file.exists():
        _check(m)
        raise BenchFailed(f"step {name}: dbt wrote no {results_file}; log {m.log}:\n{tail(m.log)}")
    results = json.loads(results_file.read_text())["results"]
    nodes = sorted(({"node": r["unique_id"], "seconds": round(r["execution_time"], 2), "status": r["status"]}
                    for r in results), key=lambda r: -r["seconds"])
    broken = [n for n in nodes if n["status"] not in ("success", "pass", "fail", "skipped")
              or (n["status"] == "fail" and not n["node"].startswith("test."))]
    if m.returncode != 0 and (broken or not any(n["status"] == "fail" for n in nodes)):
        raise BenchFailed(f"step {name} failed (exit {m.returncode}): {broken}; log {m.log}:\n{tail(m.log)}")
    return m, nodes


def compare_outputs(plain_db: Path, dbt_db: Path) -> dict[str, dict]:
    """Row-for-row comparison of the yardstick's tables with dbt's."""
    con = duckdb.connect(str(plain_db), read_only=True)
    con.execute(f"attach '{dbt_db}' as dbt_db (read_only)")
    out = {}
    for table, cols in COMPARED.items():
        # dbt's table in its layer schema (staging, intermediate, marts: docs/analysts.md)
        schema = con.execute("select table_schema from information_schema.tables where table_catalog = 'dbt_db' "
                             "and table_name = ?", [table]).fetchone()[0]
        ours = f'dbt_db."{schema}".{table}'
        only_plain = con.execute(f"select count(*) from (select {cols} from main.{table} "
                                 f"except all select {cols} from {ours})").fetchone()[0]
        only_dbt = con.execute(f"select count(*) from (select {cols} from {ours} "
                               f"except all select {cols} from main.{table})").fetchone()[0]
        rows = con.execute(f"select count(*) from {ours}").fetchone()[0]
        out[table] = {"rows": rows, "only_in_plain_sql": only_plain, "only_in_dbt": only_dbt}
    con.close()
    return out


def count_rows(db: Path, table: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"select count(*) from {table}").fetchone()[0]
    finally:
        con.close()


def versions() -> dict[str, str]:
    import dbt.version
    import pandas
    import psutil

    return {"python": platform.python_version(), "duckdb": duckdb.__version__,
            "dbt-core": str(dbt.version.installed).lstrip("="), "pandas": pandas.__version__,
            "cpus": str(os.cpu_count()), "ram_gb": f"{psutil.virtual_memory().total / 2**30:.0f}",
            "memory_limit": os.environ.get("BEEP_DUCKDB_MEMORY_LIMIT", "1GB"),
            "threads": os.environ.get("BEEP_DUCKDB_THREADS", "2"),
            "dbt_threads": os.environ.get("BEEP_DBT_THREADS", "2")}


def summarise(ms: list[Measurement]) -> dict:
    """Median time and CPU time over the rounds, the highest peak memory, and every round."""
    return {"seconds": statistics.median(m.seconds for m in ms), "cpu_seconds": statistics.median(m.cpu_seconds for m in ms),
            "peak_mb": max(m.peak_mb for m in ms), "all_seconds": [round(m.seconds, 1) for m in ms],
            "all_cpu_seconds": [round(m.cpu_seconds, 1) for m in ms]}


def median_nodes(rounds: list[list[dict]]) -> list[dict]:
    """Per node, the median of its time over the rounds (slowest first)."""
    by_node: dict[str, list[float]] = {}
    for nodes in rounds:
        for n in nodes:
            by_node.setdefault(n["node"], []).append(n["seconds"])
    return sorted(({"node": k, "seconds": round(statistics.median(v), 2)} for k, v in by_node.items()),
                  key=lambda r: -r["seconds"])


def render(results: dict) -> str:
    """The docs section: table, targets, per-model times, how to reproduce."""
    n = results["messages"]
    steps = results["steps"]
    ex = results["export"]
    v = results["versions"]
    seed = steps["seed_sql"]["seconds"]
    seed_cpu = steps["seed_sql"]["cpu_seconds"]
    loads = results["load_average"]
    lines = [
        BEGIN,
        "## Building the dataset (dbt)",
        "",
        f"{n:,} messages in {ex['day_files']:,} day files of {ex['channels_with_files']} channels "
        f"({n / ex['day_files']:.0f} messages per file on average, {ex['bytes'] / 2**20:,.0f} MiB of JSON; "
        f"the `{results['shape']}` shape: `{generate_text(results['shape'], n)}`), "
        f"measured {results['when']} on {v['cpus']} CPUs / {v['ram_gb']} GB RAM, Python {v['python']}, "
        f"DuckDB {v['duckdb']}, dbt-core {v['dbt-core']}, pandas {v['pandas']}; DuckDB `memory_limit` "
        f"{v['memory_limit']}, `threads` {v['threads']} (the profile's defaults) for every DuckDB step. "
        f"Each step is its own process; peak memory is the peak RSS of its whole process tree. The steps ran "
        f"interleaved, {results['repeat']} rounds (times: medians; every round in "
        f"bench/out/dataset-{results['shape']}-{n}.json). **The machine was shared with other agents' work**: "
        f"1-minute load average {min(loads):.1f}–{max(loads):.1f} over the rounds (2.0 = both cores busy), so "
        "absolute times are upper bounds; the ratios between steps of the same round are the signal.",
        "",
        "| way | time (median) | CPU time | peak memory | rounds | vs seed SQL (time) | vs seed SQL (CPU) |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    gen = steps["generate"]
    lines.append(f"| generate | {WHAT['generate']}{' (cached; figure from when it was written)' if gen.get('cached') else ''}: "
                 f"{gen['seconds']:.1f} s | {gen.get('cpu_seconds') or 0:.1f} s | {gen['peak_mb']:,.0f} MB | | | |")
    for name in STEP_ORDER:
        if name not in steps:
            continue
        s = steps[name]
        lines.append(f"| {WHAT[name]} | {s['seconds']:.1f} s | {s['cpu_seconds']:.1f} s | {s['peak_mb']:,.0f} MB | "
                     f"{', '.join(f'{x:.1f}' for x in s['all_seconds'])} | {s['seconds'] / seed:.2f}x | "
                     f"{s['cpu_seconds'] / seed_cpu:.2f}x |")
    big = results.get("memory_check")
    if big:
        outcome = f" — **failed: {big['error']}**" if big.get("error") else ""
        lines.append(f"| `dbt run` at {big['messages']:,} messages ({big['day_files']:,} day files, "
                     f"{big['bytes'] / 2**30:.1f} GiB){outcome} | {big['seconds']:.1f} s | {big['cpu_seconds']:.1f} s | "
                     f"{big['peak_mb']:,.0f} MB | 1 | | |")
    run, build, pandas = steps["dbt_run"], steps["dbt_build"], steps["pandas"]
    peak_gb = max(run["peak_mb"], build["peak_mb"]) / 1024
    ok = lambda b: "met" if b else "**missed**"  # noqa: E731
    targets = [
        f"`dbt run` <= {TARGET_RUN_VS_SEED:g}x the seed's SQL: {run['seconds'] / seed:.2f}x "
        f"(CPU {run['cpu_seconds'] / seed_cpu:.2f}x), {ok(run['seconds'] / seed <= TARGET_RUN_VS_SEED)}",
        f"`dbt run` >= {TARGET_PANDAS_VS_RUN:g}x faster than pandas: {pandas['seconds'] / run['seconds']:.2f}x "
        f"(CPU {pandas['cpu_seconds'] / run['cpu_seconds']:.2f}x), {ok(pandas['seconds'] / run['seconds'] >= TARGET_PANDAS_VS_RUN)}",
        f"`dbt build` <= {TARGET_BUILD_VS_SEED:g}x the seed's SQL: {build['seconds'] / seed:.2f}x "
        f"(CPU {build['cpu_seconds'] / seed_cpu:.2f}x), {ok(build['seconds'] / seed <= TARGET_BUILD_VS_SEED)}",
        f"peak memory of `dbt run` / `dbt build` <= {TARGET_PEAK_GB} GB: {peak_gb:.2f} GB, {ok(peak_gb <= TARGET_PEAK_GB)}",
    ]
    if big:
        targets.append(f"at {big['messages']:,} messages `dbt run` within {TARGET_PEAK_GB} GB: "
                       f"{big['peak_mb'] / 1024:.2f} GB, {ok(big['peak_mb'] / 1024 <= TARGET_PEAK_GB and big['returncode'] == 0)}")
    lines += ["", "Targets (issue 12, this run): " + "; ".join(targets) + "."]
    if "dbt_rerun" in steps and "dbt_rerun_vars" in steps:
        again, changed = steps["dbt_rerun"], steps["dbt_rerun_vars"]
        staging = {x["node"]: x["seconds"] for x in results.get("dbt_rerun_vars_nodes", [])}.get("model.beep.stg_slack__messages")
        lines += ["", "On an export already built, a table materialized `reusable_table` (staging and intermediate; "
                  "macros/reusable_table.sql) is kept while the export files it reads, the tables it reads and its "
                  f"SQL are unchanged: after a change of vars (`context_messages: 4`) `dbt run` takes "
                  f"{changed['seconds']:.1f} s (CPU {changed['cpu_seconds']:.1f} s), "
                  f"{pandas['seconds'] / changed['seconds']:.2f}x faster than pandas and "
                  f"{changed['seconds'] / seed:.2f}x the seed's SQL (CPU {changed['cpu_seconds'] / seed_cpu:.2f}x)"
                  + (f", `stg_slack__messages` {staging:.1f} s (the check of its files)" if staging is not None else "")
                  + f"; run again with nothing changed, {again['seconds']:.1f} s. (`beep build` skips a build whose "
                  "export, project and vars are all unchanged.)"]
    lines += [
        "",
        "The yardstick computes the same thing: its tables equal dbt's row for row "
        + ", ".join(f"`{t}` {c['rows']:,} rows ({'identical' if not (c['only_in_plain_sql'] or c['only_in_dbt']) else 'DIFFERENT: ' + str(c)})"
                    for t, c in results["comparison"].items())
        + f". The seed's method made {results['seed_examples']:,} examples, pandas {results['pandas_examples']:,} "
        "(the same method: they differ from Beep's by what Beep adds — reply links, fate accounting, stricter exclusions).",
    ]
    failed = build.get("failed") or []
    if failed:
        lines += ["", f"**`dbt build` had failing data tests on this export** (the time above is still the whole "
                  f"build's): {', '.join(f'`{f}`' for f in failed)}."]
    baseline = results.get("dbt_run_baseline_nodes")
    lines += ["", f"Per model (medians over the rounds of run_results.json; dbt threads: {v['dbt_threads']})"
              + (f", beside the baseline checkout ({results.get('baseline_label', 'before')}; its own profile's dbt "
                 "threads), measured in the same rounds (with 2 threads, models overlap: their sum exceeds the wall time):"
                 if baseline else ":"), ""]
    run_nodes = [x for x in results["dbt_run_nodes"] if x["node"].startswith("model.")]
    if baseline:
        before = {x["node"]: x["seconds"] for x in baseline}
        lines += ["| `dbt run` model | before | after |", "| --- | ---: | ---: |"]
        order = sorted({*before, *(x["node"] for x in run_nodes)},
                       key=lambda k: -before.get(k, 0))
        after = {x["node"]: x["seconds"] for x in run_nodes}
        for k in order:
            if k.startswith("model.") and max(before.get(k, 0), after.get(k, 0)) >= 0.2:
                cells = [f"{d[k]:.1f} s" if k in d else "–" for d in (before, after)]
                lines.append(f"| `{k.split('.')[-1]}` | {cells[0]} | {cells[1]} |")
        lines.append(f"| all nodes | {sum(before.values()):.1f} s | {sum(x['seconds'] for x in results['dbt_run_nodes']):.1f} s |")
    else:
        lines += ["| `dbt run` model | time |", "| --- | ---: |"]
        for x in run_nodes[:8]:
            lines.append(f"| `{x['node'].split('.')[-1]}` | {x['seconds']:.1f} s |")
    lines += ["", "Slowest `dbt build` nodes:", "", "| node | time |", "| --- | ---: |"]
    for x in results["dbt_build_nodes"][:8]:
        lines.append(f"| `{x['node'].split('.', 2)[-1][:70]}` | {x['seconds']:.1f} s |")
    lines += [
        "",
        "Reproduce: `make bench` (every bench script), or this one alone:",
        "",
        "```",
        (f".venv/bin/python bench/bench_dataset.py {results['argv']}".rstrip()
         + (f"   # DIR: a checkout of the baseline ({results.get('baseline_label', 'before')}), e.g. "
            "`git archive <commit> | tar -x -C DIR`" if "--baseline-project DIR" in results["argv"] else "")),
        ".venv/bin/python bench/bench_dataset.py --quick    # 20,000 messages, a smoke run",
        "```",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    """Replace this benchmark's section in docs/benchmarks.md (other sections are left alone)."""
    write_doc_section(DOCS, section, BEGIN, END)


def memory_check(shape: str, messages: int, logs: Path) -> dict:
    """One `dbt run` on a bigger export of the same shape: does memory stay bounded?"""
    export, _, info = ensure_export(shape, messages, logs)
    db = OUT / f"dbt-run-{shape}-{messages}.duckdb"
    name = f"dbt_run_{messages}"
    error = None
    try:
        _, nodes = dbt_step(name, "run", export, db, logs)
    except BenchFailed as exc:  # reported (a failure is a result here), not raised
        nodes, error = [], str(exc)
        failing = [ln.strip() for ln in str(exc).splitlines() if "Error" in ln or "error" in ln]
        error = failing[-1] if failing else error.splitlines()[0]
    m = _last_measurement
    for path in (db, db.with_name(db.name + ".wal")):
        path.unlink(missing_ok=True)
    return {"messages": messages, "day_files": info["day_files"], "bytes": info["bytes"], "seconds": m.seconds,
            "cpu_seconds": m.cpu_seconds, "peak_mb": m.peak_mb, "returncode": m.returncode, "nodes": nodes,
            "error": error}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 messages, one round, docs untouched (a smoke run).")
    parser.add_argument("--messages", type=int, default=None, help="Export size (default 1,000,000; --quick: 20,000).")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="realistic",
                        help="realistic (default): a company export, one file per channel per day, tens of messages "
                             "each; dense: the old shape, few big day files.")
    parser.add_argument("--repeat", type=int, default=None,
                        help="Rounds of every step, interleaved; times are medians (default 3; --quick: 1).")
    parser.add_argument("--memory-check", type=int, default=None, metavar="MESSAGES",
                        help="After the rounds, one `dbt run` on an export of this many messages of the same shape "
                             "(e.g. 5000000: is peak memory bounded?). Generated and cached like the main export.")
    parser.add_argument("--baseline-project", type=Path, default=None, metavar="DIR",
                        help="Another checkout of this project (e.g. `git worktree add /tmp/before <commit>`): its "
                             "`dbt run` is measured in every round too, and the per-model table shows both.")
    parser.add_argument("--baseline-label", default="before", help="How the docs name the baseline checkout.")
    parser.add_argument("--no-docs", action="store_true", help="Do not rewrite docs/benchmarks.md.")
    args = parser.parse_args(argv)
    messages = args.messages or (20_000 if args.quick else 1_000_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    logs = OUT / f"logs-{args.shape}-{messages}"
    OUT.mkdir(parents=True, exist_ok=True)
    if args.baseline_project and not (args.baseline_project / "dbt_project.yml").exists():
        parser.error(f"--baseline-project {args.baseline_project}: no dbt_project.yml there; give a checkout of this project.")

    print(f"bench_dataset: {messages:,} messages, {args.shape} shape; logs in {logs}", flush=True)
    export, gen, gen_info = ensure_export(args.shape, messages, logs)
    steps: dict[str, dict] = {"generate": {"seconds": gen_info["seconds"], "peak_mb": gen_info["peak_mb"],
                                           "cpu_seconds": gen_info.get("cpu_seconds"), "cached": gen is None}}
    print(f"  export: {gen_info['day_files']:,} day files, {gen_info['bytes'] / 2**20:,.0f} MiB", flush=True)

    dbs = {name: OUT / f"{name}-{args.shape}-{messages}.duckdb" for name in STEP_ORDER}
    dbs["dbt_rerun"] = dbs["dbt_run"]  # the same file, run again
    # a copy of that file under the same name (DuckDB names the database after the file, and the
    # compiled SQL names the database: a copy under another name would change every model's SQL)
    dbs["dbt_rerun_vars"] = OUT / "rerun-vars" / dbs["dbt_run"].name
    dbs["dbt_rerun_vars"].parent.mkdir(exist_ok=True)
    runs: dict[str, list[Measurement]] = {}
    node_rounds: dict[str, list[list[dict]]] = {name: [] for name in DBT_STEPS}
    loads: list[float] = []
    pandas_out = OUT / f"pandas-{args.shape}-{messages}.jsonl"
    for round_no in range(args.repeat):
        loads.append(round(os.getloadavg()[0], 1))
        for name in STEP_ORDER:
            db = dbs[name]
            if name == "dbt_run_baseline" and not args.baseline_project:
                continue
            if name in DBT_STEPS:
                m, nodes = dbt_step(name, "build" if name == "dbt_build" else "run", export, db, logs,
                                    project=(args.baseline_project.resolve() if name == "dbt_run_baseline" else REPO),
                                    start_from={"dbt_rerun": dbs["dbt_run"], "dbt_rerun_vars": dbs["dbt_run"]}.get(name),
                                    extra_vars=RERUN_VARS if name == "dbt_rerun_vars" else None,
                                    reparse=name == "dbt_rerun_vars")
                node_rounds[name].append(nodes)
            else:
                for path in (db, db.with_name(db.name + ".wal")):
                    path.unlink(missing_ok=True)
                cmd = {"scan": [sys.executable, str(HERE / "dataset_steps.py"), "scan", str(export)],
                       "seed_sql": [sys.executable, str(HERE / "dataset_steps.py"), "seed", str(export), str(db)],
                       "plain_sql": [sys.executable, str(HERE / "dataset_steps.py"), "plain", str(export), str(db)],
                       "pandas": [sys.executable, str(HERE / "pandas_method.py"), str(export), str(pandas_out)]}[name]
                m = _check(run_measured(name, cmd, logs / f"{name}.log"))
            runs.setdefault(name, []).append(m)
            print(f"  round {round_no + 1}: {name:<17} {m.seconds:7.1f} s  CPU {m.cpu_seconds:7.1f} s  "
                  f"{m.peak_mb:7,.0f} MB  (load {os.getloadavg()[0]:.1f})", flush=True)
    loads.append(round(os.getloadavg()[0], 1))
    for name, ms in runs.items():
        steps[name] = summarise(ms)
    build_nodes = median_nodes(node_rounds["dbt_build"])
    steps["dbt_build"]["failed"] = sorted({n["node"] for r in node_rounds["dbt_build"] for n in r if n["status"] == "fail"})

    comparison = compare_outputs(dbs["plain_sql"], dbs["dbt_run"])
    with open(pandas_out, encoding="utf-8") as f:
        pandas_examples = sum(1 for _ in f)
    results = {"messages": messages, "shape": args.shape, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "export": gen_info, "steps": steps, "comparison": comparison, "versions": versions(),
               "seed_examples": count_rows(dbs["seed_sql"], "seed_examples"), "pandas_examples": pandas_examples,
               "dbt_run_nodes": median_nodes(node_rounds["dbt_run"]), "dbt_build_nodes": build_nodes,
               "dbt_rerun_vars_nodes": median_nodes(node_rounds["dbt_rerun_vars"]),
               "repeat": args.repeat, "load_average": loads,
               "argv": reproducible_argv(argv if argv is not None else sys.argv[1:])}
    if args.baseline_project:
        results["dbt_run_baseline_nodes"] = median_nodes(node_rounds["dbt_run_baseline"])
        results["baseline_label"] = args.baseline_label
    for db in dbs.values():
        if db != dbs["plain_sql"] and db != dbs["dbt_run"]:
            for path in (db, db.with_name(db.name + ".wal")):
                path.unlink(missing_ok=True)
    (OUT / f"dataset-{args.shape}-{messages}.json").write_text(json.dumps(results, indent=2))
    if args.memory_check:
        print(f"  memory check: `dbt run` at {args.memory_check:,} messages ...", flush=True)
        results["memory_check"] = memory_check(args.shape, args.memory_check, logs)
        mc = results["memory_check"]
        print(f"  memory check: {mc['seconds']:.1f} s, {mc['peak_mb']:,.0f} MB, exit {mc['returncode']}", flush=True)
    (OUT / f"dataset-{args.shape}-{messages}.json").write_text(json.dumps(results, indent=2))
    section = render(results)
    print()
    print(section)
    if not args.quick and not args.no_docs:
        write_docs(section)
        print(f"wrote the section to {DOCS}")
    different = {t: c for t, c in comparison.items() if c["only_in_plain_sql"] or c["only_in_dbt"]}
    if different:
        print(f"WARNING: the plain SQL yardstick and dbt disagree: {different}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchFailed as exc:
        print(f"bench_dataset: {exc}", file=sys.stderr)
        sys.exit(1)
