"""Row counts and an order-free hash of every model's table, to show a change keeps the data equal.

Builds ``--export`` (default: the bundled sample) with the dbt project in ``--project`` (default: this
checkout; pass a copy of another commit, e.g. ``git archive <commit> | tar -x -C /tmp/before``) into
``--db``, then prints ``model rows hash`` for every model of that project (views and ephemeral models
that have no table say so) and writes them as JSON with ``--json``. Compare two runs' JSON files:

    git archive HEAD~5 | tar -x -C /tmp/before
    .venv/bin/python bench/table_hashes.py --project /tmp/before --db /tmp/b/beep.duckdb --json before.json
    .venv/bin/python bench/table_hashes.py --db /tmp/a/beep.duckdb --json after.json
    diff before.json after.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import duckdb
from beep.build import build
from beep.config import PROJECT_DIR, SAMPLE_EXPORT, Paths
from beep.db import open_duckdb


def table_hashes(db: Path, project_dir: Path) -> dict[str, list[object]]:
    """model -> [rows, sum of the rows' hashes] (or ["missing", why])."""
    out: dict[str, list[object]] = {}
    with open_duckdb(str(db), read_only=True) as con:
        for model in sorted(p.stem for p in (project_dir / "models").rglob("*.sql")):
            try:
                rows, digest = con.execute(
                    f"select count(*), coalesce(sum(hash(t)::hugeint), 0) from {model} as t").fetchone()
                out[model] = [rows, str(digest)]
            except duckdb.Error as err:
                out[model] = ["missing", str(err).splitlines()[0][:80]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=PROJECT_DIR, help="the dbt project to build with")
    parser.add_argument("--export", type=Path, default=SAMPLE_EXPORT, help="the Slack export to build")
    parser.add_argument("--db", type=Path, required=True, help="a new DuckDB file to build into")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    paths = Paths(duckdb=args.db, workdir=args.db.parent / ".beep", project_dir=args.project.resolve())
    build(paths, args.export, run_tests=False, quiet=True)
    result = table_hashes(args.db, args.project)
    for model, (rows, digest) in result.items():
        print(model, rows, digest)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
