"""`beep evaluate` with the local model: tables, baselines, newcomer slice, idempotence, resume,
a tampered artifact refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _evaluate_world import build_world
from beep.config import Paths
from beep.db import open_duckdb
from beep.predictors import local as predictors
from beep.evaluate.api import evaluate
from beep.evaluate.baselines import (
    BASELINES,
    CHANNEL_MAJORITY,
    MAJORITY,
    MENTIONED_THEN_CHANNEL,
    RECENT_PARTICIPANT,
    BaselineInput,
    Baselines,
    TrainRow,
)
from beep.evaluate.dataset import EvaluationInputError


def _paths(world) -> Paths:
    return Paths(duckdb=world.db, workdir=world.db.parent / ".beep")


def test_baselines_on_known_tiny_data() -> None:
    train = [
        TrainRow("C1", "0", "UA"), TrainRow("C1", "0", "UA"), TrainRow("C1", "1", "UB"),
        TrainRow("C2", "2", "UC"), TrainRow("C2", "2", "UC"), TrainRow("C2", "2", "UC"), TrainRow("C2", "nil", "UD"),
    ]
    b = Baselines(train, ["0", "1", "2", "3", "nil"], {"UA": "0", "UB": "1", "UC": "2", "UD": "3"})
    # baselines rank people (the responders of train, whatever their label), then read labels off them
    assert b.rank_people(MAJORITY, BaselineInput("C1")) == ["UC", "UA", "UB", "UD"]
    assert b.rank(MAJORITY, BaselineInput("C1")) == ["2", "0", "1", "3", "nil"]
    assert b.rank(CHANNEL_MAJORITY, BaselineInput("C1")) == ["0", "1", "2", "3", "nil"]
    assert b.rank(CHANNEL_MAJORITY, BaselineInput("C9"))[0] == "2"  # unseen channel: global order
    got = b.rank(RECENT_PARTICIPANT, BaselineInput("C1", ["UA", "UD", "UB", "UX"]))
    # UA wrote the latest message (never the responder); then UD, UB (UX has no label: no label for them), then the channel
    assert got == ["3", "1", "0", "2", "nil"]
    assert b.rank_people(RECENT_PARTICIPANT, BaselineInput("C1", ["UA", "UD", "UB", "UX"]))[:3] == ["UD", "UB", "UX"]
    assert b.rank(MENTIONED_THEN_CHANNEL, BaselineInput("C2", ["UA"], ["UB"])) == ["1", "2", "3", "0", "nil"]
    assert b.rank(MENTIONED_THEN_CHANNEL, BaselineInput("C2", ["UA"], []))[0] == "2"
    # a person past the export's label limit reads as `other` when the export has that label
    folded = Baselines(train, ["0", "1", "other", "nil"], {"UA": "0", "UB": "1"})
    assert folded.rank(RECENT_PARTICIPANT, BaselineInput("C1", ["UA", "UX"]))[:2] == ["other", "0"]


def test_evaluate_writes_runs_predictions_metrics_with_baselines_and_newcomer_slice(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    result = evaluate(_paths(world), model=world.model)
    assert result.n == 40 and not result.reused and result.cost == 0.0
    con = open_duckdb(str(world.db), read_only=True)
    try:
        run = con.execute("select model, export_id, split, n, provider, status, finished_at from eval_runs").fetchall()
        assert run == [(world.model, world.export_id, "valid", 40, "local", "finished", run[0][6])]
        per_model = dict(con.execute("select model, count(*) from predictions group by model").fetchall())
        assert per_model == {world.model: 40, **{b: 40 for b in BASELINES}}
        # the true labels are the export's labels of the valid split, nil included
        truth = con.execute(
            """select count(*) from predictions p join export_examples e using (example_id)
               where p.true_label <> e.label or e.split <> 'valid'"""
        ).fetchone()[0]
        assert truth == 0
        top = json.loads(con.execute("select top_k from predictions where model = ? limit 1", [world.model]).fetchone()[0])
        assert len(top) == 5 and all(set(t) == {"label", "logprob"} for t in top)  # 4 users + nil
        slices = con.execute("select distinct model, slice from metrics where metric = 'f1_macro'").fetchall()
        assert len(slices) == 2 * (1 + len(BASELINES))
        n_new = con.execute(
            "select value from metrics where model = ? and slice = 'newcomer' and metric = 'n'", [world.model]
        ).fetchone()[0]
        expected_new = con.execute(
            """select count(*) from export_examples e join training_examples t using (example_id)
               where e.split = 'valid' and not t.responder_spoke_before"""
        ).fetchone()[0]
        assert n_new == expected_new == result.n_newcomer > 0
        per_label = con.execute(
            "select count(*) from metrics where model = ? and slice = 'all' and metric = 'f1' and label is not null",
            [world.model],
        ).fetchone()[0]
        assert per_label == 5
        # the mention slices: the examples whose window @-mentions someone, and those whose responder
        n_mention = dict(con.execute(
            "select slice, value from metrics where model = ? and slice like '%mentioned' and metric = 'n'", [world.model]
        ).fetchall())
        expected_mention = con.execute(
            """select count(*) filter (where len(t.mentioned_user_ids) > 0),
                      count(*) filter (where list_contains(t.mentioned_user_ids, t.responder_user_id))
               from export_examples e join training_examples t using (example_id) where e.split = 'valid'"""
        ).fetchone()
        assert (n_mention["mentioned"], n_mention["responder_mentioned"]) == expected_mention
        assert expected_mention[0] >= expected_mention[1] > 0
    finally:
        con.close()
    head = result.headline
    assert head[world.model]["all"]["f1_macro"] > head[MAJORITY]["all"]["f1_macro"]
    assert head[world.model]["all"]["top_3_accuracy"] >= head[MAJORITY]["all"]["top_3_accuracy"]
    assert set(head[RECENT_PARTICIPANT]) == {"all", "newcomer", "mentioned", "responder_mentioned"}
    # the recent-participant baseline is useless for newcomers by construction of this world
    assert head[RECENT_PARTICIPANT]["newcomer"]["accuracy"] == 0.0


def test_same_model_export_split_reuses_the_finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path)
    first = evaluate(_paths(world), model=world.model)

    def boom(*a, **k):
        raise AssertionError("a finished run must not predict again")

    monkeypatch.setattr(predictors.LocalPredictor, "run", boom)
    again = evaluate(_paths(world), model=world.job_id)  # by job id this time
    assert again.reused and again.eval_run_id == first.eval_run_id and again.headline == first.headline
    monkeypatch.undo()
    fresh = evaluate(_paths(world), model=world.model, new_run=True)
    assert fresh.eval_run_id != first.eval_run_id and not fresh.reused


def test_a_killed_evaluate_resumes_without_predicting_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path)
    seen: list[str] = []
    real_predict = predictors.LocalPredictor.predict

    def counting_predict(self, rows, example_ids=None):
        seen.extend(example_ids or [])
        if len(seen) > 15:
            raise KeyboardInterrupt  # the user (or the OOM killer) stops the run mid-way
        return real_predict(self, rows, example_ids)

    monkeypatch.setattr(predictors.LocalPredictor, "predict", counting_predict)
    with pytest.raises(KeyboardInterrupt):
        evaluate(_paths(world), model=world.model, batch_size=8)
    con = open_duckdb(str(world.db), read_only=True)
    stored = {r[0] for r in con.execute("select example_id from predictions").fetchall()}
    status = con.execute("select status, error from eval_runs").fetchone()
    con.close()
    assert len(stored) == 8 and status[0] == "interrupted" and "KeyboardInterrupt" in status[1]
    first_pass = list(seen)
    seen.clear()
    monkeypatch.setattr(predictors.LocalPredictor, "predict", lambda self, rows, example_ids=None: (seen.extend(example_ids or []), real_predict(self, rows, example_ids))[1])
    result = evaluate(_paths(world), model=world.model, batch_size=8)
    assert not set(seen) & stored, "an example already predicted was predicted again"
    assert len(seen) == 40 - 8 and result.n == 40
    con = open_duckdb(str(world.db), read_only=True)
    dupes = con.execute("select count(*) - count(distinct (model, example_id)) from predictions").fetchone()[0]
    assert dupes == 0
    assert con.execute("select status from eval_runs").fetchone()[0] == "finished"
    con.close()
    assert len(first_pass) == 16  # two batches of 8 asked for, the first stored before the interrupt


def test_a_tampered_artifact_is_refused(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    with world.artifact.open("ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(EvaluationInputError, match="sha256"):
        evaluate(_paths(world), model=world.model)


def test_unknown_model_and_missing_export_name_what_to_do(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    with pytest.raises(EvaluationInputError, match="beep finetune"):
        evaluate(_paths(world), model="local:nope")
    with pytest.raises(EvaluationInputError, match="--export"):
        evaluate(_paths(world), model="gpt-4o-mini")
    with pytest.raises(EvaluationInputError, match="beep export"):
        evaluate(_paths(world), model=world.model, export_id="exp-missing")


def test_the_baselines_learn_from_the_train_split_as_three_columns(tmp_path: Path) -> None:
    """load_train_rows reads what the baselines count (channel, label, responder) of every train example:
    the same rows as the whole examples give, and the same error when an example left training_examples."""
    from beep.db import connect
    from beep.evaluate.dataset import load_examples, load_train_rows
    from beep.labels import load_export

    world = build_world(tmp_path)
    with connect(world.db) as con:
        export = load_export(con, world.export_id)
        whole = load_examples(con, export, "train", with_prompt=False)
        rows = load_train_rows(con, export)
        assert len(rows) == len(whole) > 0
        assert sorted(rows, key=repr) == sorted((TrainRow(ex.channel_id, ex.true_label, ex.responder_user_id)
                                                 for ex in whole), key=repr)
        gone = sorted(ex.example_id for ex in whole)[:2]
        con.execute("delete from training_examples where example_id in (?, ?)", gone)
        with pytest.raises(EvaluationInputError, match=f"2 example\\(s\\) .* no longer in training_examples "
                                                        f"\\(e.g. {gone[0]}\\).*beep export"):
            load_train_rows(con, export)
    with pytest.raises(EvaluationInputError, match="no longer in training_examples"):
        evaluate(_paths(world), model=world.model)


def test_evaluate_command_prints_the_headline_and_json(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from beep.commands import evaluate_cmd

    world = build_world(tmp_path)
    app = typer.Typer()
    evaluate_cmd.register(app)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--db", str(world.db), "--model", world.job_id])
    assert res.exit_code == 0, res.output
    assert "baseline:majority" in res.output and "beep report --run ev-" in res.output
    res = runner.invoke(app, ["evaluate", "--db", str(world.db), "--json"])  # default: the latest job
    data = json.loads(res.output)
    assert data["reused"] is True and data["model"] == world.model and data["n"] == 40
    assert set(data["headline"][world.model]) == {"all", "newcomer", "mentioned", "responder_mentioned"}
    bad = runner.invoke(app, ["evaluate", "--db", str(world.db), "--model", "local:nope"])
    assert bad.exit_code == 2 and "beep finetune" in bad.output
