"""A daily run on a hand-made workspace (tests/python/ranker_world.py, no dbt): the local ranker keeps
yesterday's model when today's export adds little (beep.finetune.keep), and the evaluation keeps the
stored predictions of unchanged examples (beep.evaluate.reuse) with metrics equal to a run from scratch.

One module fixture writes the workspace twice (yesterday: all but its last 6 hours; today: all), exports
each (the real time split), trains once and evaluates; ~15 s on 2 busy cores."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from beep.config import Paths
from beep.db import connect, open_duckdb
from beep.evaluate.api import evaluate
from beep.export.split import split_examples
from beep.finetune.api import finetune
from beep.finetune.keep import KEEP_MAX_NEW_SHARE, keep_decision
from beep.finetune.local import _recorded_artifact_ok, local_settings
from beep.finetune.tracking import get_job, settings_hash
from beep.ranker.message_days import day_digests
from ranker_world import synthetic_workspace, write_world

SETTINGS = {"format": "chat", "split_method": "time", "valid_fraction": 0.2, "refined": True}
#: today's export gives the people from this one on (in user id order) the next label: as when a new
#: responder enters the label set, whose labels are in LabelEncoder order
SHIFT_FROM = 50
SYSTEM = "Who answers next? Answer with a label."


def _write(paths: Paths, messages: list) -> None:
    """The world's two tables, with the columns of training_examples evaluation reads that ranker_world
    leaves out (the prompt, earlier participants, mentions, whether the responder spoke before)."""
    write_world(paths.duckdb, messages)
    with connect(paths.duckdb) as con:
        for column, kind in (("prompt", "varchar"), ("prior_participant_ids", "varchar[]"),
                             ("mentioned_user_ids", "varchar[]"), ("responder_spoke_before", "boolean")):
            con.execute(f"alter table training_examples add column {column} {kind}")
        con.execute(
            """
            update training_examples te set
                prompt = 'conversation ' || te.conversation_id,
                prior_participant_ids = coalesce((select list_sort(list(distinct c.user_id)) from int_conversations c
                    where c.conversation_id = te.conversation_id and c.message_at < te.target_at), []),
                mentioned_user_ids = [],
                responder_spoke_before = exists (select 1 from int_conversations c where c.conversation_id = te.conversation_id
                    and c.message_at < te.target_at and c.user_id = te.responder_user_id)
            """
        )


def _export(paths: Paths, export_id: str, nil: dict[str, str], *, valid_fraction: float = 0.2,
            valid_ids: set[str] | None = None, shift_from: int | None = None,
            people: list[str] | None = None) -> tuple[int, int]:
    """Export the workspace's training_examples as ``export_id`` (time split, or ``valid_ids``), with one
    label per person (the same mapping every day; with ``shift_from``, the labels from that one on move
    up by one, as when a new responder enters the label set; ``people``: the people labelled, default those
    who wrote); returns (n_train, n_valid)."""
    with connect(paths.duckdb) as con:
        rows = con.execute("select example_id, conversation_id, channel_id, target_at, responder_user_id, "
                           "prior_participant_ids from training_examples order by target_at, example_id").fetchall()
        people = people or sorted(r[0] for r in con.execute("select distinct user_id from int_conversations").fetchall())
    label_of = {u: str(i if shift_from is None or i < shift_from else i + 1) for i, u in enumerate(people)}
    examples = [dict(zip(("example_id", "conversation_id", "channel_id", "target_at", "responder_user_id", "prior"), r))
                for r in rows]
    split = (split_examples(examples, valid_fraction=valid_fraction) if valid_ids is None else
             {e["example_id"]: "valid" if e["example_id"] in valid_ids else "train" for e in examples})
    folder = paths.exports_dir / "jsonl" / export_id  # where `beep export` writes its files
    folder.mkdir(parents=True, exist_ok=True)
    files, shas, lines = {}, {}, {"train": 0, "valid": 0}
    out = {s: [] for s in ("train", "valid")}
    for e in examples:
        s = split[e["example_id"]]
        lines[s] += 1
        e.update(split=s, line=lines[s], label=nil.get(e["example_id"], label_of[e["responder_user_id"]]))
        out[s].append(e)
    for s, rows_ in out.items():
        files[s] = folder / f"{s}.jsonl"
        files[s].write_text("".join(json.dumps({"messages": [
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": f"conversation {e['conversation_id']}\n\n###\n\n"},
            {"role": "assistant", "content": e["label"]}]}) + "\n" for e in rows_))
        shas[s] = hashlib.sha256(files[s].read_bytes()).hexdigest()
    with connect(paths.duckdb) as con:
        con.execute(
            """insert into exports (export_id, status, format, base_model, refined, split_method, label_prefix, settings,
                                    train_path, valid_path, train_sha256, valid_sha256, n_train, n_valid)
               values (?, 'ok', 'chat', 'gpt-4o-mini-2024-07-18', true, 'time', '', ?, ?, ?, ?, ?, ?, ?)""",
            [export_id, json.dumps(SETTINGS), str(files["train"]), str(files["valid"]), shas["train"], shas["valid"],
             len(out["train"]), len(out["valid"])])
        con.execute("insert into export_labels (export_id, label, user_id, user_name) "
                    "select ?, unnest(?), unnest(?), unnest(?)",
                    [export_id, [*label_of.values(), "nil"], [*label_of, None], [u.lower() for u in label_of] + [None]])
        rows_file = folder / "export_examples.jsonl"  # one insert (row by row takes seconds)
        rows_file.write_text("".join(json.dumps({**e, "export_id": export_id}, default=str) + "\n"
                                     for e in out["train"] + out["valid"]))
        con.execute(
            """insert into export_examples (export_id, example_id, split, line, conversation_id, label, channel_id,
                   target_at, responder_user_id, prior_participant_ids, mentioned_user_ids)
               select export_id, example_id, split, line, conversation_id, label, channel_id, target_at,
                      responder_user_id, prior, cast([] as varchar[])
               from read_json(?, format = 'newline_delimited', columns = {'export_id': 'VARCHAR', 'example_id': 'VARCHAR',
                   'split': 'VARCHAR', 'line': 'INTEGER', 'conversation_id': 'VARCHAR', 'label': 'VARCHAR',
                   'channel_id': 'VARCHAR', 'target_at': 'TIMESTAMP', 'responder_user_id': 'VARCHAR',
                   'prior': 'VARCHAR[]'})""",
            [str(rows_file)])
        rows_file.unlink()
    return len(out["train"]), len(out["valid"])


@dataclass(frozen=True)
class Daily:
    paths: Paths
    nil: dict[str, str]
    yesterday: str  # export ids
    today: str
    trained: object  # FinetuneResult of yesterday
    kept: object  # FinetuneResult of today
    evaluated_yesterday: object  # EvalResult
    evaluated_today: object


def _paths(folder: Path) -> Paths:
    return Paths(duckdb=folder / "beep.duckdb", workdir=folder / ".beep")


def _copy(daily: Daily, folder: Path) -> Paths:
    """The daily fixture's folder copied into ``folder``, its recorded paths (artifacts, export files)
    pointed at the copy: a test that changes it leaves the others' fixture as it was."""
    shutil.copytree(daily.paths.duckdb.parent, folder, dirs_exist_ok=True)
    old = str(daily.paths.duckdb.parent)
    paths = _paths(folder)
    with connect(paths.duckdb) as con:
        con.execute("update finetune_jobs set artifact_path = replace(artifact_path, ?, ?)", [old, str(folder)])
        con.execute("update exports set train_path = replace(train_path, ?, ?), valid_path = replace(valid_path, ?, ?)",
                    [old, str(folder)] * 2)
    return paths


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> Daily:
    folder = tmp_path_factory.mktemp("daily")
    paths = _paths(folder)
    messages, nil = synthetic_workspace(100, 1000, seed=5, nil_rate=0.2)
    last = max(m.seconds for m in messages)
    with connect(paths.duckdb):
        pass  # Beep's tables
    _write(paths, [m for m in messages if m.seconds <= last - 4 * 3600])
    _export(paths, "exp-yesterday", nil)
    with pytest.MonkeyPatch.context() as patch:  # states saved every 200 messages (not 10,000): runs resume from them
        patch.setattr("beep.ranker.model.CHECKPOINT_MESSAGES", 200)
        trained = finetune(paths, export_id="exp-yesterday")
    evaluated_yesterday = evaluate(paths, model=trained.job_id)
    _write(paths, messages)
    _export(paths, "exp-today", nil, shift_from=SHIFT_FROM)  # today's labels moved for half the people
    kept = finetune(paths, export_id="exp-today")
    evaluated_today = evaluate(paths, model=kept.job_id)
    return Daily(paths, nil, "exp-yesterday", "exp-today", trained, kept, evaluated_yesterday, evaluated_today)


def test_a_new_day_keeps_the_model_and_records_it_honestly(daily: Daily) -> None:
    trained, kept = daily.trained, daily.kept
    assert trained.kept_from is None and trained.decision == (
        "trained: no earlier ranker model with these settings on an export with these export settings")
    assert kept.kept_from == trained.job_id and kept.job_id != trained.job_id and not kept.reused
    assert kept.fine_tuned_model == trained.fine_tuned_model and kept.artifact_path != trained.artifact_path
    # the same model; only the workspace state live prediction starts from is advanced to today's last message
    from beep.ranker.model import ResponderRanker

    before, after = ResponderRanker.load(trained.artifact_path), ResponderRanker.load(kept.artifact_path)
    assert after.booster.model_to_string() == before.booster.model_to_string() and after.snapshot == before.snapshot
    assert [c[0] for c in after.checkpoint_files] == [c[0] for c in before.checkpoint_files]
    assert len(before.checkpoint_files) >= 3  # one copy on disk: the kept artifact's saved states are links
    assert all(a[1].stat().st_ino == b[1].stat().st_ino for a, b in zip(after.checkpoint_files, before.checkpoint_files))
    with open_duckdb(str(daily.paths.duckdb), read_only=True) as con:
        end = con.execute("select max(epoch(message_at)) from int_conversations").fetchone()[0]
        fresh = before.state_at(con, float(end))  # a replay of today's data from the model's saved states
    assert before.state.now < after.state.now == fresh.now and after.state.user_ids == fresh.user_ids
    assert kept.decision.startswith(f"kept model {trained.fine_tuned_model}: ")
    assert f"retrains past {KEEP_MAX_NEW_SHARE:.0%} or with --retrain" in kept.decision
    job = get_job(daily.paths.duckdb, kept.job_id)
    assert job.status == "succeeded" and job.export_id == daily.today and job.hyperparameters["kept_from"] == trained.job_id
    assert job.result_files[0]["trained_on_export"] == daily.yesterday and 0 < job.result_files[0]["n_new_train"]
    assert job.seconds < trained.seconds  # the decision, not a training
    with open_duckdb(str(daily.paths.duckdb), read_only=True) as con:
        events = con.execute("select message from finetune_events where job_id = ? order by event_id",
                             [kept.job_id]).fetchall()
    assert events[0] == (kept.decision,) and "workspace state advanced to the end of the data" in events[1][0]
    # the same command again finds the kept job
    again = finetune(daily.paths, export_id=daily.today)
    assert again.reused and again.job_id == kept.job_id


def test_evaluation_keeps_unchanged_predictions_and_equals_a_run_from_scratch(daily: Daily) -> None:
    today = daily.evaluated_today
    assert today.reused_from == daily.evaluated_yesterday.eval_run_id
    assert 0 < today.n_reused < today.n
    # some kept predictions were copied, others (a person whose label moved) rebuilt from their stored people
    assert 0 < today.n_relabelled < today.n_reused
    scratch = evaluate(daily.paths, model=daily.kept.job_id, new_run=True)
    assert scratch.eval_run_id != today.eval_run_id and scratch.n_reused == 0 and scratch.n == today.n
    with open_duckdb(str(daily.paths.duckdb), read_only=True) as con:
        def metrics(run: str) -> list[tuple]:
            return con.execute("select model, slice, metric, label, value, support from metrics where eval_run_id = ? "
                               "order by all", [run]).fetchall()

        def predictions(run: str) -> list[tuple]:
            return con.execute("select model, example_id, true_label, predicted_label, top_k::varchar, true_label_rank, "
                               "newcomer, responder_rank, outsider_rank, top_people::varchar, nobody_probability "
                               "from predictions where eval_run_id = ? order by model, example_id", [run]).fetchall()

        def replayed(run: str) -> list[tuple]:
            return con.execute("select * exclude (eval_run_id) from alert_replay_curve where eval_run_id = ? order by all",
                               [run]).fetchall() + con.execute(
                "select * exclude (eval_run_id) from alert_replay_alerts where eval_run_id = ? order by all", [run]).fetchall()

        assert len(metrics(today.eval_run_id)) > 50 and len(replayed(today.eval_run_id)) > 50
        assert metrics(today.eval_run_id) == metrics(scratch.eval_run_id)
        assert predictions(today.eval_run_id) == predictions(scratch.eval_run_id)
        assert replayed(today.eval_run_id) == replayed(scratch.eval_run_id)
    assert today.headline == scratch.headline
    # the alert replay asked the model only at the moments yesterday's run had not ranked
    assert 0 < today.n_moments_kept and scratch.n_moments_kept == 0


def _decide(paths: Paths, export_id: str):
    return keep_decision(paths.duckdb, export_id, lambda other: settings_hash(local_settings(other, "ranker", 0)),
                         _recorded_artifact_ok)


def test_no_model_is_kept_when_it_would_leak_grow_too_much_or_read_changed_messages(daily: Daily, tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    shutil.copy(daily.paths.duckdb, paths.duckdb)
    with connect(paths.duckdb) as con:
        trained_train = [r[0] for r in con.execute("select example_id from export_examples where export_id = ? and "
                                                   "split = 'train' order by target_at", [daily.yesterday]).fetchall()]
        today_valid = {r[0] for r in con.execute("select example_id from export_examples where export_id = ? and "
                                                 "split = 'valid'", [daily.today]).fetchall()}
    # one example the model learned from in this export's validation split: never kept
    _export(paths, "exp-leak", daily.nil, valid_ids=today_valid | {trained_train[-1]})
    leak = _decide(paths, "exp-leak")
    assert leak.kept is None and leak.reason.startswith("1 examples ") and "validation split" in leak.reason
    # a validation split of 2 %: many more new train examples than 5 % of the trained ones
    _export(paths, "exp-grown", daily.nil, valid_fraction=0.02)
    grown = _decide(paths, "exp-grown")
    assert grown.kept is None and grown.n_new > KEEP_MAX_NEW_SHARE * grown.n_trained and "is not kept" in grown.reason
    # an old message edited (a re-exported day): what the model read changed
    with connect(paths.duckdb) as con:
        first_day = min(day_digests(con))
        con.execute("update int_conversations set clean_text = clean_text || ' (edited)' where ts = "
                    "(select min(ts) from int_conversations where strftime(message_at, '%Y-%m-%d') = ?)", [first_day])
    edited = _decide(paths, daily.today)
    assert edited.kept is None and edited.reason.endswith(f"the messages of {first_day} changed since "
                                                          f"{daily.trained.fine_tuned_model} read them")


def test_a_message_changed_after_the_last_train_example_keeps_the_model_and_replays_its_states(
        daily: Daily, tmp_path: Path) -> None:
    """A change on a day after the model's last train example (today's first reply moves yesterday's
    parent into its thread; an edit in a re-exported day) is not in what it learned: the model is kept,
    and its workspace state is replayed from a state saved before that day, so it equals a replay from
    the first message, where the model's own later states would give a stale one."""
    from beep.finetune.keep import record_kept
    from beep.ranker.model import ResponderRanker
    from beep.ranker.stream import replay

    paths = _paths(tmp_path)
    shutil.copy(daily.paths.duckdb, paths.duckdb)
    with connect(paths.duckdb) as con:  # yesterday's model trained here again, with today's messages in the file
        con.execute("delete from finetune_events")
        con.execute("delete from finetune_jobs")
    with pytest.MonkeyPatch.context() as patch:  # states saved every 50 messages: some after the last example
        patch.setattr("beep.ranker.model.CHECKPOINT_MESSAGES", 50)
        trained = finetune(paths, export_id=daily.yesterday)
    origin = ResponderRanker.load(trained.artifact_path)
    yesterday = evaluate(paths, model=trained.job_id, export_id=daily.yesterday, new_run=True)  # before the edit
    with connect(paths.duckdb) as con:
        [(last_train_day,)] = con.execute("select strftime(max(target_at), '%Y-%m-%d') from export_examples "
                                          "where export_id = ? and split = 'train'", [daily.yesterday]).fetchall()
        later = [t for t, _f, _s in origin.checkpoint_files
                 if datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d") > last_train_day]
        assert later, "no state saved on a day after the last train example"
        changed_day = datetime.fromtimestamp(max(later), tz=timezone.utc).strftime("%Y-%m-%d")
        con.execute("update int_conversations set clean_text = 'a different text (edited)' where ts = "
                    "(select min(ts) from int_conversations where strftime(message_at, '%Y-%m-%d') = ?)", [changed_day])
    _export(paths, "exp-edited", daily.nil)  # (today's export, made again after the edit)
    decision = _decide(paths, "exp-edited")
    assert decision.kept is not None and decision.kept.job_id == trained.job_id and decision.changed_day == changed_day
    assert decision.reason.endswith(f"the messages of {changed_day} changed after its last train example "
                                    f"({last_train_day}): its saved workspace states from that day on are replayed again")
    # on the day of its last train example, what it learned changed: trained again
    with connect(paths.duckdb) as con:
        con.execute("update int_conversations set clean_text = clean_text || ' (again)' where ts = "
                    "(select max(ts) from int_conversations where strftime(message_at, '%Y-%m-%d') = ?)", [last_train_day])
    assert _decide(paths, "exp-edited").kept is None
    with connect(paths.duckdb) as con:  # (undone: only the later day changed)
        con.execute("update int_conversations set clean_text = replace(clean_text, ' (again)', '')")
    job = record_kept(paths.duckdb, "job-edited", "exp-edited", "digest", _decide(paths, "exp-edited"), 0.0,
                      tmp_path / "kept" / "model.joblib")
    kept = ResponderRanker.load(job.artifact_path)
    dropped = {t for t, _f, _s in origin.checkpoint_files} - {t for t, _f, _s in kept.checkpoint_files}
    stale_from = datetime.strptime(changed_day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
    assert dropped and min(dropped) >= stale_from > max(t for t, _f, _s in kept.checkpoint_files)
    assert job.result_files[0]["states_replayed_from"] == changed_day
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        end = con.execute("select max(epoch(message_at)) from int_conversations").fetchone()[0]
        fresh = origin.state_at(con, -1.0)  # nothing saved that early: an empty state, then every message
        replay(con, fresh, origin.embedder, (), lambda _q, _c: None, until=float(end))
        stale = origin.state_at(con, float(end))  # from the origin's last saved state, written before the edit
    n = len(fresh.user_ids)
    assert np.allclose(kept.state.profiles[:n], fresh.profiles[:n])
    assert not np.allclose(stale.profiles[:n], fresh.profiles[:n])  # the check can fail
    # its evaluation keeps yesterday's predictions before the changed day and equals one from scratch
    today = evaluate(paths, model=job.job_id, export_id="exp-edited")
    scratch = evaluate(paths, model=job.job_id, export_id="exp-edited", new_run=True)
    assert 0 < today.n_reused < today.n and today.reused_from == yesterday.eval_run_id and scratch.n_reused == 0
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        same = "select * exclude (eval_run_id) from metrics where eval_run_id = ? order by all"
        assert con.execute(same, [today.eval_run_id]).fetchall() == con.execute(same, [scratch.eval_run_id]).fetchall()


def test_retrain_trains_a_new_model_for_the_export(daily: Daily, tmp_path: Path) -> None:
    paths = _copy(daily, tmp_path)
    retrained = finetune(paths, export_id=daily.today, retrain=True)
    assert retrained.kept_from is None and retrained.job_id == daily.kept.job_id
    assert retrained.fine_tuned_model == f"local:{retrained.job_id}" != daily.trained.fine_tuned_model
    assert retrained.decision == "trained: --retrain asked for a new model"


def test_beep_run_says_what_the_day_kept(daily: Daily) -> None:
    from beep.pipeline import evaluate_line, finetune_line

    said = finetune_line(daily.kept, daily.today)
    assert said.startswith(f"incremental finetune: kept model {daily.trained.fine_tuned_model}: ") and "nothing trained" in said
    assert finetune_line(daily.trained, daily.yesterday).startswith(
        f"finetune: trained on export {daily.yesterday} from the base model (no earlier ranker model")
    today = daily.evaluated_today
    said = evaluate_line(today)
    assert said.startswith(f"incremental evaluate: {today.eval_run_id} kept {today.n_reused:,} stored predictions of run "
                           f"{daily.evaluated_yesterday.eval_run_id}")
    assert f"predicted {today.n - today.n_reused:,} of the {today.n:,}" in said
    assert f"rankings at {today.n_moments_kept:,} moments" in said


def test_a_message_changed_after_the_model_read_its_data_moves_the_cutoff(daily: Daily, tmp_path: Path) -> None:
    """A message of the new hours edited after today's run (the model never read it, that run did): the
    predictions before its day are kept, the rest predicted, and the metrics still equal a run from scratch."""
    paths = _copy(daily, tmp_path)
    with connect(paths.duckdb) as con:
        con.execute("update int_conversations set clean_text = clean_text || ' (edited)' where message_at = "
                    "(select max(message_at) from int_conversations)")
        edited_day = con.execute("select strftime(max(message_at), '%Y-%m-%d') from int_conversations").fetchone()[0]
    _export(paths, "exp-edited", daily.nil)
    edited = evaluate(paths, model=daily.kept.job_id, export_id="exp-edited")
    scratch = evaluate(paths, model=daily.kept.job_id, export_id="exp-edited", new_run=True)
    assert 0 < edited.n_reused < edited.n and scratch.n_reused == 0
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        kept_days = con.execute(
            "select distinct strftime(e.target_at, '%Y-%m-%d') from predictions p inner join export_examples e "
            "on e.example_id = p.example_id and e.export_id = 'exp-edited' where p.eval_run_id = ? and p.model = ? "
            "and p.predicted_at < (select started_at from eval_runs where eval_run_id = ?)",
            [edited.eval_run_id, edited.model, edited.eval_run_id]).fetchall()
        same = "select * exclude (eval_run_id) from metrics where eval_run_id = ? order by all"
        assert con.execute(same, [edited.eval_run_id]).fetchall() == con.execute(same, [scratch.eval_run_id]).fetchall()
    assert kept_days and all(day < edited_day for (day,) in kept_days)


def test_prune_keeps_what_the_next_day_reads_and_removes_the_rest(daily: Daily, tmp_path: Path) -> None:
    """`beep prune --keep 1` after the day: yesterday's export stays while today's kept model came from the
    job trained on it; once today retrains, yesterday's files, example rows, predictions and model go, the
    steps that would read them say so, and the rows an analyst compares stay."""
    from beep.evaluate.report import write_report
    from beep.finetune.export_data import ExportRejected, verified_export
    from beep.labels import EvaluationInputError
    from beep.prune import plan, prune

    paths = _copy(daily, tmp_path)
    kept = prune(paths, keep=1)
    assert kept.empty and kept.kept_exports == (daily.today, daily.yesterday)
    assert kept.reasons == {daily.yesterday: f"job {daily.trained.job_id} trained the model job {daily.kept.job_id} kept"}

    retrained = finetune(paths, export_id=daily.today, retrain=True)  # today's job no longer keeps yesterday's model
    yesterday_files = paths.exports_dir / "jsonl" / daily.yesterday
    yesterday_model = Path(get_job(paths.duckdb, daily.trained.job_id).artifact_path).parent
    run = daily.evaluated_yesterday.eval_run_id
    assert yesterday_files.is_dir() and yesterday_model.is_dir()
    with connect(paths.duckdb) as con:
        n_examples, n_predictions = con.execute(
            "select (select count(*) from export_examples where export_id = ?), "
            "(select count(*) from predictions where eval_run_id = ?)", [daily.yesterday, run]).fetchone()
    said = plan(paths, 1)
    assert (said.exports, said.eval_runs, said.jobs) == ((daily.yesterday,), (run,), (daily.trained.job_id,))
    assert (said.n_example_rows, said.n_prediction_rows) == (n_examples, n_predictions) and n_predictions > 0
    assert yesterday_files.is_dir()  # a plan removes nothing

    done = prune(paths, keep=1)
    assert done == said
    assert not yesterday_files.exists() and not yesterday_model.exists()
    assert (paths.exports_dir / "jsonl" / daily.today).is_dir() and Path(retrained.artifact_path).is_file()
    with connect(paths.duckdb) as con:
        assert con.execute("select count(*) from export_examples where export_id = ?", [daily.yesterday]).fetchone()[0] == 0
        assert con.execute("select count(*) from predictions where eval_run_id = ?", [run]).fetchone()[0] == 0
        assert con.execute("select count(*) from export_examples where export_id = ?", [daily.today]).fetchone()[0] > 0
        # what an analyst compares over time stays, marked
        assert con.execute("select count(*) from metrics where eval_run_id = ?", [run]).fetchone()[0] > 0
        assert con.execute("select pruned_at is not null from eval_runs where eval_run_id = ?", [run]).fetchone()[0]
        assert con.execute("select pruned_at is not null from exports where export_id = ?", [daily.yesterday]).fetchone()[0]
    assert "removed" in done.summary() and f"{n_predictions:,} predictions" in done.summary()
    assert prune(paths, keep=1).empty  # nothing left to do

    with pytest.raises(ExportRejected, match="removed by `beep prune`"):
        verified_export(paths, daily.yesterday)
    with pytest.raises(EvaluationInputError, match=f"the predictions of run {run} were removed by `beep prune`"):
        write_report(paths, run)
    with pytest.raises(EvaluationInputError, match=f"the examples of export {daily.yesterday} were removed"):
        evaluate(paths, model=retrained.job_id, export_id=daily.yesterday)


def test_an_anchored_split_keeps_the_baselines_and_the_tune_curve_and_equals_a_run_from_scratch(
        daily: Daily, tmp_path: Path) -> None:
    """Yesterday's export, then today's with yesterday's train split (the time split keeping its boundary,
    beep.export.api._time_boundary): the evaluation keeps the baselines' predictions of unchanged examples
    and the alert replay's tune-period curve, and every table equals a run from scratch."""
    import io

    from rich.console import Console

    paths = _copy(daily, tmp_path)
    messages, nil = synthetic_workspace(100, 1000, seed=5, nil_rate=0.2)
    last = max(m.seconds for m in messages)
    with connect(paths.duckdb) as con:  # the labels of everyone today: the same labels on both days
        people = sorted(r[0] for r in con.execute("select distinct user_id from int_conversations").fetchall())
    _write(paths, [m for m in messages if m.seconds <= last - 4 * 3600])
    _export(paths, "exp-a1", nil, people=people)
    model = daily.trained.job_id
    first = evaluate(paths, model=model, export_id="exp-a1")
    _write(paths, messages)
    with connect(paths.duckdb) as con:
        trained = {r[0] for r in con.execute("select example_id from export_examples where export_id = 'exp-a1' "
                                             "and split = 'train'").fetchall()}
        valid = {r[0] for r in con.execute("select example_id from training_examples").fetchall()} - trained
    _export(paths, "exp-a2", nil, valid_ids=valid, people=people)
    said = io.StringIO()
    today = evaluate(paths, model=model, export_id="exp-a2", console=Console(file=said, width=300))
    out = " ".join(said.getvalue().split())
    assert today.reused_from == first.eval_run_id and 0 < today.n_reused < today.n
    assert f"baselines: kept their predictions of {today.n_reused:,} unchanged examples from run {first.eval_run_id}" in out
    assert f"the tune period's curve kept from run {first.eval_run_id}" in out
    assert today.n_baselines_kept == today.n_reused and today.tune_kept
    from beep.pipeline import evaluate_line

    said_by_run = evaluate_line(today)
    assert f"the baselines' predictions of {today.n_reused:,} examples kept (the same train split)" in said_by_run
    since = today.passes_from
    assert since is not None  # the day the first run's evaluated period ended in
    assert (f"the alert policy's curve kept on the tune period; its passes over the evaluated period went on from "
            f"their states at {since}; metrics, the alert policy's curve on the evaluated period from {since} on "
            "computed again") in said_by_run
    assert f"the evaluated period's passes of {today.model}, " in out
    scratch = evaluate(paths, model=model, export_id="exp-a2", new_run=True, console=Console(file=io.StringIO()))
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        def rows(sql: str, run: str) -> list[tuple]:
            return con.execute(sql, [run]).fetchall()

        for sql in ("select * exclude (eval_run_id) from metrics where eval_run_id = ? order by all",
                    "select model, example_id, true_label, predicted_label, top_k::varchar, true_label_rank, newcomer, "
                    "responder_rank, outsider_rank, top_people::varchar from predictions where eval_run_id = ? order by all",
                    "select * exclude (eval_run_id) from alert_replay_curve where eval_run_id = ? order by all",
                    "select * exclude (eval_run_id) from alert_replay_alerts where eval_run_id = ? order by all"):
            assert rows(sql, today.eval_run_id) == rows(sql, scratch.eval_run_id), sql
        assert len(rows("select 1 from alert_replay_curve where eval_run_id = ? and period = 'tune'", today.eval_run_id)) > 20
        # a run that had not read the messages up to the end of the tune period's outcomes gives no curve
        from beep.evaluate.alert_replay import kept_tune_curve
        from beep.evaluate.store import get_run

        context = get_run(con, first.eval_run_id).context
        key, until = context["alert_tune"], context["message_days"]["until"]
        assert kept_tune_curve(con, first.eval_run_id, key, key, None, until)
        early = datetime.fromtimestamp(key["until"] - 60, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        assert kept_tune_curve(con, first.eval_run_id, key, key, None, early) == {}
    # a train split that moved keeps neither (another boundary: the baselines learn from other examples)
    _export(paths, "exp-a3", nil, people=people)
    said = io.StringIO()
    moved = evaluate(paths, model=model, export_id="exp-a3", console=Console(file=said, width=300))
    out = " ".join(said.getvalue().split())
    assert moved.reused_from is not None and "the tune period's curve kept" not in out and not moved.tune_kept
    assert "; baselines, metrics, the alert policy's curve computed again" in evaluate_line(moved)
    assert "baselines: predicting every example (the train split differs" in out
