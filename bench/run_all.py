"""Run every benchmark script in bench/ (bench_*.py), one after the other: `make bench`.

    .venv/bin/python bench/run_all.py            # full sizes; each script updates its docs/benchmarks.md section
    .venv/bin/python bench/run_all.py --quick    # every script's small smoke size
    .venv/bin/python bench/run_all.py --only dataset refine   # scripts whose name contains one of these words

Each script is run with this Python and, with --quick, its own --quick flag. Exits non-zero when any
script fails, after running the rest.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        found = [p for p in found if any(word in p.stem for word in only)]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Pass --quick to every script (small smoke sizes).")
    parser.add_argument("--only", nargs="*", help="Run only scripts whose name contains one of these words.")
    args = parser.parse_args(argv)
    todo = scripts(args.only)
    if not todo:
        print(f"no bench_*.py scripts matched in {HERE}", file=sys.stderr)
        return 2
    failed: list[str] = []
    for script in todo:
        cmd = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        print(f"=== {script.name} {'--quick' if args.quick else ''}", flush=True)
        started = time.perf_counter()
        rc = subprocess.call(cmd, cwd=HERE.parent)
        print(f"=== {script.name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - started:.0f} s",
              flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
