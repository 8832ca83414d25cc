"""Benchmark `beep sample generate --profile large`: time, CPU, peak memory, and what the export looks like.

    .venv/bin/python bench/bench_sample_large.py            # 500,000 and 1,000,000 messages, 2,000 people, 300 channels, 365 days
    .venv/bin/python bench/bench_sample_large.py --quick    # 20,000 messages, 200 people, 30 channels
    .venv/bin/python bench/bench_sample_large.py --messages 100000 500000 --workers 1

Each size is generated in its own process (the `beep sample` app alone, without the whole CLI's
imports), measured with bench/measure.py (wall time, CPU time, peak RSS summed over the process
tree), then read back for: day files, messages per file, the long tail of activity and the share of
replies by people new to their conversation (from truth.csv). Prints a Markdown table and writes
bench/out/sample-large.json; the numbers quoted in docs/sample-workspace.md come from this script.
Exports are written under bench/out/ and deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import run_measured, tail  # noqa: E402

OUT = HERE / "out"


def describe(export: Path) -> dict:
    """Read the export back: files, messages per file, long tail, newcomer share."""
    humans = {u["id"] for u in json.loads((export / "users.json").read_text())
              if not u["is_bot"] and u["id"] != "USLACKBOT"}
    per_file: list[int] = []
    written: Counter[str] = Counter()
    author: dict[tuple[str, str], str] = {}
    n_bytes = 0
    for path in export.glob("*/*.json"):
        n_bytes += path.stat().st_size
        day = json.loads(path.read_text(encoding="utf-8"))
        per_file.append(len(day))
        for m in day:
            uid = m.get("user") or m.get("bot_id") or ""
            author[(path.parent.name, m["ts"])] = uid
            if uid in humans and "subtype" not in m:
                written[uid] += 1
    counts = sorted((written.get(u, 0) for u in humans), reverse=True)
    total = sum(counts) or 1
    convs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    with open(export / "truth.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            convs[row["conversation_id"]].append((row["ts"], row["channel"]))
    replies = newcomers = 0
    for rows in convs.values():
        rows.sort()
        seen: set[str] = set()
        prev = None
        for ts, channel in rows:
            a = author[(channel, ts)]
            if prev is not None and a != prev:
                replies += 1
                newcomers += a not in seen
            seen.add(a)
            prev = a
    return {
        "day_files": len(per_file), "mib": round(n_bytes / 2**20), "mean_per_file": round(sum(per_file) / len(per_file), 1),
        "median_per_file": statistics.median(per_file),
        "channels_with_files": len({p.parent.name for p in export.glob("*/*.json")}),
        "top10_share": round(sum(counts[: max(1, len(counts) // 10)]) / total, 3),
        "median_person": statistics.median(counts), "mean_person": round(total / len(counts), 1),
        "silent_people": sum(1 for c in counts if c == 0), "conversations": len(convs),
        "newcomer_share": round(newcomers / max(replies, 1), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="One small size (20,000 messages, 200 people, 30 channels).")
    parser.add_argument("--messages", type=int, nargs="*", default=[500_000, 1_000_000], help="Sizes to generate.")
    parser.add_argument("--people", type=int, default=2000, help="People (default 2,000).")
    parser.add_argument("--channels", type=int, default=300, help="Public channels (default 300).")
    parser.add_argument("--days", type=int, default=365, help="Days (default 365).")
    parser.add_argument("--seed", type=int, default=1, help="Seed (default 1).")
    parser.add_argument("--workers", type=int, default=0, help="--workers of the generator (0 = one per CPU).")
    parser.add_argument("--keep", action="store_true", help="Keep the exports under bench/out/.")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.people, args.channels = [20_000], 200, 30
    cli = "from beep.commands.sample_cmd import sample_app; sample_app(prog_name='beep sample')"
    measured: list[tuple[int, Path, dict]] = []
    # every size is generated before any is read back: reading an export makes this process big, and a
    # child forked from a big process reports the parent's size as its own peak (ru_maxrss)
    for n in args.messages:
        export = OUT / f"large-{n}-p{args.people}-c{args.channels}-d{args.days}-s{args.seed}"
        cmd = [sys.executable, "-c", cli, "generate", str(export), "--profile", "large", "--force",
               "--messages", str(n), "--people", str(args.people), "--channels", str(args.channels),
               "--days", str(args.days), "--seed", str(args.seed), "--workers", str(args.workers)]
        if export.exists():
            shutil.rmtree(export)
        m = run_measured(f"generate-{n}", cmd, OUT / "logs" / f"sample-large-{n}.log")
        if m.returncode != 0:
            print(f"generation of {n:,} messages failed (exit {m.returncode}):\n{tail(m.log)}", file=sys.stderr)
            return 1
        measured.append((n, export, {"messages": n, "seconds": round(m.seconds, 1),
                                     "cpu_seconds": round(m.cpu_seconds, 1), "peak_mb": round(m.peak_mb)}))
        print(f"generated {n:,} messages in {m.seconds:.1f} s", flush=True)
    results = []
    for _n, export, row in measured:
        row.update(describe(export))
        results.append(row)
        print(json.dumps(row), flush=True)
        if not args.keep:
            shutil.rmtree(export)
    info = {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{platform.machine()} "
            f"{platform.system()}, {__import__('os').cpu_count()} CPUs, Python {platform.python_version()}",
            "people": args.people, "channels": args.channels, "days": args.days, "seed": args.seed, "results": results}
    OUT.mkdir(exist_ok=True)
    (OUT / "sample-large.json").write_text(json.dumps(info, indent=2))
    print(f"\nMeasured {info['measured']} on {info['machine']}; {args.people:,} people, {args.channels} channels, "
          f"{args.days} days, seed {args.seed}.\n")
    print("| messages | time | CPU time | peak memory (process tree) | day files | MiB | messages/file (mean, median) "
          "| top 10% of people write | median person | replies by newcomers |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['messages']:,} | {r['seconds']} s | {r['cpu_seconds']} s | {r['peak_mb']} MB | {r['day_files']:,} "
              f"| {r['mib']} | {r['mean_per_file']}, {r['median_per_file']:g} | {r['top10_share']:.0%} "
              f"| {r['median_person']:g} (mean {r['mean_person']:g}) | {r['newcomer_share']:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
