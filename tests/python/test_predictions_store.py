"""Predictions are stored the same whether a batch is small (parameterised insert) or large (through a
JSON-lines file DuckDB reads in one insert), and a re-stored batch never duplicates."""

from __future__ import annotations

from pathlib import Path

from beep.db import connect, open_duckdb
from beep.evaluate.store import _BULK, PredictionRow, write_predictions


def test_bulk_and_small_batches_store_the_same_rows(tmp_path: Path) -> None:
    db = tmp_path / "b.duckdb"
    with connect(db):
        pass
    rows = [PredictionRow("m", f"e{i}", "1", "2", (("2", -0.1), ("1", -2.0)), 2, "2", i % 2 == 0, None, None, "U1",
                          (("U2", 0.9, "mentioned — in #ops"), ("U1", 0.05, None)), 2, None, 0.05)
            for i in range(_BULK + 5)]
    write_predictions(db, "big", rows)
    write_predictions(db, "big", rows)  # again: insert or ignore
    write_predictions(db, "small", rows[:3])
    con = open_duckdb(str(db), read_only=True)
    try:
        assert con.execute("select count(*) from predictions where eval_run_id = 'big'").fetchone()[0] == _BULK + 5
        query = ("select * exclude (eval_run_id, predicted_at) from predictions where eval_run_id = ? "
                 "and example_id in ('e0', 'e1', 'e2') order by example_id")
        assert con.execute(query, ["big"]).fetchall() == con.execute(query, ["small"]).fetchall()
        reason = con.execute("select top_people->0->>'reason' from predictions where example_id = 'e0' limit 1").fetchone()[0]
        assert reason == "mentioned — in #ops"
    finally:
        con.close()
    assert not list(tmp_path.glob(".beep-predictions-*"))  # the temporary file is gone
