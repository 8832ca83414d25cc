"""Predictions are stored the same whether a batch is small (parameterised insert) or large (through a
JSON-lines file DuckDB reads in one insert), and a re-stored batch never duplicates."""

from __future__ import annotations

from pathlib import Path

from beep.db import connect, open_duckdb
from beep.evaluate.store import _BULK, PredictionRow, copy_predictions, write_predictions


def test_bulk_and_small_batches_store_the_same_rows(tmp_path: Path) -> None:
    db = tmp_path / "b.duckdb"
    with connect(db):
        pass
    rows = [PredictionRow("m", f"e{i}", "1", "2", (("2", -0.1), ("1", -2.0)), 2, "2", i % 2 == 0, None, None, "U1",
                          (("U2", 0.9, "mentioned — in #ops"), ("U1", 0.05, None)), 2, None, 0.05)
            for i in range(_BULK + 5)]
    write_predictions(db, "big", rows)
    write_predictions(db, "big", rows)  # again: insert or ignore
    # a resumed batch overlapping the stored rows: the stored ones are kept as they are, the others added
    changed = [PredictionRow("m", r.example_id, r.true_label, "9", r.ranked, r.true_label_rank, "9", r.newcomer, None,
                             None, r.responder_user_id, r.people, r.responder_rank, None, r.nobody_probability)
               for r in rows[-(_BULK + 1):]]
    extra = [PredictionRow("m", f"x{i}", "1", "1", (("1", -0.1),), 1, "1", False, None, None, "U1", (), 1, None, None)
             for i in range(3)]
    write_predictions(db, "big", changed + extra + extra[:1])  # x0 twice in one batch: stored once
    write_predictions(db, "small", rows[:3])
    con = open_duckdb(str(db), read_only=True)
    try:
        assert con.execute("select count(*) from predictions where eval_run_id = 'big'").fetchone()[0] == _BULK + 8
        assert con.execute("select count(*) from predictions where eval_run_id = 'big' and predicted_label = '9'"
                           ).fetchone()[0] == 0
        query = ("select * exclude (eval_run_id, predicted_at) from predictions where eval_run_id = ? "
                 "and example_id in ('e0', 'e1', 'e2') order by example_id")
        assert con.execute(query, ["big"]).fetchall() == con.execute(query, ["small"]).fetchall()
        reason = con.execute("select top_people->0->>'reason' from predictions where example_id = 'e0' limit 1").fetchone()[0]
        assert reason == "mentioned — in #ops"
    finally:
        con.close()
    assert not list(tmp_path.glob(".beep-predictions-*"))  # the temporary file is gone


def test_copied_predictions_keep_the_rows_the_run_has(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    with connect(db):
        pass
    rows = [PredictionRow("m", f"e{i}", "1", "2", (("2", -0.1),), 2, "2", False, None, None, "U1", (("U2", 0.9, None),),
                          None, None, None) for i in range(5)]
    write_predictions(db, "old", rows)
    write_predictions(db, "new", [PredictionRow("m", "e1", "1", "7", (("7", -0.1),), None, "7", False, None, None, "U1",
                                                (), None, None, None)])
    assert copy_predictions(db, from_run="old", to_run="new", model="m", example_ids=["e0", "e1", "e2", "e9"]) == 2
    con = open_duckdb(str(db), read_only=True)
    try:
        got = con.execute("select example_id, predicted_label from predictions where eval_run_id = 'new' order by 1").fetchall()
    finally:
        con.close()
    assert got == [("e0", "2"), ("e1", "7"), ("e2", "2")]  # e1 kept as the run had it; e9 was never stored


def test_rankings_without_numbers_are_stored_as_the_small_batches_store_them(tmp_path: Path) -> None:
    """A baseline's labels and people carry no probabilities: the bulk insert writes their JSON from parts
    made once a label or person; the stored values equal those of the parameterised insert."""
    db = tmp_path / "n.duckdb"
    with connect(db):
        pass
    ranked = (("2", None), ('a "quoted" label', None), ("nil", None))
    people = (("U2", None, None), ("Ünïcode\\id", None, None))
    rows = [PredictionRow("baseline:x", f"e{i}", "1", "2", ranked if i % 2 else ranked[:1], 2, None, False, None, None,
                          "U1", people if i % 3 else (), None, None, None) for i in range(_BULK + 5)]
    write_predictions(db, "big", rows)
    write_predictions(db, "small", rows[:6])
    con = open_duckdb(str(db), read_only=True)
    try:
        query = ("select example_id, top_k, top_people, top_k::varchar, top_people::varchar from predictions "
                 "where eval_run_id = ? and example_id in ('e0', 'e1', 'e2', 'e3', 'e4', 'e5') order by example_id")
        big, small = con.execute(query, ["big"]).fetchall(), con.execute(query, ["small"]).fetchall()
        assert big == small and len(big) == 6
        assert con.execute("select top_people->1->>'user_id' from predictions where example_id = 'e1' limit 1"
                           ).fetchone()[0] == "Ünïcode\\id"
    finally:
        con.close()
