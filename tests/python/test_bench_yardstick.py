"""The benchmark's yardstick (bench/plain_sql_method.sql, the method as one plain DuckDB script) must
compute what the dbt project computes, or its timings compare different work: checked on the sample."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from beep.config import PROJECT_DIR, SAMPLE_EXPORT, Paths

BENCH = PROJECT_DIR / "bench"


def test_plain_sql_yardstick_equals_the_dbt_models_on_the_sample(fresh_paths: Paths, tmp_path: Path) -> None:
    plain_db = tmp_path / "plain.duckdb"
    subprocess.run([sys.executable, str(BENCH / "dataset_steps.py"), "plain", str(SAMPLE_EXPORT), str(plain_db)],
                   check=True, capture_output=True, text=True)
    sys.path.insert(0, str(BENCH))
    try:
        from bench_dataset import compare_outputs
    finally:
        sys.path.remove(str(BENCH))
    comparison = compare_outputs(plain_db, fresh_paths.duckdb)
    assert comparison["training_examples"]["rows"] == 3081
    different = {t: c for t, c in comparison.items() if c["only_in_plain_sql"] or c["only_in_dbt"]}
    assert not different, different


def test_the_reaction_signal_check_runs_on_the_sample(built_paths: Paths) -> None:
    """bench/signal_reactions.py (docs/evaluation.md, "Reactions") reads a built file and prints its
    table: every ranking, each share between 0 and 1."""
    done = subprocess.run([sys.executable, str(BENCH / "signal_reactions.py"), "--db", str(built_paths.duckdb),
                           "--moments", "200"], check=True, capture_output=True, text=True)
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and line[2].isalpha() and "ranking" not in line]
    assert len(rows) == 6, done.stdout
    for row in rows:
        shares = [float(cell) for cell in row.strip("| ").split(" | ")[1:]]
        assert len(shares) == 3 and all(0.0 <= v <= 1.0 for v in shares), row
    assert "reactions in the export" in done.stdout
