"""Messages whose ``text`` is empty and whose words are in ``blocks`` (beep.rules.blocks): the text is
rebuilt as Slack markup, by `beep ingest` in its prepared copy (counted ``text_from_blocks``) and by
the Slack app for an event, so neither path excludes them as ``empty_text``."""

from __future__ import annotations

import json
from pathlib import Path

from beep.build import build
from beep.config import PROJECT_DIR, Paths
from beep.db import open_duckdb
from beep.ingest import ingest
from beep.rules.blocks import event_text, text_of_blocks
from beep.rules.messages import CleaningRules, MessageRules
from beep.slack.conversations import check_event
from slack_fixtures import small_team, ts

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


def test_ingest_rebuilds_the_text_and_the_dataset_keeps_the_message(tmp_path: Path) -> None:
    team = small_team()
    team.msg("general", "U001", "", ts(500), blocks=RICH)
    team.msg("general", "U003", "", ts(501), subtype="file_share", files=[{"id": "F1"}])  # file only: no words
    export = team.write(tmp_path / "export")
    paths = Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")
    result = ingest(paths, export)
    assert result.issue_counts()["text_from_blocks"] == 1
    original = json.loads(next((export / "general").glob("*.json")).read_text())
    assert all(m["text"] == "" for m in original if m.get("blocks"))  # the export itself is not changed
    build(paths, result.export_path, run_tests=True, quiet=True, select="+int_slack__messages_cleaned +message_fate_counts")
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        [(reason, clean, mentioned)] = con.execute(
            "select exclusion_reason, clean_text, mentioned_user_ids from int_slack__messages_cleaned "
            "where ts = ?", [ts(500)]).fetchall()
    assert reason is None and mentioned == ["U002"]
    assert "the deploy of" in clean and "rollback done" in clean and "https" not in clean
    # the Slack app reads the same event the same way (one rule): the same cleaned text
    rules = MessageRules(CleaningRules.from_project(PROJECT_DIR))
    try:
        names = {"U001": "alice", "U002": "bob", "U003": "Carol C"}
        live = check_event(rules, {"type": "message", "user": "U001", "text": "", "blocks": RICH, "ts": ts(500),
                                   "channel": "C001"}, set(), names)
    finally:
        rules.close()
    assert live.exclusion_reason is None and live.clean_text == clean and list(live.mentioned_user_ids) == ["U002"]
