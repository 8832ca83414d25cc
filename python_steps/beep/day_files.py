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
#: The day files as the last passing run of the fate reconciliation counted them (macros/tested_day_files.sql).
TESTED_TABLE = "stg_slack__messages__day_files_tested"


#: What int_conversation_links' last incremental build recomputed (macros/incremental_messages.sql).
LAST_SCOPE_TABLE = "int_conversation_links__last_scope"


@dataclass(frozen=True)
class DayFilesRead:
    """Day files the last build of stg_slack__messages parsed, of all it lists, and (when the build
    was incremental down to the conversations) the usable messages whose conversation rows it computed
    again, of all it holds: the touched channels' messages from each one's cut on."""

    n_read: int
    n_files: int
    n_messages_recomputed: int | None = None
    n_messages: int | None = None

    @property
    def everything(self) -> bool:
        return self.n_read == self.n_files

    def describe(self) -> str:
        if self.everything:
            return f"parsed all {self.n_files:,} day files (a first build, --rebuild, or the staging SQL changed)"
        text = (f"parsed {self.n_read:,} new or changed day file{'s' if self.n_read != 1 else ''} of {self.n_files:,} "
                "(incremental: the rows of the others kept)")
        if self.n_messages_recomputed is not None and self.n_messages is not None:
            text += (f"; conversations computed again for {self.n_messages_recomputed:,} of {self.n_messages:,} usable "
                     "messages (each touched channel from its last quiet moment before the day's changes)")
        return text


def day_files_read(duckdb_path: Path, *, conversations_built: bool = False) -> DayFilesRead | None:
    """The last build's count, or None when the DuckDB file has no record (Spark, an older Beep).
    ``conversations_built``: int_conversation_links was built by that build too, so its last scope
    (absent after a build from scratch) is that build's."""
    with connect(duckdb_path, read_only=True) as con:
        if not table_exists(con, SEEN_TABLE):
            return None
        columns = {r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_name = ?", [SEEN_TABLE]).fetchall()}
        if "read_in_last_build" not in columns:
            return None
        n_read, n_files = con.execute(
            f"select count(*) filter (where read_in_last_build), count(*) from {SEEN_TABLE}").fetchone()
        recomputed = None
        if conversations_built and table_exists(con, LAST_SCOPE_TABLE):
            # the count the build itself recorded, with the scope's own predicate (no second definition here)
            recomputed = con.execute(
                f"select coalesce((select any_value(n_rows_recomputed) from {LAST_SCOPE_TABLE}), 0), "
                "(select count(*) from int_conversation_links)").fetchone()
    if recomputed is None:
        return DayFilesRead(int(n_read), int(n_files))
    return DayFilesRead(int(n_read), int(n_files), int(recomputed[0]), int(recomputed[1]))
