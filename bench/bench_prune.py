"""What daily runs leave on disk, with and without pruning: `beep run` day after day.

    .venv/bin/python bench/bench_prune.py                 # 30,000 messages over 120 days, 8 new days
    .venv/bin/python bench/bench_prune.py --quick         # 6,000 messages over 60 days, 3 new days; docs not written

A large-profile export is generated (`beep sample generate --profile large`, seeded) and its newest
``--new-days`` dates are held back. Two work folders run `beep run` on the history, then add the held-back
dates one at a time (as `beep slack pull` or a fresh export adds them) and run `beep run` again after
each: one with `--keep 0` (everything kept, as before pruning existed), one with `--keep K` (pruning
after every run, beep.prune). After every run it records the DuckDB file's size, the size of Beep's work
folder (exports' JSONL files, model and evaluation artifacts) and the rows of ``export_examples`` and
``predictions``. Local providers, offline. Results: bench/out/prune-*.json and the bench_prune section
of docs/benchmarks.md.
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
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
from measure import run_measured, tail, write_doc_section  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BEGIN bench_prune (written by bench/bench_prune.py) -->", "<!-- END bench_prune -->"


def _beep(*args: str) -> list[str]:
    return [sys.executable, "-c", "from beep.cli import main; main()", *args]


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def _measure(db: Path) -> dict[str, Any]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        examples, predictions, exports = con.execute(
            "select (select count(*) from export_examples), (select count(*) from predictions), "
            "(select count(*) from exports where pruned_at is null)").fetchone()
    return {"db_mb": round(db.stat().st_size / 2**20, 1), "workdir_mb": round(_folder_bytes(db.parent / ".beep") / 2**20, 1),
            "export_examples": examples, "predictions": predictions, "exports_with_files": exports}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--channels", type=int, default=30)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--new-days", type=int, default=8, help="Dates held back and added one at a time.")
    parser.add_argument("--keep", type=int, default=3, help="`beep run --keep` of the pruned folder.")
    parser.add_argument("--quick", action="store_true", help="6,000 messages, 60 people, 12 channels, 60 days, 3 new days; docs not written.")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.people, args.channels, args.days, args.new_days = 6_000, 60, 12, 60, 3
    from beep.sample.generator import generate_large_export

    size = f"{args.messages}-{args.people}-{args.channels}-{args.days}"
    generated = OUT / f"daily-export-{size}"
    if not (generated / "users.json").exists():
        generate_large_export(generated, messages=args.messages, seed=1, people=args.people, channels=args.channels,
                              days=args.days, truth=False)
    dates = sorted({p.stem for p in generated.glob("*/*.json")})[-args.new_days:]
    work = OUT / f"prune-{size}"
    shutil.rmtree(work, ignore_errors=True)
    rows: dict[str, list[dict[str, Any]]] = {}
    for label, keep in (("kept", 0), ("pruned", args.keep)):
        export = work / label / "export"
        shutil.copytree(generated, export, ignore=lambda _f, names: [n for n in names if n[:-5] in dates])
        db = work / label / "db" / "beep.duckdb"
        db.parent.mkdir(parents=True)
        rows[label] = []
        for day in [None, *dates]:
            if day is not None:
                for file in generated.glob(f"*/{day}.json"):
                    (export / file.parent.name).mkdir(exist_ok=True)
                    shutil.copy2(file, export / file.parent.name / file.name)
            m = run_measured(f"{label}-{day or 'history'}", _beep("run", str(export), "--db", str(db), "--keep", str(keep)),
                             work / "logs" / f"{label}-{day or 'history'}.log", env={"COLUMNS": "200"}, cwd=REPO)
            if m.returncode != 0:
                raise SystemExit(f"{label} {day}: beep run failed (exit {m.returncode}):\n{tail(m.log)}")
            measured = {"day": day or "history", "seconds": round(m.seconds, 1), **_measure(db)}
            rows[label].append(measured)
            print(f"  {label} {measured}", flush=True)
    result = {"size": vars(args), "rows": rows, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{platform.platform()}, {os.cpu_count()} CPUs", "argv": argv if argv is not None else sys.argv[1:]}
    (OUT / f"prune-{size}.json").write_text(json.dumps(result, indent=1))
    if not args.quick:
        write_doc_section(DOCS, render(result), BEGIN, END)
    return 0


def render(r: dict[str, Any]) -> str:
    a = r["size"]
    lines = [
        BEGIN,
        "## Pruning: what daily runs leave on disk (`bench/bench_prune.py`)",
        "",
        f"Measured {r['when']} on {r['machine']}. Command: "
        f"`{' '.join(['.venv/bin/python', 'bench/bench_prune.py', *r['argv']])}`. Export: `beep sample generate --profile large --messages "
        f"{a['messages']} --people {a['people']} --channels {a['channels']} --days {a['days']} --seed 1 --no-truth`, "
        f"its newest {a['new_days']} dates held back, then added one at a time with `beep run` after each: "
        f"with `--keep 0` (everything kept) and with `--keep {a['keep']}` (beep.prune after every run). "
        "Sizes after each run: the DuckDB file, Beep's work folder (the exports' JSONL files, model and "
        "evaluation artifacts), the rows of `export_examples` and `predictions`, and the exports whose files "
        "are still there.",
        "",
        "| after | kept: DuckDB | work folder | example rows | prediction rows | exports | "
        f"`--keep {a['keep']}`: DuckDB | work folder | example rows | prediction rows | exports |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kept, pruned in zip(r["rows"]["kept"], r["rows"]["pruned"]):
        cells = []
        for row in (kept, pruned):
            cells += [f"{row['db_mb']:,.1f} MB", f"{row['workdir_mb']:,.1f} MB", f"{row['export_examples']:,}",
                      f"{row['predictions']:,}", str(row["exports_with_files"])]
        lines.append(f"| {kept['day']} | " + " | ".join(cells) + " |")
    lines += ["", END]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
