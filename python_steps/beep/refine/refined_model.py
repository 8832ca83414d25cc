"""Keep the dbt model ``refined_training_examples`` fresh after a refine.

It is a view over refine_verdicts, so new verdicts show at once — unless dbt built it while
refine_verdicts did not exist yet (a plain `dbt build` on a fresh DuckDB), in which case it reads
a typed empty input. Then (or when the view is missing) refine re-runs the two refine models.
"""

from __future__ import annotations

import re

from beep.config import Paths
from beep.db import SEARCH_PATH, connect, require_layer_schemas
from beep.dbt_runner import run_dbt

MODELS = ("refined_training_examples", "refine_verdict_counts")


def view_reads_verdicts(paths: Paths) -> bool:
    """Whether the view exists and reads the real refine_verdicts table."""
    with connect(paths.duckdb) as con:
        # in marts (dbt_project.yml), or wherever the search path finds them
        where = "database_name = current_database() and list_contains(?, schema_name) and view_name = ?"
        row = con.execute(f"select sql from duckdb_views() where {where}",
                          [list(SEARCH_PATH), "refined_training_examples"]).fetchone()
        counts = con.execute(f"select count(*) from duckdb_views() where {where}",
                             [list(SEARCH_PATH), "refine_verdict_counts"]).fetchone()
    # the table itself, not the name of the ephemeral stg_beep__refine_verdicts CTE around it
    reads_table = bool(row and re.search(r"(?<!\w)\"?refine_verdicts(?!\w)", row[0] or ""))
    return reads_table and bool(counts and counts[0])


def refresh_refined_models(paths: Paths, *, force: bool = False) -> bool:
    """Re-run the refine dbt models when needed; return whether dbt ran."""
    if not force and view_reads_verdicts(paths):
        return False
    with connect(paths.duckdb, read_only=True) as con:
        require_layer_schemas(con)
    run_dbt(paths, ["run", "--select", *MODELS], quiet=True)
    return True
