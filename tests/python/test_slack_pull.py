"""`beep slack pull`: the history through the Web API (paginated, paced, 429s retried) written as an
export folder that `beep ingest` accepts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from beep.cli import app
from beep.config import Paths
from beep.ingest import ingest
from beep.slack.app import web_client
from beep.slack.pull import pull
from fake_slack.server import BOT_TOKEN, FakeSlack, start_fake_slack

DAY1 = 1_735_689_600.0  # 2025-01-01 00:00 UTC


def _ts(seconds: float) -> str:
    return f"{DAY1 + seconds:.6f}"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    fake.add_user("U1", "ann")
    fake.add_user("U2", "bob")
    fake.channels["C1"] = {"id": "C1", "name": "general", "is_member": True, "is_private": False}
    fake.channels["C2"] = {"id": "C2", "name": "random", "is_member": False, "is_private": False}
    parent = _ts(3600)
    fake.history["C1"] = [
        {"type": "message", "user": "U1", "text": "first", "ts": _ts(60)},
        {"type": "message", "user": "U1", "text": "who knows <@U2>?", "ts": parent, "thread_ts": parent,
         "reply_count": 2},
        {"type": "message", "user": "U2", "text": "me", "ts": _ts(3700), "thread_ts": parent},
        {"type": "message", "user": "U2", "text": "next morning", "ts": _ts(86400 + 100), "thread_ts": parent},
        {"type": "message", "user": "U2", "text": "day two", "ts": _ts(86400 + 200)},
        {"type": "message", "user": "U1", "text": "later", "ts": _ts(86400 + 300)},
    ]
    running = start_fake_slack(fake)
    try:
        yield fake
    finally:
        running.stop()


def test_pull_writes_an_export_folder_ingest_accepts(fake: FakeSlack, tmp_path: Path) -> None:
    fake.rate_limit("conversations.history", times=1, retry_after=1)
    folder = tmp_path / "export"
    result = pull(web_client(BOT_TOKEN, base_url=fake.api_url), folder, page_size=2, min_interval=0.0)
    assert result.n_channels == 1 and result.n_messages == 6 and result.per_channel == {"general": 6}
    assert sorted(p.name for p in folder.iterdir()) == ["channels.json", "general", "users.json"]
    day1 = json.loads((folder / "general" / "2025-01-01.json").read_text())
    day2 = json.loads((folder / "general" / "2025-01-02.json").read_text())
    assert [m["text"] for m in day1] == ["first", "who knows <@U2>?", "me"]  # oldest first, replies by their ts
    assert [m["text"] for m in day2] == ["next morning", "day two", "later"]
    assert [c["id"] for c in json.loads((folder / "channels.json").read_text())] == ["C1"]  # only where the bot is
    history = fake.calls_of("conversations.history")
    assert history[0].status == 429 and history[1].at - history[0].at >= 0.95  # Retry-After honoured
    assert len([c for c in history if c.status == 200]) == 2  # 3 channel messages, 2 a page
    assert len(fake.calls_of("conversations.replies")) == 2  # the thread's 3 messages, 2 a page
    checked = ingest(Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep"), folder)
    assert checked.n_messages == 6


def test_pull_command_refuses_a_channel_the_bot_is_not_in(fake: FakeSlack, tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "BEEP_SLACK_API_URL": fake.api_url}
    result = CliRunner().invoke(app, ["slack", "pull", str(tmp_path / "x"), "--channel", "random",
                                      "--min-interval", "0"], env=env)
    assert result.exit_code == 2 and "/invite @beep" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["slack", "pull", str(tmp_path / "y"), "--min-interval", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert "6 messages in 2 day files" in result.output and "beep ingest" in result.output
