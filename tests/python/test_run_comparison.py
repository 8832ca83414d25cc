"""Runs are compared with the previous run of the same kind (provider + model variant + export settings +
split), not of the same model name: every retrained model gets a new name (issue 10, item 6)."""

from __future__ import annotations

from rich.console import Console

from beep.config import Paths
from beep.db import open_duckdb
from beep.evaluate.api import compare_with_previous, evaluate
from beep.export.api import export
from beep.finetune.api import finetune
from beep.refine.api import refine


def test_runs_of_the_same_kind_are_compared_and_record_what_they_ran_on(fresh_paths: Paths) -> None:
    quiet = Console(stderr=True, quiet=True)
    refine(fresh_paths, provider="local", console=quiet)
    exported = export(fresh_paths)
    runs = []
    for variant, seed in (("text+context", 0), ("text+context", 1), ("text", 0)):
        job = finetune(fresh_paths, export_id=exported.export_id, variant=variant, seed=seed, console=quiet)
        runs.append(evaluate(fresh_paths, model=job.job_id, console=quiet))
    first, second, other = runs
    assert first.model != second.model  # retrained: a new name, the same kind

    previous, values = compare_with_previous(fresh_paths, second.eval_run_id, ["person_top_5", "f1_macro"])
    assert previous == first.eval_run_id
    now, before = values["all"]["person_top_5"]
    assert now == second.headline[second.model]["all"]["person_top_5"]
    assert before == first.headline[first.model]["all"]["person_top_5"]
    assert compare_with_previous(fresh_paths, first.eval_run_id, ["f1_macro"]) == (None, {})
    assert compare_with_previous(fresh_paths, other.eval_run_id, ["f1_macro"])[0] is None  # another variant: another kind

    con = open_duckdb(str(fresh_paths.duckdb), read_only=True)
    try:
        kinds = dict(con.execute("select eval_run_id, run_kind from eval_runs").fetchall())
        assert kinds[first.eval_run_id] == kinds[second.eval_run_id] == "local/text+context|chat|time 0.2|refined|valid"
        assert kinds[other.eval_run_id].startswith("local/text|")
        context = con.execute("select context->'export'->>'split_method', context->'model'->>'seed' from eval_runs "
                              "where eval_run_id = ?", [second.eval_run_id]).fetchone()
        assert context == ("time", "1")
        rows = con.execute(
            """select eval_run_id, run_number, previous_eval_run_id, delta from evaluation_run_comparison
               where metric = 'person_top_5' and slice = 'all' and not is_baseline order by run_kind, run_number"""
        ).fetchall()
    finally:
        con.close()
    by_run = {r[0]: r for r in rows}
    assert by_run[second.eval_run_id][1:3] == (2, first.eval_run_id)
    assert by_run[second.eval_run_id][3] == now - before
    assert by_run[other.eval_run_id][1:3] == (1, None)
