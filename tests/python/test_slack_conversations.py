"""Live conversations follow the dataset's rules (int_conversation_links.sql; its unit tests' cases), and
the alert policy's pieces on their own."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from beep.config import PROJECT_DIR
from beep.rules.messages import CleaningRules, MessageRules
from beep.slack.alerts import (
    AlertPolicy,
    Ledger,
    Person,
    decide,
    in_quiet_hours,
    parse_quiet_hours,
)
from beep.slack.conversations import ConversationTracker, LiveMessage, SplitSettings

T = 1_700_000_000.0


def _msg(seconds: float, user: str, mentions: tuple[str, ...] = (), thread: float | None = None,
         channel: str = "C1") -> LiveMessage:
    ts = f"{T + seconds:.6f}"
    return LiveMessage(channel, ts, f"{T + thread:.6f}" if thread is not None else None, user, "text", mentions, T + seconds)


def _settings(**overrides: object) -> SplitSettings:
    """dbt_project.yml's vars with ``overrides``, as a build with --var would have them."""
    return SplitSettings.from_project(PROJECT_DIR, overrides)


def _split(messages: list[LiveMessage], **settings: object) -> list[str]:
    tracker = ConversationTracker(_settings(**settings))
    roots = [tracker.add(m).conversation_id for m in messages]
    first = {cid: i for i, cid in reversed(list(enumerate(roots)))}
    return [f"#{first[cid]}" for cid in roots]  # each message named by its conversation's first message


def test_reply_split_two_interleaved_conversations_by_mentions_and_addressing() -> None:
    messages = [
        _msg(0, "A"),  # 0: A starts
        _msg(10, "B"),  # 1: B starts another (busy channel: no quiet fallback)
        _msg(20, "C", ("A",)),  # 2: C answers A by mention -> A's conversation
        _msg(30, "D", ("B",)),  # 3: D answers B -> B's
        _msg(40, "A"),  # 4: A was addressed by C (message 2) and wrote 0: the latest of those -> 2's conversation
        _msg(50, "B"),  # 5: B was addressed by D -> B's
    ]
    assert _split(messages, conversation_quiet_messages=0) == ["#0", "#1", "#0", "#1", "#0", "#1"]


def test_reply_split_quiet_channel_fallback_and_the_gap() -> None:
    messages = [_msg(0, "A"), _msg(60, "B"), _msg(60 + 11 * 60, "C"), _msg(60 + 12 * 60, "D")]
    # quiet channel: the previous message links; more than 10 minutes apart: a new conversation
    assert _split(messages) == ["#0", "#0", "#2", "#2"]
    # with the quiet fallback off, nothing links B to A
    assert _split(messages, conversation_quiet_messages=0) == ["#0", "#1", "#2", "#3"]


def test_a_mention_of_someone_who_speaks_only_later_does_not_link() -> None:
    messages = [_msg(0, "A", ("B",)), _msg(10, "C"), _msg(20, "B")]
    # B was addressed by A (message 0): B's message joins A's conversation, C's is its own (busy)
    assert _split(messages, conversation_quiet_messages=0) == ["#0", "#1", "#0"]


def test_gap_split() -> None:
    messages = [_msg(0, "A"), _msg(300, "B"), _msg(300 + 601, "C")]
    assert _split(messages, conversation_split="gap") == ["#0", "#0", "#2"]


def test_a_thread_is_one_conversation_and_takes_its_parent() -> None:
    tracker = ConversationTracker(_settings())
    parent = _msg(0, "A")
    assert tracker.add(parent).conversation_id == f"C1:reply:{parent.ts}"
    reply = _msg(30, "B", thread=0)
    conv = tracker.add(reply)
    assert conv.conversation_id == f"C1:thread:{parent.ts}"
    assert [m.user_id for m in conv.messages] == ["A", "B"] and conv.participants == {"A", "B"}
    # a redelivered message is placed once
    assert len(tracker.add(reply).messages) == 2


@pytest.mark.parametrize(("event", "reason"), [
    ({"ts": "1.0", "user": "U1", "text": "hi"}, None),
    ({"ts": "1.0", "user": "U1", "text": "hi", "subtype": "thread_broadcast"}, None),
    ({"ts": "1.0", "bot_id": "B1", "text": "hi", "subtype": "bot_message"}, "bot"),
    ({"ts": "1.0", "user": "U9", "text": "hi"}, "bot"),  # a user users.info says is a bot
    ({"ts": "1.0", "user": "U1", "subtype": "message_changed", "message": {}}, "edit_event"),
    ({"ts": "1.0", "user": "U1", "text": "joined", "subtype": "channel_join"}, "join_leave"),
    ({"ts": "1.0", "user": "U1", "text": "set the topic", "subtype": "channel_topic"}, "channel_event"),
    ({"ts": "1.0", "user": "U1", "text": "  "}, "empty_text"),
    ({"ts": "1.0", "text": "hi"}, "no_user"),
    # the dataset's channel events (int_slack__messages_cleaned); the live copy once called these other_subtype
    ({"ts": "1.0", "user": "U1", "text": "joined a huddle", "subtype": "huddle_thread"}, "channel_event"),
    ({"ts": "1.0", "user": "U1", "text": "pinned a message", "subtype": "pinned_item"}, "channel_event"),
    ({"ts": "1.0", "user": "U1", "text": "added an app", "subtype": "bot_add"}, "channel_event"),
    ({"ts": "1.0", "user": "U1", "text": "something new", "subtype": "channel_posting_permissions"}, "other_subtype"),
    ({"ts": "1.0", "user": "U1", "text": ":tada:"}, "empty_after_cleaning"),
    ({"user": "U1", "text": "hi"}, "missing_ts"),
])
def test_which_events_are_messages(event: dict, reason: str | None) -> None:
    rules = MessageRules(CleaningRules.from_project(PROJECT_DIR))
    try:
        user = event.get("user")
        checked = rules.check(ts=event.get("ts"), subtype=event.get("subtype"), user_id=user, bot_id=event.get("bot_id"),
                              is_bot=user == "U9", text=event.get("text"))  # U9: a user users.info says is a bot
    finally:
        rules.close()
    assert checked.exclusion_reason == reason
    assert (checked.clean_text is not None) == (reason is None)


def test_quiet_hours_parse_and_wrap_midnight() -> None:
    assert parse_quiet_hours("22-08") == (22, 8) and parse_quiet_hours("off") is None
    with pytest.raises(ValueError, match="22-08"):
        parse_quiet_hours("late")
    berlin = Person("U1", tz="Europe/Berlin")
    at = datetime(2025, 1, 15, 21, 30, tzinfo=timezone.utc).timestamp()  # 22:30 in Berlin (winter)
    assert in_quiet_hours(at, berlin, (22, 8)) and not in_quiet_hours(at, Person("U2", tz="UTC"), (22, 8))
    assert in_quiet_hours(at, Person("U3", tz_offset=3600), (22, 8))  # no zone name: the offset
    assert not in_quiet_hours(at, berlin, (9, 17))


def test_decide_never_the_author_a_participant_or_twice_and_counts_the_hour() -> None:
    people = {u: Person(u, tz="UTC") for u in "ABCD"}
    ranked = [("A", 0.9, "r"), ("B", 0.6, "r"), ("C", 0.5, "r"), ("D", 0.1, "r")]
    ledger = Ledger()
    policy = AlertPolicy(min_probability=0.3, max_alerts_per_hour=1, quiet_hours=None)
    noon = datetime(2025, 1, 15, 12, tzinfo=timezone.utc).timestamp()
    first = decide(ranked, conversation_id="c1", participants={"B"}, author="A", people=people, ledger=ledger,
                   policy=policy, now=noon)
    assert [(d.person_id, d.status) for d in first] == [("C", "sending")]  # A wrote it, B is in it, D is below 0.3
    assert decide(ranked, conversation_id="c1", participants={"B"}, author="A", people=people, ledger=ledger,
                  policy=policy, now=noon + 60) == []  # never twice for one conversation
    second = decide(ranked, conversation_id="c2", participants=set(), author="A", people=people, ledger=ledger,
                    policy=policy, now=noon + 600)
    assert [(d.person_id, d.status, d.suppressed_reason) for d in second] == [
        ("B", "sending", None), ("C", "suppressed", "hourly_limit")]
    # suppressed again for the same reason: no new row; an hour later: sent
    assert decide(ranked, conversation_id="c2", participants=set(), author="A", people=people, ledger=ledger,
                  policy=policy, now=noon + 700) == []
    later = decide(ranked, conversation_id="c2", participants=set(), author="A", people=people, ledger=ledger,
                   policy=policy, now=noon + 3700)
    assert [(d.person_id, d.status) for d in later] == [("C", "sending")]


@pytest.mark.parametrize("same_channel_minutes", [0.0, 30.0])
def test_decide_without_suppressed_rows_sends_the_same_alerts(same_channel_minutes: float) -> None:
    """The alert replay asks decide for what is sent only (with_suppressed=False): over a random
    stream of moments, the alerts sent and their order are those of the app's full decisions."""
    import random

    rng = random.Random(7)
    people = {f"U{i}": Person(f"U{i}", tz="UTC", is_bot=(i == 3)) for i in range(12)}
    policy = AlertPolicy(min_probability=0.2, max_alerts_per_hour=2, quiet_hours=None,
                         same_channel_minutes=same_channel_minutes)
    full, lean = Ledger(), Ledger()
    sent_full, sent_lean, n_suppressed = [], [], 0
    now = datetime(2025, 1, 15, 12, tzinfo=timezone.utc).timestamp()
    for _ in range(600):
        now += rng.uniform(0, 400)
        conv = f"C{rng.randrange(3)}:reply:{rng.randrange(40)}"
        ranked = sorted(((f"U{rng.randrange(13)}", rng.random(), None) for _ in range(6)), key=lambda r: -r[1])
        args = dict(conversation_id=conv, participants={f"U{rng.randrange(12)}"}, author=f"U{rng.randrange(12)}",
                    people=people, policy=policy, now=now, notified=frozenset({f"U{rng.randrange(12)}"}))
        decisions = decide(ranked, ledger=full, **args)
        n_suppressed += sum(d.status == "suppressed" for d in decisions)
        sent_full += [(d.conversation_id, d.person_id, now) for d in decisions if d.status == "sending"]
        lean_decisions = decide(ranked, ledger=lean, with_suppressed=False, **args)
        assert all(d.status == "sending" for d in lean_decisions)
        sent_lean += [(d.conversation_id, d.person_id, now) for d in lean_decisions]
    assert n_suppressed > 50 and len(sent_full) > 100  # the stream exercises the limits
    assert sent_lean == sent_full
