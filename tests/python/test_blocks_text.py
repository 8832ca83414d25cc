"""Messages whose ``text`` is empty and whose words are in ``blocks`` (beep.rules.blocks): the text is
rebuilt as Slack markup, by `beep ingest` in its prepared copy (counted ``text_from_blocks``) and by
the Slack app for an event, so neither path excludes them as ``empty_text``."""

from __future__ import annotations

from beep.config import PROJECT_DIR
from beep.rules.blocks import event_text, text_of_blocks
from beep.rules.messages import CleaningRules, MessageRules
from beep.slack.conversations import check_event
from slack_fixtures import ts

RICH = [{
    "type": "rich_text", "block_id": "b1",
    "elements": [
        {"type": "rich_text_section", "elements": [
            {"type": "text", "text": "the deploy of "},
            {"type": "text", "text": "api-v2", "style": {"code": True}},
            {"type": "text", "text": " fails, "},
            {"type": "user", "user_id": "U002"},
            {"type": "text", "text": " can you look? see "},
            {"type": "link", "url": "https://ci.example.com/run/7", "text": "the run"},
            {"type": "text", "text": " "},
            {"type": "emoji", "name": "fire"},
        ]},
        {"type": "rich_text_list", "style": "bullet", "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "rollback done"}]},
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "logs attached"}]},
        ]},
        {"type": "rich_text_quote", "elements": [{"type": "text", "text": "error: timeout"}]},
        {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "kubectl get pods"}]},
    ],
}]


def test_rich_text_is_written_back_as_slack_markup() -> None:
    assert text_of_blocks(RICH) == (
        "the deploy of `api-v2` fails, <@U002> can you look? see <https://ci.example.com/run/7|the run> :fire:\n"
        "• rollback done\n• logs attached\n> error: timeout\n```kubectl get pods```")
    assert text_of_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": "*deploy* finished"}},
                           {"type": "divider"}, {"type": "image", "image_url": "x"}]) == "*deploy* finished"
    for nothing in (None, "x", [], [{"type": "divider"}], [1, "a"], [{"type": "rich_text", "elements": "bad"}]):
        assert text_of_blocks(nothing) == ""
    assert event_text({"text": "said", "blocks": RICH}) == "said"  # a text is never replaced
    assert event_text({"text": "", "blocks": []}) == ""
    assert event_text({"blocks": RICH}).startswith("the deploy of")


def test_the_slack_app_reads_such_an_event_as_the_dataset_reads_the_rebuilt_text() -> None:
    """One rule: the live path's check of the event equals the dataset rules' check of the text that
    `beep ingest` writes into the prepared copy (the build of such a message:
    test_ingest_guards.py::test_an_enterprise_export_s_variants_are_read_as_their_listed_conversations)."""
    rules = MessageRules(CleaningRules.from_project(PROJECT_DIR))
    try:
        names = {"U001": "alice", "U002": "bob"}
        live = check_event(rules, {"type": "message", "user": "U001", "text": "", "blocks": RICH, "ts": ts(500),
                                   "channel": "C001"}, set(), names)
        batch = rules.check(ts=ts(500), subtype=None, user_id="U001", bot_id=None, is_bot=False,
                            text=text_of_blocks(RICH), user_names=names)
        empty = check_event(rules, {"type": "message", "user": "U001", "text": "", "ts": ts(501), "channel": "C001"},
                            set(), names)
    finally:
        rules.close()
    assert live.exclusion_reason is None and live == batch
    assert "the deploy of" in live.clean_text and "rollback done" in live.clean_text and "https" not in live.clean_text
    assert list(live.mentioned_user_ids) == ["U002"]
    assert empty.exclusion_reason == "empty_text"
