"""Pytest fixtures: the fake Slack, a trained model (once per session), and the app started against both."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from beep.config import Paths
from beep.slack.alerts import AlertPolicy
from beep.slack.app import Running as RunningApp
from beep.slack.app import start
from beep.slack.scoring import LiveModel
from fake_slack.server import APP_TOKEN, BOT_TOKEN, FakeSlack, Running, start_fake_slack
from fake_slack.world import World, build_world


_WORLDS: dict[str, World] = {}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    """A fake Slack (Web API and Socket Mode) on 127.0.0.1, for tests that start `beep slack serve` themselves."""
    running = start_fake_slack()
    try:
        yield running.fake
    finally:
        running.stop()


@pytest.fixture(scope="session")
def slack_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A ranker trained on a synthetic 60-person workspace, registered as a fine-tune job: built once
    per test session, however many test modules import this fixture."""
    if "world" not in _WORLDS:
        _WORLDS["world"] = build_world(tmp_path_factory.mktemp("slack-world"))
    return _WORLDS["world"]


@dataclass
class Clock:
    """The app's clock in tests: starts at noon UTC the day after the training data ends."""

    now: float

    def __call__(self) -> float:
        return self.now

    def ts(self, advance: float = 30.0) -> str:
        """A new message ts, ``advance`` seconds later (the clock follows)."""
        self.now += advance
        return f"{self.now:.6f}"


@dataclass
class Harness:
    fake: FakeSlack
    world: World
    paths: Paths
    clock: Clock
    apps: list[RunningApp] = field(default_factory=list)

    def start_app(self, **policy: object) -> RunningApp:
        # the scenarios ask with an @-mention of the expert: alert_notified lets them DM the person
        # Slack notifies too (serve's default skips them: test_slack_app checks that)
        options = {"min_probability": 0.3, "max_alerts_per_hour": 3, "quiet_hours": (22, 8), "dry_run": False,
                   "alert_notified": True, **policy}
        connections = self.fake.connections_opened
        # the product's own Socket Mode timing (ping interval, dead-socket detection): what the tests measure
        app = start(self.paths, model=self.world.model, policy=AlertPolicy(**options), bot_token=BOT_TOKEN,  # type: ignore[arg-type]
                    app_token=APP_TOKEN, base_url=self.fake.api_url, flush_seconds=0.2,
                    clock=self.clock, live_model=LiveModel(self.paths, self.world.model))
        self.apps.append(app)
        self.fake.wait_connected(connections + 1)
        return app

    def stop_app(self, app: RunningApp) -> None:
        """Stop an app; the fake closes the socket first (else the SDK's receive loop holds its
        socket lock for up to its read timeout, ~3 s, before the client can close)."""
        app.handler.client.auto_reconnect_enabled = False
        self.fake.drop()
        app.stop()
        self.apps.remove(app)

    def stop_apps(self) -> None:
        while self.apps:
            self.stop_app(self.apps[-1])

    def say(self, user: str, text: str, *, channel: str | None = None, thread_ts: str | None = None,
            ts: str | None = None, advance: float = 30.0, **extra: object) -> tuple[str, str]:
        """Push a message event; returns (envelope id, ts) once the app acked it."""
        ts = ts or self.clock.ts(advance)
        event = {"channel": channel or self.world.channel, "user": user, "text": text, "ts": ts,
                 "channel_type": "channel", **extra}
        if thread_ts:
            event["thread_ts"] = thread_ts
        handled = sum(app.service.handled for app in self.apps)
        envelope = self.fake.push_event(event)
        self.fake.wait_ack(envelope)
        # handled (the DMs posted) before the clock moves on
        self.fake.wait_for(lambda: sum(app.service.handled for app in self.apps) > handled, what="the message handled")
        return envelope, ts

    def dms_to(self, user: str) -> list[dict]:
        return [p for p in self.fake.posted if p.get("channel") == f"D{user}"]


@pytest.fixture
def slack(slack_world: World, tmp_path: Path) -> Iterator[Harness]:
    """The fake Slack started, a private copy of the world's DuckDB file, and a clock; apps started with
    ``slack.start_app(...)`` are stopped at the end."""
    paths = Paths(duckdb=tmp_path / "beep.duckdb", workdir=slack_world.paths.workdir)
    shutil.copy(slack_world.paths.duckdb, paths.duckdb)
    fake = FakeSlack()
    for user in slack_world.people:
        fake.add_user(user, user.lower())
    fake.channels[slack_world.channel] = {"id": slack_world.channel, "name": "general"}
    running: Running = start_fake_slack(fake)
    model_end = LiveModel(paths, slack_world.model).ranker.state.now  # type: ignore[union-attr]
    day = datetime.fromtimestamp(model_end, tz=timezone.utc).date()
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc).timestamp() + 86400
    harness = Harness(fake, slack_world, paths, Clock(noon))
    try:
        yield harness
    finally:
        harness.stop_apps()
        running.stop()
