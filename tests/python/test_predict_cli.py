"""`beep predict`: top-k people with probabilities or "nobody", from text/stdin or a channel and time; --json parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from _evaluate_world import SUFFIX, build_world
from beep.commands import predict_cmd
from beep.config import Paths
from beep.db import open_duckdb
from beep.evaluate.dataset import EvaluationInputError
from beep.live.predict import PromptSettings, parse_at, predict


def _app() -> typer.Typer:
    app = typer.Typer()
    predict_cmd.register(app)
    app.command("noop")(lambda: None)
    return app


def _add_conversations(db: Path) -> None:
    """A tiny int_conversations (the dbt model's columns predict reads)."""
    con = open_duckdb(str(db))
    con.execute(
        """create table int_conversations as select * from (values
        ('c1', 'C1', 'eng', '1.0', 1, 'U02', 'the helm deploy of the pod failed', ['U01'], timestamp '2025-03-04 10:00:00'),
        ('c1', 'C1', 'eng', '2.0', 2, 'U03', 'kubernetes says the pod is pending', []::varchar[], timestamp '2025-03-04 10:02:00'),
        ('c1', 'C1', 'eng', '3.0', 3, 'U02', 'later message', []::varchar[], timestamp '2025-03-04 11:00:00')
        ) t(conversation_id, channel_id, channel_name, ts, position, user_id, clean_text, mentioned_user_ids, message_at)"""
    )
    con.close()


def test_predict_text_prints_top_k_people_with_probabilities(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    runner = CliRunner()
    res = runner.invoke(_app(), ["predict", "--db", str(world.db), "--model", world.model, "-k", "3",
                                 "--text", "the postgres index makes the query slow\n\nvacuum did not help"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 3 and "%" in lines[0]
    assert "ada" in lines[0]  # the postgres person


def test_predict_json_from_stdin_parses_and_decodes_with_the_export_mapping(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    res = CliRunner().invoke(_app(), ["predict", "--db", str(world.db), "--model", world.job_id, "--json", "-k", "2"],
                             input="invoice refund billing stripe\n\nbilling refund again")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["model"] == world.model and data["export_id"] == world.export_id
    assert len(data["candidates"]) == 2
    top = data["candidates"][0]
    assert (top["label"], top["user_id"], top["user_name"]) == ("2", "U03", "cyd")
    assert data["nobody_probability"] is not None  # even though nil is not among the 2 people shown
    probs = [c["probability"] for c in data["candidates"]] + [data["nobody_probability"]]
    assert all(0 <= p <= 1 for p in probs) and sum(probs) <= 1.0 + 1e-9
    assert data["alert"] is True
    assert data["conversation"]["prompt"].endswith(SUFFIX) and data["conversation"]["prompt"].count(SUFFIX) == 1


def test_predict_says_nobody_when_nil_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path)
    from beep.predictors import local as predictors

    real = predictors.LocalPredictor.predict

    def nil_first(self, rows, example_ids=None):
        out = real(self, rows, example_ids)
        o = out[0]
        ranked = tuple(sorted(o.ranked, key=lambda x: x[0] != "nil"))
        return [predictors.ModelOutput(o.example_id, ranked, "nil", "nil")]

    monkeypatch.setattr(predictors.LocalPredictor, "predict", nil_first)
    res = CliRunner().invoke(_app(), ["predict", "--db", str(world.db), "--model", world.model, "--text", "hey thanks"])
    assert res.exit_code == 0, res.output
    assert "nobody" in res.output.splitlines()[1]
    data = json.loads(CliRunner().invoke(_app(), ["predict", "--db", str(world.db), "--model", world.model, "--json", "--text", "hey"]).output)
    assert data["alert"] is False and data["nobody_probability"] > 0
    assert all(c["label"] != "nil" for c in data["candidates"])


def test_predict_from_channel_and_time_uses_the_conversation_in_progress(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    _add_conversations(world.db)
    paths = Paths(duckdb=world.db, workdir=tmp_path / ".beep")
    result = predict(paths, model=world.model, channel="#eng", at="2025-03-04T10:05:00Z", k=2)
    conv = result.conversation
    assert conv.source == "channel" and conv.channel_id == "C1" and conv.n_messages == 2
    assert conv.prompt == "the helm deploy of the pod failed\n\nkubernetes says the pod is pending" + SUFFIX
    assert conv.prior_participant_ids == ("U03", "U02") and conv.mentioned_user_ids == ("U01",)
    assert conv.minutes_before_at == 3.0 and not conv.quiet_too_long
    late = predict(paths, model=world.model, channel="C1", at="2025-03-04T10:50:00", k=1).conversation
    assert late.quiet_too_long and late.n_messages == 2
    assert result.candidates[0].user_name == "bob"  # the kubernetes person
    res = CliRunner().invoke(_app(), ["predict", "--db", str(world.db), "--channel", "C1", "--at", "2025-03-04T10:05:00", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["conversation"]["n_messages"] == 2
    with pytest.raises(EvaluationInputError, match=r"no message at or before 2024-01-01 00:00:00 .*"
                                                   r"\(its first message: 2025-03-04 10:00:00: an --at from then on\)"):
        predict(paths, model=world.model, channel="eng", at="2024-01-01")
    with pytest.raises(EvaluationInputError, match="no channel"):
        predict(paths, model=world.model, channel="#nope", at="2025-03-04T10:05:00")


def test_an_unknown_channel_is_refused_naming_the_nearest_channels_first_then_the_busiest(tmp_path: Path) -> None:
    """`beep predict --channel general` on a workspace without #general: exit 2, `no channel 'general'`,
    the names nearest it first (difflib), then the others busiest first."""
    world = build_world(tmp_path)
    with open_duckdb(str(world.db)) as con:  # conversations' messages per channel: random 4, eng 3, general-chat 1, ops 2
        con.execute(
            """create table int_conversations as select * from (values
            ('c1', 'C1', 'eng', 3), ('c2', 'C2', 'random', 4), ('c3', 'C3', 'general-chat', 1), ('c4', 'C4', 'ops', 2)
            ) t(conversation_id, channel_id, channel_name, n), range(n)""")
    res = CliRunner().invoke(_app(), ["predict", "--db", str(world.db), "--model", world.model, "--channel", "general",
                                      "--at", "2025-03-04T10:05:00"])
    said = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 2, res.output
    assert "no channel 'general'" in said
    assert "the channels are #general-chat, #random, #eng, #ops (nearest names first, then busiest first)" in said, said
    with pytest.raises(EvaluationInputError, match=r"the channels are #random, #eng, #ops, #general-chat \(busiest first\)$"):
        predict(Paths(duckdb=world.db, workdir=tmp_path / ".beep"), model=world.model, channel="zzz", at="2025-03-04")


def test_prompt_settings_and_time_parsing() -> None:
    s = PromptSettings(context_messages=5, max_prompt_chars=10, prompt_suffix=SUFFIX, conversation_gap_minutes=10.0,
                       context_excludes_responder=False)
    assert s.prompt(["a" * 8, "bcdef"]) == "aaa\n\nbcdef" + SUFFIX  # the most recent 10 characters
    assert s.prompt(["x" + SUFFIX]).count(SUFFIX) == 1
    assert parse_at("1741082700.000100").year == 2025
    with pytest.raises(EvaluationInputError, match="ISO"):
        parse_at("yesterday")
    res = CliRunner().invoke(_app(), ["predict", "--at", "2025-01-01"])
    assert res.exit_code == 2 and "--channel" in res.output


def test_predict_warns_once_when_trained_on_prompts_without_the_responders_messages(tmp_path: Path) -> None:
    """A dataset built with context_excludes_responder=true: the prediction prompt still holds everyone's
    messages (who answers is unknown), and the user is told once, on stderr, that the model was trained
    on prompts of another form; --json carries it in "warnings" and stays parseable on stdout."""
    from beep.db import connect

    world = build_world(tmp_path)
    _add_conversations(world.db)
    paths = Paths(duckdb=world.db, workdir=tmp_path / ".beep")
    assert predict(paths, model=world.model, channel="C1", at="2025-03-04T10:05:00").warnings == []
    with connect(world.db) as con:
        con.execute("insert into pipeline_steps (step, fingerprint, result, finished_at) values ('build', 'f1', ?, current_timestamp)",
                    ['{"export_path": "x", "n_examples": 1, "dbt_vars": {"context_excludes_responder": true}}'])
    result = predict(paths, model=world.model, channel="C1", at="2025-03-04T10:05:00")
    assert result.conversation.n_messages == 2  # U02's and U03's: nobody's left out
    assert len(result.warnings) == 1 and "context_excludes_responder=true" in result.warnings[0]
    res = CliRunner().invoke(_app(), ["predict", "--db", str(world.db), "--model", world.model, "--text", "helm pod deploy"])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("warning:") == 1 and "trained on prompts of another form" in " ".join(res.stderr.split())
    res = CliRunner().invoke(_app(), ["predict", "--db", str(world.db), "--model", world.model, "--json", "--text", "hey"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["warnings"]) == 1 and res.stderr.count("warning:") == 1


def test_predict_text_warns_about_mentions_that_name_nobody(tmp_path: Path) -> None:
    """`<@U…>` of no known user and `@name` of no user name are said, once, on stderr and in --json's
    warnings; a known @name, an e-mail address and @here are not."""
    world = build_world(tmp_path)
    con = open_duckdb(str(world.db))
    con.execute("create table stg_slack__users as select * from (values ('U01', 'ada', 'ada.l'), ('U02', 'bob', 'bobby'), "
                "('U03', 'cyd', 'cyd')) t(user_id, user_name, handle)")
    con.close()
    text = "@ada and @zed, <@U999> and <@U01>: mail ops@ada.io @here @bobby\n\nping @zed again"
    res = CliRunner().invoke(_app(), ["predict", "--db", str(world.db), "--model", world.model, "--json", "--text", text])
    assert res.exit_code == 0, res.output
    [warning] = [w for w in json.loads(res.stdout)["warnings"] if "name nobody" in w]
    assert warning.startswith("<@U999>, @zed name nobody in the workspace's users.json"), warning
    # a handle typed is a mention of that person (bob's handle bobby), like a display name
    data = json.loads(res.stdout)
    assert "U02" in data["conversation"]["mentioned_user_ids"] and "U01" in data["conversation"]["mentioned_user_ids"]
    plain = CliRunner().invoke(_app(), ["predict", "--db", str(world.db), "--model", world.model, "--text", text])
    assert plain.exit_code == 0 and plain.output.count("name nobody") == 1


def test_the_app_line_follows_serves_alert_mentioned(tmp_path: Path) -> None:
    """A mentioned person is never alerted by default (Slack notifies them); with --alert-mentioned,
    as serve's option, the app line alerts them."""
    world = build_world(tmp_path)
    con = open_duckdb(str(world.db))
    con.execute("create table stg_slack__users as select *, false as is_bot, false as is_deleted from (values "
                "('U01', 'ada', 'ada'), ('U02', 'bob', 'bob'), ('U03', 'cyd', 'cyd')) t(user_id, user_name, handle)")
    con.close()
    args = ["predict", "--db", str(world.db), "--model", world.model, "--json", "--min-probability", "0.0",
            "--text", "@ada the postgres index makes the query slow, vacuum did not help"]
    default = json.loads(CliRunner().invoke(_app(), args).stdout)["app"]
    assert "U01" not in [a["user_id"] for a in default["would_alert"]]
    assert "U01" in [p["user_id"] for p in default["not_candidates"]["notified by Slack"]]
    mentioned = json.loads(CliRunner().invoke(_app(), [*args, "--alert-mentioned"]).stdout)["app"]
    assert "U01" in [a["user_id"] for a in mentioned["would_alert"]]
    assert "notified by Slack" not in mentioned["not_candidates"]
