"""`beep slack serve` end to end against the fake Slack on 127.0.0.1 (Web API + Socket Mode)."""

from __future__ import annotations

import time

from beep.slack.store import alert_rows
from fake_slack.fixtures import Harness, slack, slack_world  # noqa: F401  (fixtures)

ASKER = "U00030"


def _expert(slack: Harness) -> str:
    return next(u for u in slack.world.experts["db"] if u != ASKER)


def _question(expert: str) -> str:
    return f"how do I fix the postgres index problem? <@{expert}> any idea"


def test_a_question_alerts_the_expert_once_with_link_reason_and_buttons(slack: Harness) -> None:
    slack.start_app()
    expert = _expert(slack)
    _, ts = slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the alert DM")
    dm = slack.dms_to(expert)[0]
    text = str(dm["text"])
    assert f"/archives/{slack.world.channel}/p{ts.replace('.', '')}" in text  # chat.getPermalink's link
    assert "#general" in text and "Why: mentioned in the conversation" in text
    buttons = [e for b in dm["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["useful", "not for me"]
    slack.fake.wait_for(lambda: any(r["status"] == "sent" for r in _rows(slack)), what="the sent row")
    # the conversation goes on: the expert is never alerted about it twice, the asker never at all
    slack.say(ASKER, "it is the orders table, about 2 million rows", advance=20)
    slack.say(ASKER, "@here anyone?", advance=20)
    time.sleep(0.3)
    assert len(slack.dms_to(expert)) == 1
    assert not slack.dms_to(ASKER)
    rows = _rows(slack)
    sent = [r for r in rows if r["person_id"] == expert]
    assert len(sent) == 1 and sent[0]["status"] == "sent" and sent[0]["probability"] >= 0.3
    assert sent[0]["model"] == slack.world.model and sent[0]["permalink"] and sent[0]["dm_ts"]
    assert sent[0]["conversation_id"] == f"{slack.world.channel}:reply:{ts}"
    assert all(r["person_id"] != ASKER for r in rows)


def test_chatter_alerts_nobody(slack: Harness) -> None:
    slack.start_app()
    slack.say(ASKER, "thanks!")
    slack.say("U00031", "lol ok", advance=15)
    time.sleep(0.3)
    assert slack.fake.posted == []
    assert _rows(slack) == []


def test_people_already_in_the_conversation_bots_and_deactivated_people_are_never_alerted(slack: Harness) -> None:
    expert = _expert(slack)
    others = [u for u in slack.world.experts["db"] if u not in (expert, ASKER)]
    slack.fake.add_user(others[0], "gone", deleted=True)
    slack.fake.add_user(others[1], "robot", is_bot=True)
    slack.start_app()
    _, root = slack.say(expert, "postgres index rebuild tonight")  # the expert is in the conversation
    slack.say(ASKER, f"<@{expert}> how do I fix the postgres index problem?", advance=20)
    slack.say(ASKER, f"<@{others[0]}> <@{others[1]}> the postgres index query is slow", advance=20)
    # the third message's decision is logged as two suppressed rows (a fixed sleep raced a busy machine)
    slack.fake.wait_for(lambda: {others[0], others[1]} <= {r["person_id"] for r in _rows_after_flush(slack)},
                        what="the suppressed rows")
    assert not slack.dms_to(expert) and not slack.dms_to(others[0]) and not slack.dms_to(others[1])
    by_person = {r["person_id"]: r for r in _rows(slack)}
    assert expert not in by_person and ASKER not in by_person
    assert by_person[others[0]]["suppressed_reason"] == "deactivated"
    assert by_person[others[1]]["suppressed_reason"] == "bot"
    # a bot's message is no message of the conversation (the dataset's rule)
    slack.say(others[1], "beep boop", bot_id="B1", subtype="bot_message", advance=5)


def test_dry_run_decides_and_logs_but_sends_nothing(slack: Harness) -> None:
    slack.start_app(dry_run=True)
    expert = _expert(slack)
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: any(r["person_id"] == expert for r in _rows_after_flush(slack)), what="the dry-run row")
    assert slack.fake.calls_of("chat.postMessage") == [] and slack.fake.calls_of("conversations.open") == []
    row = next(r for r in _rows(slack) if r["person_id"] == expert)
    assert row["status"] == "dry_run" and row["sent_at"] is None


def test_hourly_limit_per_person(slack: Harness) -> None:
    slack.start_app(max_alerts_per_hour=1)
    expert = _expert(slack)
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the first alert")
    # another conversation (another channel), 20 minutes later: over the limit of 1 an hour
    slack.say("U00032", _question(expert), channel="C2", advance=1200)
    # an hour after the first: allowed again
    slack.say("U00033", _question(expert), channel="C3", advance=2500)
    slack.fake.wait_for(lambda: len(slack.dms_to(expert)) == 2, what="the alert after the hour")

    def rows() -> list[dict]:
        return sorted((r for r in _rows_after_flush(slack) if r["person_id"] == expert), key=lambda r: r["decided_at"])

    slack.fake.wait_for(lambda: [r["status"] for r in rows()] == ["sent", "suppressed", "sent"], what="the rows")
    got = rows()
    assert got[1]["suppressed_reason"] == "hourly_limit" and got[1]["channel_id"] == "C2"


def test_quiet_hours_in_the_persons_own_time_zone(slack: Harness) -> None:
    expert = _expert(slack)
    slack.fake.add_user(expert, "night owl", tz="Pacific/Kiritimati")  # UTC+14: noon UTC is 02:00 there
    slack.start_app(quiet_hours=(22, 8))
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: _rows_after_flush(slack), what="a decision")
    assert not slack.dms_to(expert)
    assert [(r["status"], r["suppressed_reason"]) for r in _rows(slack) if r["person_id"] == expert] == \
        [("suppressed", "quiet_hours")]


def test_opt_out_and_back_in_with_the_slash_command(slack: Harness) -> None:
    slack.start_app()
    expert = _expert(slack)
    envelope = slack.fake.push("slash_commands", {"command": "/beep", "text": "off", "user_id": expert,
                                                  "channel_id": "D1", "team_id": "T0FAKE", "trigger_id": "t1"})
    ack = slack.fake.wait_ack(envelope)
    assert "not alert you" in ack["payload"]["text"]
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: _rows_after_flush(slack), what="a decision")
    assert not slack.dms_to(expert)
    assert next(r for r in _rows(slack) if r["person_id"] == expert)["suppressed_reason"] == "opted_out"
    envelope = slack.fake.push("slash_commands", {"command": "/beep", "text": "on", "user_id": expert,
                                                  "channel_id": "D1", "team_id": "T0FAKE", "trigger_id": "t2"})
    assert "again" in slack.fake.wait_ack(envelope)["payload"]["text"]
    slack.say("U00032", f"<@{expert}> postgres vacuum question", channel="C2", advance=60)
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the alert after /beep on")


def test_a_429_from_chat_post_message_is_retried_after_retry_after(slack: Harness) -> None:
    slack.fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    slack.start_app()
    expert = _expert(slack)
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), timeout=8, what="the DM after the 429")
    calls = slack.fake.calls_of("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 0.95  # Retry-After: 1 honoured
    assert len(slack.dms_to(expert)) == 1


def test_a_dropped_socket_reconnects_and_a_redelivered_event_alerts_no_one_twice(slack: Harness) -> None:
    slack.start_app()
    expert = _expert(slack)
    envelope, _ = slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the alert")
    slack.fake.drop()
    slack.fake.wait_connected(2, timeout=10)  # the client opened a new connection by itself
    slack.fake.push_again(envelope)  # Slack delivers at least once: the same event again
    slack.fake.wait_ack(envelope)
    other = next(u for u in slack.world.experts["ui"] if u not in (ASKER, expert))
    slack.say("U00032", f"<@{other}> the css modal button layout is broken", channel="C2", advance=60)
    slack.fake.wait_for(lambda: slack.dms_to(other), what="an alert over the new socket")
    assert len(slack.dms_to(expert)) == 1


def test_a_restart_mid_conversation_keeps_conversations_alerts_and_opt_outs(slack: Harness) -> None:
    app = slack.start_app()
    expert = _expert(slack)
    _, root = slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the alert")
    slack.say("U00031", "which postgres version?", advance=20)
    quiet = next(u for u in slack.world.experts["ui"] if u not in (ASKER, expert, "U00031"))
    envelope = slack.fake.push("slash_commands", {"command": "/beep", "text": "off", "user_id": quiet,
                                                  "channel_id": "D1", "team_id": "T0FAKE", "trigger_id": "t1"})
    slack.fake.wait_ack(envelope)
    slack.stop_app(app)
    again = slack.start_app()
    conv = again.service.tracker.conversation_of(slack.world.channel, root)
    assert conv == f"{slack.world.channel}:reply:{root}"  # the conversation came back from DuckDB
    slack.say(ASKER, f"<@U00031> 14, and <@{expert}> <@{quiet}> the postgres index query is slow", advance=20)
    slack.fake.wait_for(lambda: _rows_after_flush(slack) and any(r["person_id"] == quiet for r in _rows(slack)),
                        what="the decision after the restart")
    assert again.service.tracker.conversation_of(slack.world.channel, root) == conv
    assert len(slack.dms_to(expert)) == 1  # already alerted about this conversation before the restart
    assert next(r for r in _rows(slack) if r["person_id"] == quiet)["suppressed_reason"] == "opted_out"
    assert all(r["conversation_id"] == conv for r in _rows(slack))
    assert all(r["person_id"] != "U00031" for r in _rows(slack))  # a participant from before the restart


def test_button_presses_are_feedback_rows(slack: Harness) -> None:
    slack.start_app()
    expert = _expert(slack)
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the alert")
    dm = slack.dms_to(expert)[0]
    alert = next(e["value"] for b in dm["blocks"] if b["type"] == "actions" for e in b["elements"])

    def press(action: str, value: str, user: str, action_ts: str) -> None:
        body = {"type": "block_actions", "user": {"id": user}, "team": {"id": "T0FAKE"}, "api_app_id": "A0FAKE",
                "container": {"type": "message", "channel_id": dm["channel"], "message_ts": dm["ts"]},
                "channel": {"id": dm["channel"]}, "trigger_id": "t",
                "message": {"ts": dm["ts"], "text": dm["text"], "blocks": dm["blocks"]},
                "actions": [{"action_id": action, "block_id": "beep_feedback", "value": value, "type": "button",
                             "action_ts": action_ts}]}
        slack.fake.wait_ack(slack.fake.push("interactive", body))

    press("beep_useful", alert, expert, "1.1")
    press("beep_useful", alert, expert, "1.1")  # the same press redelivered: one row
    press("beep_not_for_me", alert, "U00031", "1.2")  # not their alert: ignored
    press("beep_not_for_me", "al-unknown", expert, "1.3")
    slack.fake.wait_for(lambda: slack.fake.updated, what="the DM updated after the press")
    assert "noted as useful" in str(slack.fake.updated[0]["blocks"])
    from beep.db import connect

    with connect(slack.paths.duckdb) as con:
        rows = con.execute("select alert_id, person_id, feedback from alert_feedback").fetchall()
    assert rows == [(alert, expert, "useful")]


def _rows_after_flush(slack: Harness) -> list[dict]:
    for app in slack.apps:
        app.service.store.flush()
    return _rows(slack)


def _rows(slack: Harness) -> list[dict]:
    return alert_rows(slack.paths.duckdb)


def test_by_default_a_person_slack_notifies_gets_no_dm(slack: Harness) -> None:
    """An @-mentioned person is notified by Slack itself: serve's default policy (alert_notified off,
    the rule the alert replay of `beep evaluate` measures) sends them nothing and writes no row."""
    slack.start_app(alert_notified=False)
    expert = _expert(slack)
    slack.say(ASKER, _question(expert))
    time.sleep(1.0)
    assert not slack.dms_to(expert)
    assert all(r["person_id"] != expert for r in _rows(slack))
