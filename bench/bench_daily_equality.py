"""A real export's last days added one at a time: what a daily build recomputes, and that its tables
equal a build from scratch.

    .venv/bin/python bench/bench_daily_equality.py --export ../shared/realdata/ubuntu-irc.zip --days 2

The export (a zip or a folder) is copied to a work folder with its newest ``--days`` dates held back
(every channel's day file of those dates). One DuckDB file builds the history; then each held-back date
is copied in and the same file builds again (incrementally: macros/incremental_messages.sql). After each
date, a fresh DuckDB file builds the same folder from scratch and every model's table is compared by
row count and an order-free hash (bench/table_hashes.py). Printed per date: the day files added, the
channels the channel models recomputed and from when (``int_conversation_links__last_scope``), the
rows they recomputed against the rows they hold, the time of the incremental build and whether every
table equals the build from scratch. dbt's tests are not run (they do not change the tables), so the
times are the models' alone. tests/python/test_incremental_build.py checks the same on generated data
in CI; this runs it on real data, which stays outside the repository.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from beep.build import build
from beep.config import Paths
from beep.db import open_duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table_hashes import table_hashes  # noqa: E402

#: the tables dbt builds from the export (as tests/python/test_incremental_build.py selects them)
SELECT = "+training_examples +message_fate_counts +user_labels +stg_slack__reactions +stg_slack__day_files"
CHANNEL_MODELS = ("int_conversation_links", "int_conversations", "training_examples")


def _unpack(export: Path, into: Path) -> Path:
    """The export's folder (the one holding users.json or channels.json), copied or unzipped under ``into``."""
    if export.is_file():
        with zipfile.ZipFile(export) as zf:
            zf.extractall(into / "unpacked")
        root = into / "unpacked"
    else:
        root = export
    found = sorted({p.parent for p in root.rglob("channels.json")} | {p.parent for p in root.rglob("users.json")},
                   key=lambda p: len(p.parts))
    if not found:
        raise SystemExit(f"{export}: no channels.json or users.json: not a Slack export")
    return found[0]


def _recomputed(db: Path) -> tuple[list[tuple[str, object]], dict[str, tuple[int, int]]]:
    """The channel models' cuts, and per model (rows recomputed, rows held)."""
    with open_duckdb(str(db), read_only=True) as con:
        cuts = con.execute("select channel_folder, from_at from int_conversation_links__last_scope order by 1").fetchall()
        rows = {}
        for model in CHANNEL_MODELS:  # the counts each build recorded (macros/incremental_messages.sql)
            recomputed, held = con.execute(
                f"select coalesce((select any_value(n_rows_recomputed) from {model}__last_scope), 0), "
                f"(select count(*) from {model})").fetchone()
            rows[model] = (int(recomputed), int(held))
    return cuts, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", type=Path, required=True, help="A Slack export: a zip or an unzipped folder.")
    parser.add_argument("--days", type=int, default=2, help="How many of the newest dates to add one at a time.")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="Where the copies and DuckDB files go (default: a temporary folder, removed after).")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="beep-daily-eq-"))
    try:
        source = _unpack(args.export.resolve(), work)
        export = work / "export"
        shutil.rmtree(export, ignore_errors=True)
        shutil.copytree(source, export)
        files = sorted(export.glob("*/*.json"))
        dates = sorted({f.stem for f in files})[-args.days:]
        held = work / "held"
        shutil.rmtree(held, ignore_errors=True)
        for f in files:
            if f.stem in dates:
                (held / f.parent.name).mkdir(parents=True, exist_ok=True)
                shutil.move(str(f), held / f.parent.name / f.name)
        daily = Paths(duckdb=work / "daily" / "beep.duckdb", workdir=work / "daily" / ".beep")
        started = time.monotonic()
        build(daily, export, run_tests=False, quiet=True, select=SELECT)
        print(f"history: {len(files) - sum(1 for _ in held.rglob('*.json')):,} day files, "
              f"built in {time.monotonic() - started:.1f} s", flush=True)
        all_equal = True
        for date in dates:
            added = sorted(held.glob(f"*/{date}.json"))
            for f in added:
                (export / f.parent.name).mkdir(exist_ok=True)
                shutil.copy(f, export / f.parent.name / f.name)
            started = time.monotonic()
            build(daily, export, run_tests=False, quiet=True, select=SELECT)
            seconds = time.monotonic() - started
            cuts, rows = _recomputed(daily.duckdb)
            scratch = Paths(duckdb=work / f"scratch-{date}" / "beep.duckdb", workdir=work / "scratch" / ".beep")
            started = time.monotonic()
            build(scratch, export, run_tests=False, quiet=True, select=SELECT, full_refresh=True)
            scratch_seconds = time.monotonic() - started
            project = Path(__file__).resolve().parent.parent
            ours, theirs = table_hashes(daily.duckdb, project), table_hashes(scratch.duckdb, project)
            differ = sorted(m for m in theirs if theirs[m][0] != "missing" and ours.get(m) != theirs[m])
            all_equal &= not differ
            print(f"{date}: {len(added)} day file(s); incremental build {seconds:.1f} s, from scratch {scratch_seconds:.1f} s")
            for folder, at in cuts:
                print(f"  {folder}: recomputed from {'its first message' if at is None else at}")
            for model, (n, total) in rows.items():
                print(f"  {model}: {n:,} of {total:,} rows recomputed")
            print("  every table equals the build from scratch" if not differ else f"  DIFFERENT: {', '.join(differ)}",
                  flush=True)
            shutil.rmtree(scratch.duckdb.parent, ignore_errors=True)
        return 0 if all_equal else 1
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
