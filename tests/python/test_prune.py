"""`beep prune` (beep.prune) on a hand-made DuckDB file: which exports stay and why, what goes, and that
nothing outside Beep's own folders, nothing in flight and no file another model links is touched.
The day-by-day case (a kept model's origin, the steps that refuse a pruned part) is in
tests/python/test_daily_evaluate.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from beep.cli import app
from beep.config import Paths
from beep.db import connect
from beep.prune import plan, prune


def _paths(folder: Path) -> Paths:
    return Paths(duckdb=folder / "beep.duckdb", workdir=folder / ".beep")


def _file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def _export(con, paths: Paths, export_id: str, day: int, n: int) -> None:
    folder = paths.exports_dir / "jsonl" / export_id
    train, valid = _file(folder / "train.jsonl", 1000), _file(folder / "valid.jsonl", 200)
    con.execute("insert into exports (export_id, created_at, status, format, base_model, refined, split_method, n_train, "
                "n_valid, n_excluded, train_path, valid_path) values (?, timestamp '2026-01-01' + to_days(?), 'ok', "
                "'chat', 'm', true, 'time', ?, 0, 0, ?, ?)", [export_id, day, n, str(train), str(valid)])
    con.execute("insert into export_examples (export_id, example_id, split, line, label) "
                "select ?, 'x' || i, 'train', i, '1' from range(?) t(i)", [export_id, n])
    con.execute("insert into export_checks (export_id, \"check\", severity, passed, count) values (?, 'c', 'error', true, 0)",
                [export_id])


def _job(con, paths: Paths, job_id: str, export_id: str, day: int, status: str = "succeeded",
         kept_from: str | None = None, artifact: Path | None = None) -> Path:
    """A local job; a kept job's model has its origin's name (beep.finetune.keep)."""
    artifact = artifact or _file(paths.artifacts_dir / "finetune" / job_id / "model.joblib", 300)
    con.execute("insert into finetune_jobs (job_id, provider, base_model, export_id, settings_hash, status, created_at, "
                "finished_at, hyperparameters, artifact_path, fine_tuned_model) values (?, 'local', 'm', ?, 'h', ?, "
                "timestamp '2026-01-01' + to_days(?), timestamp '2026-01-01' + to_days(?), ?, ?, ?)",
                [job_id, export_id, status, day, day, json.dumps({"kept_from": kept_from} if kept_from else {}),
                 str(artifact), f"local:{kept_from or job_id}"])
    return artifact.parent


def _run(con, paths: Paths, run_id: str, export_id: str, model: str, day: int, status: str = "finished", n: int = 5) -> None:
    _file(paths.artifacts_dir / "evaluate" / run_id / "rankings.bin", 50)
    con.execute("insert into eval_runs (eval_run_id, model, export_id, split, provider, status, started_at, finished_at) "
                "values (?, ?, ?, 'valid', 'local', ?, timestamp '2026-01-01' + to_days(?), timestamp '2026-01-01' + to_days(?))",
                [run_id, model, export_id, status, day, day])
    con.execute("insert into predictions (eval_run_id, model, example_id, true_label, predicted_at) "
                "select ?, ?, 'x' || i, '1', now() from range(?) t(i)", [run_id, model, n])
    con.execute("insert into metrics (eval_run_id, model, slice, metric) values (?, ?, 'all', 'person_top_1')", [run_id, model])


@pytest.fixture()
def workspace(tmp_path: Path) -> Paths:
    """Seven exports, one a day (e0 oldest), e6 the newest. The newest model (job j6, on e6) was kept from
    the job trained on e1 (j1; j6's model is named local:j1), and its newest evaluation is on e6. Job j2 (on
    e2) is still running; e0's evaluation was interrupted; e3 and e4 hold evaluations of an older model
    (j3, trained on e3; its folder links a file of j1's), e5 one of another; j7, on e3 too, has its
    model outside Beep's folders; r3 has a report."""
    paths = _paths(tmp_path)
    with connect(paths.duckdb) as con:
        for day, export_id in enumerate(["e0", "e1", "e2", "e3", "e4", "e5", "e6"]):
            _export(con, paths, export_id, day, 10 + day)
        origin = _job(con, paths, "j1", "e1", 1)
        _file(origin / "states" / "s1", 4000)
        _job(con, paths, "j2", "e2", 2, status="running")
        older = _job(con, paths, "j3", "e3", 3)
        os.link(origin / "states" / "s1", older / "s1")  # a file j1's model needs too: freed only when both go
        _job(con, paths, "j7", "e3", 3, artifact=_file(tmp_path / "elsewhere" / "model.joblib", 10))  # not Beep's folder
        _job(con, paths, "j6", "e6", 6, kept_from="j1")
        _run(con, paths, "r0", "e0", "local:j0", 0, status="interrupted")
        _run(con, paths, "r3", "e3", "local:j3", 3, n=7)
        _file(paths.artifacts_dir / "reports" / "r3.html", 70)
        _run(con, paths, "r4", "e4", "local:j3", 4)
        _run(con, paths, "r5", "e5", "local:j5", 5, n=11)
        _run(con, paths, "r6", "e6", "local:j1", 6)
    return paths


def test_what_stays_and_why(workspace: Paths) -> None:
    said = plan(workspace, 2)
    assert said.kept_exports == ("e6", "e5", "e2", "e1")
    assert said.reasons == {"e2": "fine-tune job j2 is running", "e1": "job j1 trained the model job j6 kept"}
    # an older model's evaluations and an interrupted one keep nothing: no daily run reads them again
    assert (said.exports, said.eval_runs, said.jobs) == (("e4", "e3", "e0"), ("r4", "r3", "r0"), ("j3",))
    assert (said.n_example_rows, said.n_check_rows, said.n_prediction_rows) == (14 + 13 + 10, 3, 5 + 7 + 5)
    artifacts, jsonl = workspace.artifacts_dir, workspace.exports_dir / "jsonl"
    assert set(said.removed) == {jsonl / "e4", jsonl / "e3", jsonl / "e0", artifacts / "evaluate" / "r4",
                                 artifacts / "evaluate" / "r3", artifacts / "evaluate" / "r0",
                                 artifacts / "reports" / "r3.html", artifacts / "finetune" / "j3"}
    assert said.n_bytes == 3 * 1200 + 3 * 50 + 70 + 300  # j3's link to j1's saved state frees nothing


def test_prune_removes_the_plan_and_a_killed_prune_is_finished_by_the_next(workspace: Paths) -> None:
    said = plan(workspace, 2)
    done = prune(workspace, 2)
    assert done == said and not any(path.exists() for path in said.removed)
    assert (workspace.artifacts_dir / "finetune" / "j1" / "states" / "s1").is_file()
    assert (workspace.duckdb.parent / "elsewhere" / "model.joblib").is_file()
    with connect(workspace.duckdb) as con:
        assert con.execute("select export_id, count(*) from export_examples group by 1 order by 1").fetchall() == [
            ("e1", 11), ("e2", 12), ("e5", 15), ("e6", 16)]
        assert con.execute("select count(*) from export_checks where export_id = 'e3'").fetchone()[0] == 0
        assert con.execute("select eval_run_id from predictions group by 1 order by 1").fetchall() == [("r5",), ("r6",)]
        assert con.execute("select count(*) from metrics").fetchone()[0] == 5  # every run's metrics stay
        pruned = con.execute("select 'export ' || export_id from exports where pruned_at is not null union all "
                             "select 'run ' || eval_run_id from eval_runs where pruned_at is not null union all "
                             "select 'job ' || job_id from finetune_jobs where pruned_at is not null order by 1").fetchall()
        assert pruned == [("export e0",), ("export e3",), ("export e4",), ("job j3",), ("run r0",), ("run r3",),
                          ("run r4",)]
    # a prune killed after its rows were deleted left a folder: the next one removes it, and nothing else
    leftover = _file(workspace.exports_dir / "jsonl" / "e3" / "train.jsonl", 1000).parent
    again = plan(workspace, 2)
    assert (again.exports, again.eval_runs, again.jobs, again.removed) == ((), (), (), (leftover,))
    prune(workspace, 2)
    assert not leftover.exists() and plan(workspace, 2).empty


def test_what_comes_back_after_a_prune_is_made_again(workspace: Paths) -> None:
    """A pruned run's id comes back when its export is made again from the same data and settings: the run
    is made again whole (evaluate discards what prune left of it); a job trained again is no longer pruned."""
    from beep.evaluate.store import discard_pruned_run
    from beep.finetune.tracking import get_job, save_job

    prune(workspace, 2)
    assert not discard_pruned_run(workspace.duckdb, "r6")  # never one that was not pruned
    assert discard_pruned_run(workspace.duckdb, "r3")
    with connect(workspace.duckdb) as con:
        for table in ("eval_runs", "metrics", "predictions"):
            assert con.execute(f"select count(*) from {table} where eval_run_id = 'r3'").fetchone()[0] == 0
        assert con.execute("select count(*) from eval_runs where eval_run_id = 'r6'").fetchone()[0] == 1
    job = get_job(workspace.duckdb, "j3")
    _file(Path(job.artifact_path), 300)  # trained again: its artifact is back
    save_job(workspace.duckdb, job)
    with connect(workspace.duckdb) as con:
        assert con.execute("select pruned_at from finetune_jobs where job_id = 'j3'").fetchone()[0] is None


def test_keep_one_keeps_the_newest_and_what_is_in_use(workspace: Paths) -> None:
    said = plan(workspace, 1)
    assert said.kept_exports == ("e6", "e2", "e1") and said.exports == ("e5", "e4", "e3", "e0")
    # j7's model (on e3) lives outside Beep's folders: left where it is, its job not marked
    assert said.jobs == ("j3",) and not any("elsewhere" in str(path) for path in said.removed)


def test_the_command_says_what_it_would_do_then_does_it(workspace: Paths) -> None:
    runner = CliRunner()
    env = {"BEEP_WORKDIR": str(workspace.workdir)}
    dry = runner.invoke(app, ["prune", "--db", str(workspace.duckdb), "--keep", "2", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert ("prune: would remove 4.0 KB of files, 3 export(s)' files and 37 example rows, the 17 predictions of 3 "
            in dry.output)
    assert "kept export e1: job j1 trained the model job j6 kept" in dry.output
    assert (workspace.exports_dir / "jsonl" / "e3").is_dir()
    done = runner.invoke(app, ["prune", "--db", str(workspace.duckdb), "--keep", "2"], env=env)
    assert done.exit_code == 0 and "prune: removed 4.0 KB of files" in done.output
    assert not (workspace.exports_dir / "jsonl" / "e3").exists()
    missing = runner.invoke(app, ["prune", "--db", str(workspace.duckdb.parent / "nope.duckdb")], env=env)
    assert missing.exit_code == 2 and "does not exist: nothing to prune" in missing.output


def test_a_run_whose_prune_must_wait_says_so_and_succeeds(workspace: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process evaluating this file holds the lock pruning takes: `beep run` has done its work, so
    it says nothing was pruned this time instead of failing."""
    from rich.console import Console

    from beep.locks import StepLock
    from beep.pipeline import RunOptions, _Steps

    monkeypatch.setenv("BEEP_LOCK_WAIT_SECONDS", "0")
    console = Console(record=True, width=200)
    steps = _Steps(workspace, RunOptions(keep=2), console)
    with StepLock(workspace, "evaluate"):
        steps.prune()
    assert steps.result.pruned is None and "warning: nothing pruned this time" in console.export_text()
    assert (workspace.exports_dir / "jsonl" / "e3").is_dir()
    steps.prune()
    assert steps.result.pruned is not None and not (workspace.exports_dir / "jsonl" / "e3").exists()
