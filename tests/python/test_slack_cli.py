"""`beep slack check` and `beep slack serve` as commands, against the fake Slack on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from beep.cli import app
from fake_slack.fixtures import fake, slack_world  # noqa: F401  (fixtures)
from fake_slack.server import APP_TOKEN, BOT_TOKEN, FakeSlack
from fake_slack.world import World


def _env(fake: FakeSlack, **extra: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "BEEP_SLACK_API_URL": fake.api_url, **extra}


def test_check_passes_with_every_scope(fake: FakeSlack) -> None:
    result = CliRunner().invoke(app, ["slack", "check"], env=_env(fake))
    assert result.exit_code == 0, result.output
    assert "ok: both tokens work" in result.output


def test_check_says_which_model_serve_would_load(fake: FakeSlack, slack_world: World, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["slack", "check", "--db", str(slack_world.paths.duckdb)], env=_env(fake),
                                terminal_width=400)
    assert result.exit_code == 0, result.output
    assert f"model: {slack_world.model} (the latest succeeded fine-tune job" in result.output
    missing = tmp_path / "none.duckdb"
    result = CliRunner().invoke(app, ["slack", "check", "--db", str(missing)], env=_env(fake), terminal_width=400)
    assert result.exit_code == 0 and "model: none yet" in result.output and not missing.exists()


def test_check_names_each_missing_scope_and_a_bad_app_token(fake: FakeSlack) -> None:
    fake.scopes = "channels:history,chat:write"
    result = CliRunner().invoke(app, ["slack", "check"], env=_env(fake, SLACK_APP_TOKEN="xapp-wrong"))
    assert result.exit_code == 1
    for scope in ("groups:history", "im:write", "users:read", "commands", "channels:read"):
        assert f"missing scope {scope}" in result.output
    assert "missing scope chat:write" not in result.output
    assert "SLACK_APP_TOKEN was refused" in result.output and "reinstall" in result.output


def test_tokens_come_from_the_environment_only(fake: FakeSlack) -> None:
    result = CliRunner().invoke(app, ["slack", "check"], env={"SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": ""})
    assert result.exit_code == 2
    assert "SLACK_BOT_TOKEN and SLACK_APP_TOKEN not set" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["slack", "serve", "--quiet-hours", "late"], env=_env(fake))
    assert result.exit_code == 2 and "22-08" in result.output


def test_serve_setup_errors_are_one_line_and_exit_2(fake: FakeSlack, slack_world: World, tmp_path: Path) -> None:
    """A database that is not there (and no lock file left beside it), a bot token or an app token Slack
    refuses: one line each, no traceback."""
    missing = tmp_path / "none.duckdb"
    result = CliRunner().invoke(app, ["slack", "serve", "--db", str(missing), "--min-probability", "0.3"],
                                env=_env(fake), terminal_width=400)
    assert result.exit_code == 2 and "does not exist yet" in result.output, result.output
    assert list(tmp_path.iterdir()) == []
    db = tmp_path / "beep.duckdb"
    shutil.copy(slack_world.paths.duckdb, db)
    for token, said in (({"SLACK_BOT_TOKEN": "xoxb-revoked"}, "Slack refused SLACK_BOT_TOKEN (invalid_auth)"),
                        ({"SLACK_APP_TOKEN": "xapp-revoked"}, "Slack refused SLACK_APP_TOKEN (invalid_auth)")):
        result = CliRunner().invoke(app, ["slack", "serve", "--db", str(db), "--model", slack_world.model,
                                          "--min-probability", "0.3"],
                                    env={**_env(fake, **token), "BEEP_WORKDIR": str(tmp_path / ".beep")},
                                    terminal_width=400)
        assert result.exit_code == 2, result.output
        assert said in " ".join(result.output.split()) and "Traceback" not in result.output


def test_serve_runs_against_the_fake_and_stops_cleanly(fake: FakeSlack, slack_world: World, tmp_path: Path) -> None:
    """The real command in its own process: connects over Socket Mode, handles a message in dry-run,
    writes the decision, stops on SIGTERM with exit 0; no token in its output or the DuckDB file."""
    db = tmp_path / "beep.duckdb"
    shutil.copy(slack_world.paths.duckdb, db)
    for user in slack_world.people:
        fake.add_user(user, user.lower())
    env = {**os.environ, **_env(fake), "BEEP_WORKDIR": str(slack_world.paths.workdir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "beep.cli", "slack", "serve", "--db", str(db), "--model", slack_world.model, "--dry-run",
         "--quiet-hours", "off", "--alert-mentioned"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        fake.wait_connected(1, timeout=40)
        expert = slack_world.experts["db"][0]
        envelope = fake.push_event({"channel": slack_world.channel, "user": "U00030", "ts": "1710590430.000100",
                                    "text": f"how do I fix the postgres index problem? <@{expert}>"})
        fake.wait_ack(envelope, timeout=10)
        # the file stays readable by others while the app runs (short writes): poll it from here
        fake.wait_for(lambda: proc.poll() is not None or _has_rows(db), timeout=15, what="the decision in DuckDB")
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "dry run" in output and "stopped" in output
    assert BOT_TOKEN not in output and APP_TOKEN not in output
    assert fake.posted == []
    from beep.db import open_duckdb

    con = open_duckdb(str(db), read_only=True)
    try:
        rows = con.execute("select person_id, status from alerts").fetchall()
    finally:
        con.close()
    assert (expert, "dry_run") in rows
    assert BOT_TOKEN.encode() not in db.read_bytes() and APP_TOKEN.encode() not in db.read_bytes()


def _has_rows(db: Path) -> bool:
    import duckdb
    from beep.db import open_duckdb

    try:
        con = open_duckdb(str(db), read_only=True)
    except duckdb.IOException:  # the app is writing right now
        return False
    try:
        return bool(con.execute("select count(*) from alerts").fetchone()[0])
    finally:
        con.close()


def test_the_manifest_asks_for_exactly_the_scopes_events_and_features_the_app_uses() -> None:
    import yaml

    from beep.config import PROJECT_DIR
    from beep.slack.check import REQUIRED_SCOPES

    manifest = yaml.safe_load((PROJECT_DIR / "slack" / "manifest.yaml").read_text())
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(REQUIRED_SCOPES)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {"message.channels", "message.groups"}
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/beep"]
    assert "url" not in manifest["features"]["slash_commands"][0]  # Socket Mode: no request URL
