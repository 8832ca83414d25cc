"""Keep the dbt evaluation views (models/marts/evaluation) live.

They are views over eval_runs / predictions / metrics. A `dbt build` on a fresh DuckDB, before any
evaluation, creates them over typed empty inputs (the tables did not exist yet); such a view stays
empty until dbt builds it again. After an evaluation, :func:`refresh_stale_views` rebuilds the
views that were built without their table — once per DuckDB file, a few seconds of dbt — and
leaves alone files where dbt never built them (nothing to refresh) or already built them live.
"""

from __future__ import annotations

import duckdb

from beep.config import Paths
from beep.db import SEARCH_PATH, connect, require_layer_schemas

#: Each evaluation view and the Python-owned table it reads.
VIEW_SOURCES: dict[str, str] = {
    "evaluation_runs": "eval_runs",
    "evaluation_metrics": "metrics",
    "evaluation_predictions": "predictions",
    "evaluation_alert_replay": "alert_replay_curve",
}
SELECTOR = "path:models/marts/evaluation"


def stale_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Evaluation views that exist but were built over the empty fallback of their table."""
    rows = con.execute(  # in marts (dbt_project.yml), or wherever the search path finds them
        "select view_name, sql from duckdb_views() where database_name = current_database() "
        "and list_contains(?, schema_name) and list_contains(?, view_name)",
        [list(SEARCH_PATH), list(VIEW_SOURCES)],
    ).fetchall()
    return sorted(name for name, sql in rows if f'"{VIEW_SOURCES[name]}"' not in (sql or "") and f".{VIEW_SOURCES[name]}" not in (sql or ""))


def refresh_stale_views(paths: Paths) -> list[str]:
    """Rebuild the evaluation views with dbt when any is stale; return the stale ones found."""
    with connect(paths.duckdb, read_only=True) as con:
        stale = stale_views(con)
        if stale:
            require_layer_schemas(con)
    if stale:
        from beep.dbt_runner import run_dbt

        run_dbt(paths, ["run", "--select", SELECTOR], quiet=True)
    return stale
