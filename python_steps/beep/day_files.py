"""What the incremental staging model read in the last build (macros/slack_export_files.sql).

stg_slack__messages (DuckDB) records the day files it has read in stg_slack__messages__day_files_seen,
each flagged ``read_in_last_build``: the new or changed files its last build parsed (all of them on a
first build, a --full-refresh, or after its SQL changed). The others' rows were kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from beep.db import connect, table_exists

SEEN_TABLE = "stg_slack__messages__day_files_seen"


@dataclass(frozen=True)
class DayFilesRead:
    """Day files the last build of stg_slack__messages parsed, of all it lists."""

    n_read: int
    n_files: int

    @property
    def everything(self) -> bool:
        return self.n_read == self.n_files

    def describe(self) -> str:
        if self.everything:
            return f"parsed all {self.n_files:,} day files (a first build, --rebuild, or the staging SQL changed)"
        return (f"parsed {self.n_read:,} new or changed day file{'s' if self.n_read != 1 else ''} of {self.n_files:,} "
                "(incremental: the rows of the others kept)")


def day_files_read(duckdb_path: Path) -> DayFilesRead | None:
    """The last build's count, or None when the DuckDB file has no record (Spark, an older Beep)."""
    with connect(duckdb_path, read_only=True) as con:
        if not table_exists(con, SEEN_TABLE):
            return None
        columns = {r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_name = ?", [SEEN_TABLE]).fetchall()}
        if "read_in_last_build" not in columns:
            return None
        n_read, n_files = con.execute(
            f"select count(*) filter (where read_in_last_build), count(*) from {SEEN_TABLE}").fetchone()
    return DayFilesRead(int(n_read), int(n_files))
