"""Writing an export's rows to DuckDB in one short transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert many rows at once (column-wise unnest: much faster than executemany)."""
    if not rows:
        return
    col_list = ", ".join(f'"{c}"' for c in columns)
    selects = ", ".join(f"unnest(${i + 1})" for i in range(len(columns)))
    values = [[row[i] for row in rows] for i in range(len(columns))]
    con.execute(f"insert into {table} ({col_list}) select {selects}", values)
