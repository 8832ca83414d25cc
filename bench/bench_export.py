"""`beep export`'s peak memory and time at two sizes, before (the whole set in memory) and after
(streamed): the issue-25 goal is a peak flat in the number of examples.

    .venv/bin/python bench/bench_export.py                      # 100,000 and 400,000 examples
    .venv/bin/python bench/bench_export.py --sizes 20000 80000  # other sizes
    .venv/bin/python bench/bench_export.py --quick              # 2,000 and 8,000
    .venv/bin/python bench/bench_export.py --before COMMIT      # also the export of that commit

The examples are generated straight into a DuckDB file (training_examples and user_labels, the
marts' contract; prompts of about 700 characters, 5 examples per conversation, 300 labels with a
long tail), so the export alone is measured. Each export is its own process (`beep export --unrefined`;
peak RSS of its process tree, bench/measure.py); each runs on its own copy of the file. The second
export of the same file (nothing changed) is measured too. Results: bench/out/export-*.json and the
bench_export section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
from measure import run_measured, tail, write_doc_section  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BEGIN bench_export (written by bench/bench_export.py) -->", "<!-- END bench_export -->"
WORDS = ["deploy", "helm", "cluster", "pod", "rollout", "invoice", "billing", "refund", "payment", "card", "design", "figma", "mockup", "font", "layout", "the", "a", "to", "is", "it", "we", "can", "you", "please", "thanks", "check", "error", "build", "test", "merge", "branch", "review", "release", "staging", "prod", "latency", "alert", "dashboard", "query", "index", "table", "schema", "migration", "ticket", "customer", "support", "api", "token"]


def make_db(db: Path, n: int) -> None:
    """training_examples (n rows) and user_labels, generated in SQL (deterministic)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    words = "[" + ", ".join(f"'{w}'" for w in WORDS) + "]"
    with duckdb.connect(str(db)) as con:
        con.execute(f"""
            create table training_examples as
            with ids as (select range as i from range({n})),
            labelled as (
                select i, case when hash(i * 7) % 5 = 0 then 0  -- nil
                               else 1 + cast(floor(pow((hash(i * 13) % 1000000) / 1000000.0, 3) * 299) as integer) end as label
                from ids)
            select
                md5(cast(i as varchar)) as example_id,
                'conv' || lpad(cast(i // 5 as varchar), 8, '0') as conversation_id,
                'C' || cast((i // 5) % 300 as varchar) as channel_id,
                'chan-' || cast((i // 5) % 300 as varchar) as channel_name,
                cast(1700000000 + i * 30 as varchar) || '.000100' as target_ts,
                timestamp '2024-01-01' + to_seconds(i * 30) as target_at,
                case when label = 0 then null else 'U' || cast(label as varchar) end as responder_user_id,
                label,
                array_to_string(list_transform(range(110), lambda j: {words}[1 + cast(hash(i * 131 + j) % {len(WORDS)} as integer)]), ' ')
                    || chr(10) || chr(10) || '###' || chr(10) || chr(10) as prompt,
                ' ' || cast(label as varchar) as completion,
                5 as n_context_messages,
                false as responder_spoke_before,
                ['U1', 'U2'] as prior_participant_ids,
                cast([] as varchar[]) as mentioned_user_ids
            from labelled
        """)
        con.execute("""
            create table user_labels as
            select label, case when label = 0 then null else 'U' || cast(label as varchar) end as user_id,
                   case when label = 0 then 'nil' else 'user ' || cast(label as varchar) end as user_name
            from (select cast(range as integer) as label from range(300))
        """)
        # the marts' label is text ('nil' for nobody): as training_examples has it
        con.execute("alter table training_examples alter label type varchar")
        con.execute("update training_examples set label = 'nil' where label = '0'")
        con.execute("alter table user_labels alter label type varchar")
        con.execute("update user_labels set label = 'nil' where label = '0'")


def export_cmd(db: Path, code: Path | None) -> tuple[list[str], dict[str, str]]:
    cmd = [sys.executable, "-c", "from beep.cli import main; main()", "export", "--db", str(db), "--unrefined", "--json"]
    env = {"PYTHONPATH": str(code / "python_steps")} if code else {}
    return cmd, env


def measure(name: str, db: Path, code: Path | None, logs: Path) -> dict[str, Any]:
    cmd, env = export_cmd(db, code)
    m = run_measured(name, cmd, logs / f"{name}.log", env={**env, "COLUMNS": "200"}, cwd=REPO)
    measured = {"seconds": round(m.seconds, 1), "cpu_seconds": round(m.cpu_seconds, 1), "peak_mb": round(m.peak_mb)}
    if m.returncode != 0:  # recorded as a result (an export that runs out of memory is one), not hidden
        last = [line.strip() for line in tail(m.log).splitlines() if line.strip()]
        error = next((line for line in reversed(last) if "Error" in line or "error" in line), last[-1] if last else "")
        print(f"{name} failed (exit {m.returncode}):\n{tail(m.log)}", flush=True)
        return {**measured, "failed": f"exit {m.returncode}: {error[:160]}"}
    return measured


def checkout(commit: str) -> Path:
    """The python_steps, seeds and the dbt project (whose vars and rule macros the Python steps read) of ``commit`` in
    bench/out (git archive; nothing in the working tree changes)."""
    where = OUT / f"code-{commit[:12]}"
    if not (where / "dbt_project.yml").exists():
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        paths = ["python_steps", "seeds", "macros", "models", "dbt_project.yml"]
        listed = subprocess.run(["git", "ls-tree", "--name-only", commit, *paths], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout.split()
        archive = subprocess.run(["git", "archive", commit, *listed], cwd=REPO, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--quick", action="store_true", help="2,000 and 8,000 examples, docs not written.")
    parser.add_argument("--before", help="Also measure the export of this commit (e.g. the one before streaming).")
    parser.add_argument("--before-results", type=Path,
                        help="Show the 'before' rows of an earlier run's JSON (bench/out/export-*.json) instead of measuring them again.")
    args = parser.parse_args(argv)
    sizes = [2_000, 8_000] if args.quick else args.sizes
    logs = OUT / "logs"
    rows = []
    for n in sizes:
        source = OUT / f"export-examples-{n}.duckdb"
        if not source.exists():
            started = time.perf_counter()
            make_db(source, n)
            print(f"generated {n:,} examples in {time.perf_counter() - started:.1f} s", flush=True)
        ways: list[tuple[str, Path | None]] = [("streamed", None)]
        if args.before:
            ways.append((f"before ({args.before[:7]})", checkout(args.before)))
        for way, code in ways:
            work = OUT / f"export-{n}-{way.split()[0]}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            shutil.copy(source, work / "beep.duckdb")
            load = os.getloadavg()[0]
            first = measure(f"export-{n}-{way.split()[0]}", work / "beep.duckdb", code, logs)
            again = (measure(f"export-{n}-{way.split()[0]}-again", work / "beep.duckdb", code, logs)
                     if "failed" not in first else {"failed": "not run: the first export failed"})
            rows.append({"examples": n, "way": way, "first": first, "again": again, "load_before": round(load, 1),
                         "load_after": round(os.getloadavg()[0], 1)})
            print(f"  {n:,} {way}: {_cell(first)}; unchanged again: {_cell(again)}", flush=True)
    if args.before_results:
        earlier = json.loads(args.before_results.read_text())
        rows += [{**r, "way": f"{r['way']}, measured {earlier['at']}"} for r in earlier["rows"]
                 if r["way"].startswith("before") and r["examples"] in sizes]
        rows.sort(key=lambda r: (r["examples"], r["way"] != "streamed"))
    result = {"rows": rows, "cpus": os.cpu_count(), "machine": platform.platform(),
              "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "python": platform.python_version(),
              "duckdb": duckdb.__version__}
    (OUT / f"export-{'-'.join(map(str, sizes))}.json").write_text(json.dumps(result, indent=2))
    section = render(result, args)
    print(section)
    if not args.quick:
        write_docs(section)
    return 0


def render(result: dict[str, Any], args: argparse.Namespace) -> str:
    command = ("`.venv/bin/python bench/bench_export.py" + (f" --sizes {' '.join(map(str, args.sizes))}" if args.sizes != [100_000, 400_000] else "") + (f" --before {args.before}" if args.before else "")
               + (f" --before-results {args.before_results}" if args.before_results else "") + "`")
    lines = [
        BEGIN,
        "## Export (`bench/bench_export.py`)",
        "",
        (f"Measured {result['at']} on {result['machine']}, {result['cpus']} CPUs, Python {result['python']}, "
         f"DuckDB {result['duckdb']}; the machine was shared with other work (load average in the table). "
         f"Command: {command}. Generated examples (about 700-character prompts, 5 per conversation, 300 labels), "
         "`beep export --unrefined` (chat format, default base model: every example rendered and its tokens counted), "
         "each export its own process, peak RSS of its process tree."),
        "",
        "| examples | export | time | CPU time | peak memory | unchanged, again: time | peak | load before → after |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["rows"]:
        f, a = r["first"], r["again"]
        if "failed" in f:
            lines.append(f"| {r['examples']:,} | {r['way']} | failed after {f['seconds']} s ({f['failed']}) | "
                         f"{f['cpu_seconds']} s | {f['peak_mb']:,} MB | – | – | {r['load_before']} → {r['load_after']} |")
            continue
        again = (f"{a['seconds']} s | {a['peak_mb']:,} MB" if "failed" not in a else f"failed ({a['failed']}) | –")
        lines.append(f"| {r['examples']:,} | {r['way']} | {f['seconds']} s | {f['cpu_seconds']} s | {f['peak_mb']:,} MB "
                     f"| {again} | {r['load_before']} → {r['load_after']} |")
    streamed = sorted((r["examples"], r["first"]["peak_mb"]) for r in result["rows"]
                      if r["way"] == "streamed" and "failed" not in r["first"])
    growth = ""
    if len(streamed) >= 2 and streamed[0][1]:
        (n0, p0), (n1, p1) = streamed[0], streamed[-1]
        growth = (f" From {n0:,} to {n1:,} examples ({n1 / n0:.0f}x) the streamed export's peak went from {p0:,} MB "
                  f"to {p1:,} MB ({p1 / p0 - 1:+.0%}).")
    lines += ["", ("Streamed: the examples come from DuckDB in batches of 5,000 and are written as they come; the checks "
                   "keep counters and the first ids (duplicates and leakage: a private DuckDB, capped at 64 MB, that "
                   "spills to disk). An unchanged export (same inputs and settings: the same export id, its files there "
                   "with their checksums) is returned as recorded: one pass over the rows to compute the id, nothing "
                   "rendered or written. Every connection the export opens to the DuckDB file runs one thread under a "
                   "256 MB cap (beep/export/api.py, EXPORT_MEMORY_LIMIT): the sorts of the rows (by example id, by "
                   "split) and the numbering of the recorded examples spill to disk past it." + growth +
                   " A `before (COMMIT)` row is that commit's code on a copy of the same file (`--before COMMIT`)."),
              END]
    return "\n".join(lines)


def _cell(measured: dict[str, Any]) -> str:
    if "failed" in measured:
        return f"failed ({measured['failed']})"
    return f"{measured['seconds']} s, peak {measured['peak_mb']} MB"


def write_docs(section: str) -> None:
    """Replace this benchmark's section in docs/benchmarks.md (other sections are left alone)."""
    write_doc_section(DOCS, section, BEGIN, END)


if __name__ == "__main__":
    raise SystemExit(main())
