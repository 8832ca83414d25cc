"""The alert marts over the rows a real session of the app wrote: precision per model and per person."""

from __future__ import annotations

from beep.db import connect
from beep.dbt_runner import run_dbt
from fake_slack.fixtures import Harness, slack, slack_world  # noqa: F401  (fixtures)


def test_alert_precision_in_production_from_a_session(slack: Harness) -> None:
    slack.start_app()
    db_expert, ui_expert = slack.world.experts["db"][0], slack.world.experts["ui"][0]
    slack.say("U00030", f"how do I fix the postgres index problem? <@{db_expert}>")
    slack.say("U00031", f"the css modal button layout is broken <@{ui_expert}>", channel="C2", advance=10)
    slack.fake.wait_for(lambda: slack.dms_to(db_expert) and slack.dms_to(ui_expert), what="two alerts")
    dm = slack.dms_to(db_expert)[0]
    alert = next(e["value"] for b in dm["blocks"] if b["type"] == "actions" for e in b["elements"])
    body = {"type": "block_actions", "user": {"id": db_expert}, "team": {"id": "T0FAKE"}, "api_app_id": "A0FAKE",
            "container": {"type": "message", "channel_id": dm["channel"], "message_ts": dm["ts"]}, "trigger_id": "t",
            "message": {"ts": dm["ts"], "text": dm["text"], "blocks": dm["blocks"]},
            "actions": [{"action_id": "beep_useful", "value": alert, "type": "button", "action_ts": "9.1"}]}
    slack.fake.wait_ack(slack.fake.push("interactive", body))
    slack.fake.wait_for(lambda: slack.fake.updated, what="the press handled")
    slack.say("U00032", "deploy done, thanks all", channel="C3", advance=3700)  # an hour of messages later
    slack.stop_apps()
    run_dbt(slack.paths, ["run", "--select", "+path:models/marts/alerts"], quiet=True)
    with connect(slack.paths.duckdb) as con:
        outcomes = dict(con.execute("select person_id, outcome from alert_outcomes").fetchall())
        by_model = con.execute("select model, delivery, n_alerts, n_useful, n_ignored, precision "
                               "from alert_precision_by_model").fetchall()
        by_person = dict(con.execute("select person_id, precision from alert_precision_by_person").fetchall())
    assert outcomes == {db_expert: "useful", ui_expert: "ignored"}
    assert by_model == [(slack.world.model, "sent", 2, 1, 1, 0.5)]
    assert by_person == {db_expert: 1.0, ui_expert: 0.0}
