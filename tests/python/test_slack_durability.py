"""What the Slack app must never do: lose an event it acked, sit on a dead socket, choke on a malformed
event, leave a delivered DM uncounted after a crash, or DM one person twice about one conversation.

Each test here failed on the app as it was before the durable inbox (an in-memory queue after Bolt's
ack, the SDK's 10 s pings, DM outcomes only in the 0.5 s buffer, one alert per live conversation)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beep.slack.alerts import Decision, alert_id
from beep.slack.dm import alert_message
from beep.slack.store import AlertContext, SlackStore, alert_rows
from fake_slack.fixtures import Harness, fake, slack, slack_world  # noqa: F401  (fixtures)
from fake_slack.server import APP_TOKEN, BOT_TOKEN, FakeSlack
from fake_slack.world import World

ASKER = "U00030"


def _expert(slack: Harness) -> str:
    return next(u for u in slack.world.experts["db"] if u != ASKER)


def _question(expert: str) -> str:
    return f"how do I fix the postgres index problem? <@{expert}> any idea"


def _rows(slack: Harness) -> list[dict]:
    for app in slack.apps:
        app.service.store.flush()
    return alert_rows(slack.paths.duckdb)


# -- 3. a socket dropped without a close frame -------------------------------------------------------

def test_a_socket_dropped_without_a_close_frame_is_replaced_within_10_seconds(slack: Harness) -> None:
    """The fake keeps the TCP connection open but answers nothing (no close frame, no reset, no pong):
    the app must notice by itself and open a new socket; an event sent meanwhile arrives on it."""
    slack.start_app()
    expert = _expert(slack)
    slack.say(ASKER, "morning all")
    opened = slack.fake.connections_opened
    slack.fake.blackhole()
    dropped = time.monotonic()
    envelope = slack.fake.push_event({"channel": slack.world.channel, "user": ASKER, "text": _question(expert),
                                      "ts": slack.clock.ts(), "channel_type": "channel"})
    slack.fake.wait_ack(envelope, timeout=60)
    recovered = time.monotonic() - dropped
    print(f"\nsilent socket drop: events flow again after {recovered:.1f} s")
    assert slack.fake.connections_opened > opened
    assert recovered < 10, f"{recovered:.1f} s without events after a silent drop"
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the alert over the new socket")


# -- 2. slow Slack calls never hold intake or the next alert ------------------------------------------

def test_a_429_on_one_dm_holds_neither_intake_nor_the_next_alert(slack: Harness) -> None:
    slack.fake.rate_limit("chat.postMessage", times=1, retry_after=3)
    slack.start_app()
    expert = _expert(slack)
    other = next(u for u in slack.world.experts["ui"] if u not in (ASKER, expert))
    slack.fake.wait_ack(slack.fake.push_event({"channel": slack.world.channel, "user": ASKER, "ts": slack.clock.ts(),
                                               "text": _question(expert)}))
    slack.fake.wait_for(lambda: slack.fake.calls_of("chat.postMessage"), what="the first post (429)")
    limited = time.monotonic()
    latencies = []
    for i in range(20):
        start = time.monotonic()
        envelope = slack.fake.push_event({"channel": "C2", "user": "U00032", "ts": slack.clock.ts(5),
                                          "text": f"<@{other}> the css modal button layout is broken ({i})"})
        slack.fake.wait_ack(envelope)
        latencies.append(time.monotonic() - start)
    slack.fake.wait_for(lambda: slack.dms_to(other), timeout=10, what="the second alert")
    second = time.monotonic() - limited
    assert max(latencies) < 0.5, f"an ack took {max(latencies):.2f} s while a DM waited on a 429"
    assert second < 2.5, f"the next alert waited {second:.1f} s behind another person's 429"
    assert not slack.dms_to(expert), "the 429's Retry-After (3 s) should still be running"
    slack.fake.wait_for(lambda: slack.dms_to(expert), timeout=10, what="the DM after the 429")
    assert len(slack.dms_to(expert)) == 1 and len(slack.dms_to(other)) == 1


# -- 7. malformed events ------------------------------------------------------------------------------

def test_malformed_events_are_acked_skipped_and_counted_without_a_traceback(
        slack: Harness, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)
    app = slack.start_app()
    c = slack.world.channel
    bad_events = [
        ("bad_text", {"channel": c, "user": ASKER, "text": 12345, "ts": slack.clock.ts()}),
        ("bad_text", {"channel": c, "user": ASKER, "text": ["a", "list"], "ts": slack.clock.ts()}),
        ("bad_ts", {"channel": c, "user": ASKER, "text": "hello", "ts": "yesterday"}),
        ("bad_ts", {"channel": c, "user": ASKER, "text": "hello", "ts": ["1.0"]}),
        ("bad_ts", {"channel": c, "user": ASKER, "text": "hello"}),
        ("bad_user", {"channel": c, "user": {"id": ASKER}, "text": "hello", "ts": slack.clock.ts()}),
        ("bad_channel", {"user": ASKER, "text": "hello", "ts": slack.clock.ts()}),
        ("bad_thread_ts", {"channel": c, "user": ASKER, "text": "hi", "ts": slack.clock.ts(), "thread_ts": "soon"}),
    ]
    envelopes = [slack.fake.push_event(event) for _, event in bad_events]
    raw = [
        ("no_payload", {"envelope_id": "env-no-payload", "type": "events_api", "accepts_response_payload": False}),
        ("no_payload", {"envelope_id": "env-list-payload", "type": "interactive", "payload": ["x"]}),
        ("unknown_type", {"envelope_id": "env-unknown", "type": "brand_new_kind", "payload": {"x": 1}}),
        ("no_event", {"envelope_id": "env-no-event", "type": "events_api", "payload": {"type": "event_callback"}}),
        ("no_event", {"envelope_id": "env-event-str", "type": "events_api", "payload": {"event": "message"}}),
    ]
    for _, body in raw:
        envelopes.append(slack.fake.push_envelope(body))  # type: ignore[arg-type]
    for envelope in envelopes:
        slack.fake.wait_ack(envelope)  # every one acked: Slack stops redelivering it
    # the app goes on: a good message after them is handled and alerts
    expert = _expert(slack)
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the alert after the malformed events")
    expected: dict[str, int] = {}
    for reason, _ in bad_events + raw:
        expected[reason] = expected.get(reason, 0) + 1
    slack.fake.wait_for(lambda: app.stats()["malformed"] == expected, what="the malformed counts")
    assert app.stats()["malformed"] == expected
    assert not [r for r in caplog.records if r.exc_info], "a malformed event logged a traceback"
    assert "Traceback" not in capfd.readouterr().err
    assert sum("malformed" in r.getMessage() for r in caplog.records) >= len(expected)
    # the counts outlive the process: they are in the inbox file
    slack.stop_app(app)
    again = slack.start_app()
    assert again.stats()["malformed"] == expected


# -- 6. a DM whose outcome a crash left unknown -----------------------------------------------------------

def test_a_dm_delivered_just_before_a_crash_counts_as_sent_after_the_restart(slack: Harness) -> None:
    app = slack.start_app()
    expert = _expert(slack)
    # what kill -9 right after chat.postMessage answered leaves in DuckDB: the decision (status sending),
    # never its outcome (the 0.5 s buffer dies with the process)
    app.service.store.update_sent = lambda *a, **k: None  # type: ignore[method-assign]
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the alert")
    slack.fake.wait_for(lambda: [r["status"] for r in _rows(slack)] == ["sending"], what="the sending row")
    slack.stop_app(app)
    slack.start_app()
    row = next(r for r in _rows(slack) if r["person_id"] == expert)
    assert row["status"] == "sent" and row["dm_ts"] == slack.dms_to(expert)[0]["ts"]
    assert row["dm_channel_id"] == f"D{expert}" and row["sent_at"] is not None
    slack.say(ASKER, "it is the orders table, still broken", advance=20)
    time.sleep(0.3)
    assert len(slack.dms_to(expert)) == 1  # reconciled, never sent twice


@pytest.mark.parametrize("im_history", [False, True], ids=["manifest-scopes", "with-im-history"])
def test_sending_rows_are_reconciled_from_slack_on_start(slack: Harness, im_history: bool) -> None:
    """A crash while chat.postMessage was in flight: Slack may have the DM (its answer never came back)
    or not. On start the app asks Slack (the DM's history with im:history, else the DM's latest message
    from conversations.open): a delivered DM becomes sent, one proven missing is posted now (it was
    decided minutes ago), and without proof either way it becomes unknown; none is ever posted twice."""
    if im_history:
        slack.fake.scopes += ",im:history"
    delivered, missing, unsure = _expert(slack), *[u for u in slack.world.experts["ui"] if u != ASKER][:2]
    store = SlackStore(slack.paths.duckdb)
    c = slack.world.channel
    now = slack.clock.now
    # a thread: its later messages land in this conversation though the app never saw its first one here
    conv = f"{c}:thread:{now:.6f}"
    decisions = [Decision(alert_id(conv, p), conv, p, 0.8, "r", "sending") for p in (delivered, missing, unsure)]
    store.write_decisions(decisions, AlertContext(c, f"{now:.6f}", ASKER, slack.world.model), now)
    text, blocks = alert_message(alert_id=decisions[0].alert_id, permalink="https://x", channel_name="general",
                                 channel_id=c, reason="r", probability=0.8, model=slack.world.model)
    slack.fake.posted.append({"channel": f"D{delivered}", "text": text, "blocks": blocks, "ts": f"{time.time():.6f}"})
    # the person wrote in the DM after the decision: its latest message is theirs, not the alert
    slack.fake.posted.append({"channel": f"D{unsure}", "user": unsure, "text": "hi beep", "ts": f"{time.time():.6f}"})
    slack.start_app()
    slack.fake.wait_for(lambda: all(r["status"] != "sending" for r in _rows(slack)), what="the reconciliation")
    by_person = {r["person_id"]: r for r in _rows(slack)}
    assert by_person[delivered]["status"] == "sent"
    assert by_person[delivered]["dm_ts"] == slack.fake.posted[0]["ts"]
    # its DM channel is empty: never delivered, and decided moments ago: posted now, once
    slack.fake.wait_for(lambda: {r["person_id"]: r for r in _rows(slack)}[missing]["status"] == "sent",
                        what="the missing DM posted")
    assert len(slack.dms_to(missing)) == 1
    if im_history:  # the whole DM history since the decision: the alert is known not to be there
        slack.fake.wait_for(lambda: len(slack.dms_to(unsure)) == 2, what="the DM proven missing")
        assert {r["person_id"]: r for r in _rows(slack)}[unsure]["status"] in ("sending", "sent")
    else:  # only the latest message of the DM: no evidence either way, so no second risk
        assert by_person[unsure]["status"] == "unknown" and len(slack.dms_to(unsure)) == 1
    assert len(slack.dms_to(delivered)) == 1
    # a second message in the conversation: none of them is alerted again
    posts = len(slack.fake.calls_of("chat.postMessage"))
    slack.say(ASKER, f"<@{delivered}> <@{missing}> <@{unsure}> still broken", ts=f"{now + 20:.6f}",
              thread_ts=f"{now:.6f}")
    time.sleep(0.3)
    assert len(slack.fake.calls_of("chat.postMessage")) == posts


# -- 8. one real conversation, one DM -------------------------------------------------------------------

def test_with_same_channel_minutes_a_conversation_that_pauses_past_the_gap_gives_a_person_one_dm(
        slack: Harness) -> None:
    # the rule is opt-in (--same-channel-minutes 60; off by default: test_alert_replay's
    # test_two_conversations_of_one_channel_alert_a_person_twice_unless_same_channel_minutes)
    app = slack.start_app(same_channel_minutes=60)
    expert = _expert(slack)
    _, first = slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the first alert")
    # 11 minutes later (over conversation_gap_minutes) the same person asks again: the live path starts
    # a new conversation; the person already has a DM about this one
    _, second = slack.say(ASKER, f"still stuck with the postgres index, <@{expert}> any idea?", advance=11 * 60)
    tracker = app.service.tracker
    assert tracker.conversation_of(slack.world.channel, first) != tracker.conversation_of(slack.world.channel, second)
    time.sleep(0.3)
    assert len(slack.dms_to(expert)) == 1
    rows = [r for r in _rows(slack) if r["person_id"] == expert]
    assert [(r["status"], r["suppressed_reason"]) for r in rows] == [("sent", None), ("suppressed", "alerted_in_channel")]
    # another channel is another conversation: alerted
    slack.say("U00032", _question(expert), channel="C2", advance=60)
    slack.fake.wait_for(lambda: len(slack.dms_to(expert)) == 2, what="the alert about another channel")
    # and after the window (the hour asked for) the channel can alert them again
    slack.say(ASKER, _question(expert), advance=3700)
    slack.fake.wait_for(lambda: len(slack.dms_to(expert)) == 3, what="the alert an hour later")


# -- 2. a burst of acked events, then kill -9 ------------------------------------------------------------

def _serve(fake: FakeSlack, world: World, db: Path) -> subprocess.Popen:
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "BEEP_SLACK_API_URL": fake.api_url,
           "BEEP_WORKDIR": str(world.paths.workdir)}
    return subprocess.Popen([sys.executable, "-m", "beep.cli", "slack", "serve", "--db", str(db), "--model", world.model,
                             "--quiet-hours", "off", "--max-alerts-per-hour", "50",
                             "--alert-mentioned"],  # the questions @-mention their expert
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _query(db: Path, sql: str) -> list[tuple] | None:
    import duckdb
    from beep.db import open_duckdb

    try:
        con = open_duckdb(str(db), read_only=True)
    except duckdb.IOException:  # the app is writing right now
        return None
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_burst_of_acked_events_survives_kill_9(fake: FakeSlack, slack_world: World, tmp_path: Path) -> None:
    """61 events (59 storable messages, a bot's and a join), all acked, then kill -9 0.1 s later: after
    a restart every one of the 59 is stored, every alert decided, no DM twice."""
    db = tmp_path / "beep.duckdb"
    shutil.copy(slack_world.paths.duckdb, db)
    for user in slack_world.people:
        fake.add_user(user, user.lower())
    for channel in ("C1", "C2", "C3"):
        fake.channels[channel] = {"id": channel, "name": channel.lower()}
    proc = _serve(fake, slack_world, db)
    restarted: subprocess.Popen | None = None
    try:
        fake.wait_connected(1, timeout=60)
        base = time.time() - 3600
        people = [u for u in slack_world.people if u != ASKER]
        experts = [u for u in slack_world.experts["db"] if u != ASKER]
        events, storable = [], []
        for i in range(59):
            ts = f"{base + i:.6f}"
            channel = ("C1", "C2", "C3")[i % 3]
            text = _question(experts[(i // 10) % len(experts)]) if i % 10 == 0 else f"status update {i} on the deploy"
            events.append({"channel": channel, "user": people[i % 17], "text": text, "ts": ts})
            storable.append((channel, ts))
        events.insert(20, {"channel": "C1", "bot_id": "B1", "subtype": "bot_message", "text": "beep", "ts": f"{base + 20.5:.6f}"})
        events.insert(40, {"channel": "C2", "user": people[0], "subtype": "channel_join", "text": "joined",
                           "ts": f"{base + 40.5:.6f}"})
        started = time.monotonic()
        envelopes = [fake.push_event(e) for e in events]
        for envelope in envelopes:
            fake.wait_ack(envelope, timeout=10)
        acked = time.monotonic() - started
        time.sleep(0.1)
        proc.kill()  # SIGKILL: no flush, no goodbye
        proc.wait(timeout=10)
        stored_at_kill = len(_query(db, "select 1 from slack_messages") or [])
        print(f"\nburst: {len(events)} events acked in {acked * 1000:.0f} ms; {stored_at_kill} of {len(storable)} "
              "storable messages in DuckDB at the kill")
        restarted = _serve(fake, slack_world, db)
        fake.wait_connected(2, timeout=60)

        def done() -> bool:
            got = _query(db, "select channel_id, ts from slack_messages")
            sending = _query(db, "select count(*) from alerts where status = 'sending'")
            return got is not None and len(got) >= len(storable) and sending is not None and sending[0][0] == 0

        fake.wait_for(lambda: restarted.poll() is not None or done(), timeout=90, what="every acked event stored")
        restarted.send_signal(signal.SIGTERM)
        output, _ = restarted.communicate(timeout=30)
        assert restarted.returncode == 0, output
    finally:
        for p in (proc, restarted):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    stored = {(c, t) for c, t in _query(db, "select channel_id, ts from slack_messages") or []}
    lost = set(storable) - stored
    print(f"lost after the restart: {len(lost)}")
    assert not lost, f"{len(lost)} acked message(s) lost: {sorted(lost)[:5]}"
    alerts = _query(db, "select alert_id, person_id, conversation_id, status from alerts") or []
    sent = [a for a in alerts if a[3] == "sent"]
    assert sent, "the burst's questions alerted nobody"
    posted_ids = [e["value"] for p in fake.posted for b in p["blocks"] if b["type"] == "actions"
                  for e in b["elements"][:1]]
    assert len(posted_ids) == len(set(posted_ids)), "a DM was posted twice"
    # every alert decided before the kill was sent once (or, without proof either way, never sent again)
    assert set(a[0] for a in sent) <= set(posted_ids) <= set(a[0] for a in alerts if a[3] in ("sent", "unknown"))
    assert all(a[3] in ("sent", "suppressed", "unknown") for a in alerts), alerts


# -- one app per DuckDB file; a locked file; Slack's 503s ---------------------------------------------

def test_a_second_app_on_the_same_duckdb_file_is_refused_until_the_first_stops(slack: Harness) -> None:
    """Two apps on one file would each decide and send every alert (the ledger is per process)."""
    from beep.slack.app import AlreadyServing

    first = slack.start_app()
    with pytest.raises(AlreadyServing, match=rf"another `beep slack serve` serves .*pid {os.getpid()}"):
        slack.start_app()
    slack.stop_app(first)
    slack.start_app()  # the lock went with the first app
    expert = _expert(slack)
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: slack.dms_to(expert), what="the alert")
    time.sleep(0.3)
    assert len(slack.dms_to(expert)) == 1


def test_an_alert_waits_for_a_duckdb_file_another_process_holds_and_is_sent_once_it_is_free(
        slack: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An analyst's session holding the file past a write attempt (1.5 s here, 60 s before) delays the DM;
    it used to drop it for good (the decision was never written, so never sent)."""
    slack.start_app()
    expert = _expert(slack)
    held = tmp_path / "held"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "open(sys.argv[2], 'w').write('x'); time.sleep(float(sys.argv[3])); con.close()",
         str(slack.paths.duckdb), str(held), "5"])
    try:
        deadline = time.monotonic() + 20
        while not held.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder never got the lock"
            time.sleep(0.05)
        with caplog.at_level(logging.WARNING, logger="beep.slack"):
            slack.say(ASKER, _question(expert))
            time.sleep(2.5)  # past one write attempt
            assert not slack.dms_to(expert), "no DM before its decision is in DuckDB"
            slack.fake.wait_for(lambda: slack.dms_to(expert), timeout=20, what="the DM once the file is free")
        assert any("waiting for" in r.getMessage() and "their DMs go out once it is free" in r.getMessage()
                   for r in caplog.records)
    finally:
        holder.kill()
        holder.wait()
    slack.fake.wait_for(lambda: [r["status"] for r in _rows(slack) if r["person_id"] == expert] == ["sent"],
                        timeout=10, what="one sent row")
    assert slack.apps[0].service.unwritten == 0
    assert len(slack.dms_to(expert)) == 1


def test_a_503_from_chat_post_message_is_retried_and_logged(slack: Harness, caplog: pytest.LogCaptureFixture) -> None:
    slack.fake.fail("chat.postMessage", times=1, status=503)
    slack.start_app()
    expert = _expert(slack)
    with caplog.at_level(logging.WARNING, logger="beep.slack"):
        slack.say(ASKER, _question(expert))
        slack.fake.wait_for(lambda: slack.dms_to(expert), timeout=10, what="the DM after the 503")
    assert [c.status for c in slack.fake.calls_of("chat.postMessage")] == [503, 200]
    assert any("503" in r.getMessage() and "chat.postMessage" in r.getMessage() for r in caplog.records)
    slack.fake.wait_for(lambda: any(r["status"] == "sent" for r in _rows(slack) if r["person_id"] == expert),
                        what="the sent row")


def test_a_500_is_not_retried_as_slack_may_have_posted_the_dm(slack: Harness) -> None:
    slack.fake.fail("chat.postMessage", times=1, status=500)
    slack.start_app()
    expert = _expert(slack)
    slack.say(ASKER, _question(expert))
    slack.fake.wait_for(lambda: any(r["status"] == "failed" for r in _rows(slack) if r["person_id"] == expert),
                        timeout=10, what="the failed row")
    assert [c.status for c in slack.fake.calls_of("chat.postMessage")] == [500]


def test_a_bot_token_slack_refuses_is_one_line_and_frees_the_file(slack: Harness) -> None:
    from beep.slack.alerts import AlertPolicy
    from beep.slack.app import SlackRefused, start

    with pytest.raises(SlackRefused, match=r"Slack refused SLACK_BOT_TOKEN \(invalid_auth\)"):
        start(slack.paths, model=slack.world.model, policy=AlertPolicy(), bot_token="xoxb-revoked",
              app_token=APP_TOKEN, base_url=slack.fake.api_url, clock=slack.clock)
    with pytest.raises(SlackRefused, match=r"Slack refused SLACK_APP_TOKEN \(invalid_auth\)"):
        start(slack.paths, model=slack.world.model, policy=AlertPolicy(), bot_token=BOT_TOKEN,
              app_token="xapp-revoked", base_url=slack.fake.api_url, clock=slack.clock)
    slack.start_app()  # neither kept the serve lock


def test_verbose_logging_keeps_the_socket_frames_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Socket Mode client logs every raw frame (uncleaned message text) at debug through beep.slack.socket."""
    from beep.commands.slack_cmd import _logging

    names = ("beep.slack", "beep.slack.socket", "slack_sdk")
    before = {name: logging.getLogger(name).level for name in names}
    try:
        _logging(verbose=True)
        assert logging.getLogger("beep.slack").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("beep.slack.socket").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("slack_sdk").isEnabledFor(logging.INFO)
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


def test_at_debug_each_message_says_whom_it_ranked_best_even_when_nobody_is_alerted(
        slack: Harness, caplog: pytest.LogCaptureFixture) -> None:
    slack.start_app(min_probability=0.99)
    with caplog.at_level(logging.DEBUG, logger="beep.slack"):
        _, ts = slack.say(ASKER, "how do I fix the postgres index problem?")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"message {ts} in ")]
    assert len(lines) == 1 and "(threshold 0.99)" in lines[0] and "postgres" not in lines[0]
    assert slack.fake.posted == []
