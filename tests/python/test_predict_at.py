"""`beep predict --at T` ranks with the workspace as of T: for the moment of an evaluated example's
last context message its people, probabilities and reasons equal what `beep evaluate` stored for that
example; before the training period too (a replay from the start); after the data's end it warns and
ranks as of the end. A channel that does not exist is refused with the channels that do."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from beep.config import Paths
from beep.db import open_duckdb
from beep.evaluate.api import evaluate
from beep.evaluate.dataset import EvaluationInputError
from beep.live.predict import parse_at, predict
from beep.export.api import export
from beep.finetune.api import finetune
from beep.refine.api import refine

# an example's last context message: the message just before its target in the conversation
_EXAMPLES_SQL = """
    select te.example_id, last.ts, coalesce(last.channel_id, last.channel_folder), last.conversation_id,
           epoch(last.message_at)
    from training_examples te
    join int_conversations c on c.conversation_id = te.conversation_id and c.ts = te.target_ts
    join int_conversations last on last.conversation_id = c.conversation_id and last.position = c.position - 1
    where te.example_id in (select unnest(?))
      -- the moment names one conversation: no other message of the channel at the same time
      and not exists (select 1 from int_conversations o where coalesce(o.channel_id, o.channel_folder)
                       = coalesce(last.channel_id, last.channel_folder) and o.message_at = last.message_at
                       and o.ts <> last.ts)
    order by last.message_at, te.example_id
"""


@pytest.fixture(scope="module")
def evaluated(built_paths: Paths, tmp_path_factory: pytest.TempPathFactory):
    """The sample, refined, exported (time split), the ranker trained and evaluated on it."""
    import shutil

    root = tmp_path_factory.mktemp("predict-at")
    paths = Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")
    shutil.copy(built_paths.duckdb, paths.duckdb)
    quiet = Console(stderr=True, quiet=True)
    refine(paths, provider="local", console=quiet)
    exported = export(paths)
    job = finetune(paths, export_id=exported.export_id, provider="local", console=quiet)
    result = evaluate(paths, model=job.job_id, export_id=exported.export_id, console=quiet)
    return paths, job, result


def _stored(paths: Paths, run_id: str, model: str) -> dict[str, tuple[list[dict], float]]:
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        rows = con.execute("select example_id, top_people, nobody_probability from predictions"
                           " where eval_run_id = ? and model = ?", [run_id, model]).fetchall()
    finally:
        con.close()
    return {r[0]: (json.loads(r[1]), r[2]) for r in rows}


def _assert_same(prediction, people: list[dict], nobody: float) -> None:
    got = [(c.user_id, c.probability, c.reason) for c in prediction.candidates]
    want = [(p["user_id"], p["probability"], p["reason"]) for p in people]
    assert [g[0] for g in got] == [w[0] for w in want]
    assert [g[1] for g in got] == pytest.approx([w[1] for w in want], rel=1e-6, abs=1e-9)
    assert [g[2] for g in got] == [w[2] for w in want]  # "today" is the example's day, not the data's end
    assert prediction.nobody_probability == pytest.approx(nobody, rel=1e-6, abs=1e-9)


def test_predict_at_equals_evaluate_for_the_same_moment(evaluated) -> None:
    paths, job, result = evaluated
    stored = _stored(paths, result.eval_run_id, job.fine_tuned_model)
    assert stored
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        rows = con.execute(_EXAMPLES_SQL, [sorted(stored)]).fetchall()
    finally:
        con.close()
    assert len(rows) > 10
    picked = [rows[0], rows[len(rows) // 3], rows[len(rows) // 2], rows[-1]]
    for example_id, ts, channel, _conv, _at in picked:
        people, nobody = stored[example_id]
        prediction = predict(paths, model=job.job_id, channel=channel, at=ts, k=20)
        assert prediction.conversation.last_message_at is not None
        assert prediction.warnings == []
        _assert_same(prediction, people, nobody)


def test_predict_at_before_the_training_period_replays_from_the_start(evaluated) -> None:
    """A moment inside the training period: no saved state is as of then, so the workspace is replayed
    from its first message; the answer equals `score`'s (the evaluation's code) for that example."""
    from beep.predictors.models import resolve_model, verified_artifact
    from beep.ranker.model import ResponderRanker
    from beep.ranker.stream import load_queries

    paths, job, _result = evaluated
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        ranker = ResponderRanker.load(verified_artifact(resolve_model(con, job.job_id)))
        train_ids = [r[0] for r in con.execute(
            "select example_id from export_examples where export_id = ? and split = 'train'", [job.export_id]).fetchall()]
        rows = con.execute(_EXAMPLES_SQL, [train_ids]).fetchall()
        rows = [r for r in rows if r[4] < ranker.trained_until]
        example_id, ts, channel, _conv, _at = rows[len(rows) // 2]
        query = load_queries(con, [example_id])[example_id]
        scored = []
        ranker.score(con, [query], scored.extend)
    finally:
        con.close()
    (want,) = scored
    prediction = predict(paths, model=job.job_id, channel=channel, at=ts, k=20)
    people = [{"user_id": u, "probability": p, "reason": r}
              for u, p, r in zip(want.user_ids, want.probabilities, want.reasons)]
    _assert_same(prediction, people, want.nobody_probability)


def test_predict_after_the_data_warns_and_ranks_as_of_the_end(evaluated) -> None:
    paths, job, _result = evaluated
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        end, ts, channel = con.execute(
            "select message_at, ts, coalesce(channel_id, channel_folder) from int_conversations"
            " order by message_at desc, ts desc limit 1").fetchone()
    finally:
        con.close()
    late = predict(paths, model=job.job_id, channel=channel, at="2030-01-01", k=20)
    assert len(late.warnings) == 1 and "after the end of the data" in late.warnings[0]
    at_end = predict(paths, model=job.job_id, channel=channel, at=ts, k=20)
    assert at_end.warnings == []
    assert [c.user_id for c in late.candidates] == [c.user_id for c in at_end.candidates]
    assert [c.probability for c in late.candidates] == pytest.approx([c.probability for c in at_end.candidates])
    assert late.conversation.quiet_too_long  # and the CLI says the conversation is probably over
    assert parse_at(ts) == end  # a Slack ts is read to the microsecond


def test_an_unknown_channel_lists_the_channels(evaluated) -> None:
    paths, job, _result = evaluated
    with pytest.raises(EvaluationInputError, match=r"no channel 'nope'.*the channels are #\w+"):
        predict(paths, model=job.job_id, channel="nope", at="2025-03-04T10:00:00")


def test_saved_checkpoints_give_the_state_of_a_replay_from_the_start(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranker saves the workspace state every so many messages beside its artifact; `rank_at`
    resumes from the latest one before the moment (a few thousand messages replayed at most, not the
    whole history) and ranks exactly as a replay from the first message does, before and after the
    training period. A missing or altered checkpoint file is passed over (an earlier state is used)."""
    from beep.ranker import model as ranker_model
    from beep.ranker.model import ResponderRanker
    from beep.ranker.stream import Query, load_queries
    from ranker_world import synthetic_workspace, write_world

    monkeypatch.setattr(ranker_model, "CHECKPOINT_MESSAGES", 300)
    messages, nil = synthetic_workspace(300, 3000, seed=3, nil_rate=0.2)
    db = tmp_path / "w.duckdb"
    write_world(db, messages)
    con = open_duckdb(str(db), read_only=True)
    try:
        found = load_queries(con, [r[0] for r in con.execute("select example_id from training_examples").fetchall()])
        ordered = sorted(found.values(), key=lambda q: (q.target_at, q.example_id))
        train = [Query(**{**q.__dict__, "label": nil.get(q.example_id, "x")}) for q in ordered[: int(len(ordered) * 0.8)]]
        trained = ResponderRanker(seed=0)
        trained.fit(con, train)
        path = tmp_path / "model.joblib"
        trained.save(path)
        model = ResponderRanker.load(path)
        assert len(model.checkpoint_files) >= 6 and all(f.exists() for _, f, _ in model.checkpoint_files)
        # trained with a spill folder (as `beep finetune` trains), the states go to files as they are made,
        # and saving moves them beside the artifact: the same states, byte for byte
        spilled, spill = ResponderRanker(seed=0), tmp_path / "spilled.states.partial"
        spilled.fit(con, train, spill_dir=spill)
        assert spilled.checkpoints == [] and len(list(spill.glob("*.pickle.zlib"))) == len(model.checkpoint_files)
        spilled.save(tmp_path / "spilled.joblib")
        assert not spill.exists()
        saved = ResponderRanker.load(tmp_path / "spilled.joblib").checkpoint_files
        assert [(t, f.name, sha) for t, f, sha in saved] == [(t, f.name, sha) for t, f, sha in model.checkpoint_files]
        assert all(f.parent == tmp_path / "spilled.states" and f.exists() for _, f, _ in saved)
        fresh = ResponderRanker.load(path)  # the reference: no saved state, a replay from the start
        fresh.snapshot, fresh.checkpoint_files = None, []
        picks = [ordered[i] for i in range(3, len(ordered), len(ordered) // 12)]
        assert any(q.last_at < model.trained_until for q in picks) and any(q.last_at > model.trained_until for q in picks)

        def check(ranker: ResponderRanker) -> None:
            for q in picks:
                want: list = []
                fresh.score(con, [q], want.extend)
                (name,) = con.execute("select any_value(coalesce(channel_name, channel_folder)) from int_conversations"
                                      " where conversation_id = ?", [q.conversation_id]).fetchone()
                got = ranker.rank_at(con, q.conversation_id, q.last_at, channel_name=name)
                assert got.user_ids == want[0].user_ids, q.example_id
                assert got.probabilities == pytest.approx(want[0].probabilities, rel=1e-6, abs=1e-9)
                assert got.reasons == want[0].reasons
                assert got.nobody_probability == pytest.approx(want[0].nobody_probability, rel=1e-6, abs=1e-9)

        resumed = [model._saved_state_before(q.last_at)[1] for q in picks]
        assert sum(t is not None and t < model.trained_until for t in resumed) >= 3  # from checkpoints, not the start
        check(model)
        _until, first, _sha = model.checkpoint_files[len(model.checkpoint_files) // 2]
        first.write_bytes(first.read_bytes()[:-1] + b"x")  # altered
        model.checkpoint_files[-1][1].unlink()  # missing
        check(model)
    finally:
        con.close()


def test_the_command_loads_only_what_ranking_needs(evaluated) -> None:
    """`beep predict --at` with the local ranker imports neither the tokenizer (bpe_openai loads its
    encodings on import: 0.4 s), the OpenAI SDK, the export nor the evaluation: its start-up is most
    of its time (docs/ranker.md)."""
    import subprocess
    import sys

    paths, job, _result = evaluated
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        [(channel, at)] = con.execute("select channel_name, max(target_at) from training_examples "
                                      "group by 1 order by count(*) desc limit 1").fetchall()
    finally:
        con.close()
    probe = ("import json, sys\nfrom beep.cli import main\n"
             f"sys.argv = ['beep', 'predict', '--db', {str(paths.duckdb)!r}, '--channel', {channel!r}, "
             f"'--at', {at.isoformat()!r}, '--json']\n"
             "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
             "heavy = ('bpe_openai', 'openai', 'beep.export.api', 'beep.evaluate.api')\n"
             "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "BEEP_WORKDIR": str(paths.workdir)})
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout)
    assert printed["candidates"] and printed["conversation"]["channel_name"] == channel  # a prediction
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_predict_says_whom_the_app_would_alert_as_the_alert_replay_alerted(evaluated) -> None:
    """`beep predict --json`'s "app": the Slack app's own policy at the model's operating point. At
    moments where evaluate's alert replay (the same policy) sent alerts, the person it alerted is
    among those predict says the app would alert (predict has no memory of earlier alerts, so it may
    name more, never fewer); the threshold is the one the replay chose."""
    from typer.testing import CliRunner

    from beep.cli import app

    paths, job, result = evaluated
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        [(op_point,)] = con.execute(
            "select value from metrics where eval_run_id = ? and model = ? and slice = 'alert_replay' "
            "and metric = 'min_probability'", [result.eval_run_id, job.fine_tuned_model]).fetchall()
        alerts = con.execute(
            """
            select a.person_id, m.ts, coalesce(m.channel_id, m.channel_folder)
            from alert_replay_alerts a
            join int_conversations m on m.conversation_id = a.conversation_id and m.message_at = a.alert_at
            where a.eval_run_id = ? and a.model = ?
              and not exists (select 1 from int_conversations o where coalesce(o.channel_id, o.channel_folder)
                              = coalesce(m.channel_id, m.channel_folder) and o.message_at = m.message_at and o.ts <> m.ts)
            order by a.alert_at, a.person_id
            """, [result.eval_run_id, job.fine_tuned_model]).fetchall()
    finally:
        con.close()
    assert len(alerts) >= 3, alerts
    for person, ts, channel in [alerts[0], alerts[len(alerts) // 2], alerts[-1]]:
        ran = CliRunner().invoke(app, ["predict", "--db", str(paths.duckdb), "--model", job.job_id, "--channel",
                                       channel, "--at", ts, "--json"], env={"BEEP_WORKDIR": str(paths.workdir)})
        assert ran.exit_code == 0, ran.output
        view = json.loads(ran.stdout)["app"]
        assert view["min_probability"] == pytest.approx(op_point)
        assert result.eval_run_id in view["threshold_source"]
        assert person in [a["user_id"] for a in view["would_alert"]], (person, ts, view)
        assert all(a["probability"] >= op_point for a in view["would_alert"])
    # the people in the conversation are never alerted, whatever their probability
    prediction = predict(paths, model=job.job_id, channel=alerts[0][2], at=alerts[0][1], k=20)
    from beep.slack.alerts import Person
    from beep.slack.preview import preview

    inside = set(prediction.conversation.prior_participant_ids)
    assert inside
    everyone = {u: Person(u) for u, _p, _r in prediction.ranked_people if u}
    view = preview(prediction, everyone, min_probability=0.0, threshold_source="a test")
    alerted = {a["user_id"] for a in view.alerts}
    assert alerted and not alerted & inside
    assert {p["user_id"] for people in view.not_candidates.values() for p in people} >= inside & set(everyone)


def test_predict_text_says_as_of_when_the_ranker_ranks(evaluated) -> None:
    """--text has no moment: the ranker ranks with the workspace as of the end of its data, and says so
    ("today" in its reasons is that day)."""
    paths, job, _result = evaluated
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        [(end,)] = con.execute("select max(message_at) from int_conversations").fetchall()
    finally:
        con.close()
    prediction = predict(paths, model=job.job_id, text="the deploy failed again, can someone look?")
    assert prediction.ranked_as_of == end.strftime("%Y-%m-%d %H:%M:%S")
    assert predict(paths, model=job.job_id, channel=prediction.candidates[0].user_id and "general",
                   at=end.isoformat()).ranked_as_of is None  # --at names its own moment
