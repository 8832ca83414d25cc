"""Small hand-written Slack exports for tests: a builder that writes the standard layout."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BASE = datetime(2024, 3, 4, 9, 0, tzinfo=timezone.utc).timestamp()


def ts(minutes: float, micro: int = 0) -> str:
    """A Slack ts string `minutes` after 2024-03-04 09:00 UTC."""
    seconds = int(BASE + minutes * 60)
    return f"{seconds}.{micro:06d}"


def day_of(ts_text: str) -> str:
    return datetime.fromtimestamp(int(ts_text.split(".")[0]), tz=timezone.utc).strftime("%Y-%m-%d")


@dataclass
class ExportBuilder:
    """Collects users, channels and messages, then writes them as a Slack export folder."""

    users: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def user(self, user_id: str, name: str, display: str | None = None, is_bot: bool = False) -> "ExportBuilder":
        self.users.append(
            {"id": user_id, "name": name, "real_name": name.title(), "deleted": False, "is_bot": is_bot,
             "profile": {"display_name": display if display is not None else name, "real_name": name.title()}}
        )
        return self

    def channel(self, channel_id: str, name: str) -> "ExportBuilder":
        self.channels.append({"id": channel_id, "name": name, "created": 1700000000, "is_archived": False,
                              "members": [u["id"] for u in self.users], "topic": {"value": ""}, "purpose": {"value": ""}})
        return self

    def msg(self, channel: str, user: str | None, text: str, at: str, **extra: Any) -> dict[str, Any]:
        m: dict[str, Any] = {"type": "message", "text": text, "ts": at}
        if user is not None:
            m["user"] = user
        m.update(extra)
        self.messages.setdefault(channel, []).append(m)
        return m

    def write(self, root: Path, *, skip: tuple[str, ...] = ()) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        if "users.json" not in skip:
            (root / "users.json").write_text(json.dumps(self.users))
        if "channels.json" not in skip:
            (root / "channels.json").write_text(json.dumps(self.channels))
        for channel, msgs in self.messages.items():
            by_day: dict[str, list[dict[str, Any]]] = {}
            for m in msgs:
                by_day.setdefault(day_of(m["ts"]), []).append(m)
            (root / channel).mkdir(exist_ok=True)
            for day, day_msgs in by_day.items():
                (root / channel / f"{day}.json").write_text(json.dumps(day_msgs))
        return root


def small_team() -> ExportBuilder:
    """Three people, two channels, one thread and two channel conversations."""
    b = ExportBuilder()
    b.user("U001", "alice").user("U002", "bob").user("U003", "carol", display="Carol C").user("B001", "deploybot", is_bot=True)
    b.channel("C001", "general").channel("C002", "infra")
    # general: a conversation of three, then a gap of 30 minutes, then another
    b.msg("general", "U001", "Team, did you enjoy the nachos yesterday?", ts(0))
    b.msg("general", "U002", "Yes, I love Mexican food.", ts(1))
    b.msg("general", "U001", "<@U003> can you look at the k8s deployment? https://example.com/x", ts(2))
    b.msg("general", "U003", "Sure, sending details to carol@example.com :+1:", ts(3))
    b.msg("general", "U002", "standup?", ts(40))
    b.msg("general", "U001", "in 5", ts(41))
    # infra: a thread
    parent = ts(60)
    b.msg("infra", "U002", "Stateful set or deployment for postgres?", parent, thread_ts=parent, reply_count=2)
    b.msg("infra", "U003", "Stateful set, it has persistent volumes.", ts(62), thread_ts=parent)
    b.msg("infra", "U002", "thanks!", ts(63), thread_ts=parent)
    b.msg("infra", None, "deployed v1.2", ts(64), subtype="bot_message", bot_id="B001")
    b.msg("infra", "U001", "", ts(65), subtype="channel_join")
    return b
