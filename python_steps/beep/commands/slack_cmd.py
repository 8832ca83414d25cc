"""`beep slack serve | check | pull`: Beep as a Slack app (Socket Mode), its token check, and a backfill."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from beep.commands.options import DbOption, bad_option, make_console, print_error
from beep.config import Paths, default_paths

if TYPE_CHECKING:
    from rich.console import Console

slack_app = typer.Typer(
    name="slack",
    help="Beep as a Slack app: live alerts over Socket Mode (tokens from SLACK_BOT_TOKEN and SLACK_APP_TOKEN; "
         "setup in docs/slack-app.md).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(slack_app, name="slack")


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("beep.slack").setLevel(logging.DEBUG if verbose else logging.INFO)
    # the SDK's own logs stay at warnings (its debug logs would print request bodies), and so does the
    # Socket Mode client's, which logs through beep.slack.socket: at debug it prints every raw frame, the
    # messages' uncleaned text included
    for name in ("slack_sdk",):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("beep.slack.socket").setLevel(logging.INFO)


def _operating_point(paths: Paths, model: str | None, console: Console) -> float:
    """The served model's operating point from its latest evaluation with an alert replay, else 0.3
    (beep.commands.operating_point), said on the console."""
    from beep.commands.operating_point import served_threshold

    found = served_threshold(paths, model)
    if found.busy:
        console.print(f"--min-probability {found.value:g}: {found.source}", highlight=False, markup=False)
    elif found.eval_run_id is None and found.source:
        console.print(f"--min-probability {found.value:g} ({found.source})", highlight=False)
    elif found.source:
        console.print(f"--min-probability {found.value:g}: {found.source}", highlight=False)
    return found.value


@slack_app.command("serve")
def serve_command(
    db: DbOption = None,
    model: Annotated[
        Optional[str],
        typer.Option("--model", help="A fine-tune job id or fine-tuned model name, as for `beep predict` "
                     "(default: the latest succeeded job; the local ranker from `beep finetune` is the one the "
                     "evaluation measured best).", show_default=False),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Workspace-wide dry run: decide and log every alert "
                                          "(table alerts, status dry_run), send nothing.")] = False,
    min_probability: Annotated[Optional[float], typer.Option(
        "--min-probability", min=0.0, max=1.0,
        help="Alert a person only when the model gives them at least this probability (0-1). Default: the "
             "operating point `beep evaluate` chose for the model (its alert replay: the lowest threshold whose "
             "precision reached `beep evaluate --target-precision`), else 0.3.", show_default=False)] = None,
    max_alerts_per_hour: Annotated[int, typer.Option("--max-alerts-per-hour", min=1,
                                                     help="At most this many alerts a person in any hour.")] = 3,
    quiet_hours: Annotated[str, typer.Option("--quiet-hours", help="No alerts in these hours of each person's own "
                                             "Slack time zone: START-END (e.g. 22-08), or off.")] = "22-08",
    same_channel_minutes: Annotated[float, typer.Option(
        "--same-channel-minutes", min=0.0,
        help="At most one alert a person per channel in this many minutes (0: off). Off by default: the live "
             "path places messages in conversations by the dataset's rules, and off alerts more of the people "
             "who join at equal precision (docs/evaluation.md).")] = 0.0,
    alert_mentioned: Annotated[bool, typer.Option(
        "--alert-mentioned/--no-alert-mentioned",
        help="Also DM people Slack notifies by itself (@-mentioned in the conversation's last messages). Off: "
             "such a DM adds nothing to Slack's own notification.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Debug logs of the app's own steps (every "
                                          "decision is logged without it too); never a message's text.")] = False,
) -> None:
    """Run the Slack app: read the channels it is in, alert the people who should see a conversation.

    Only people not in the conversation yet, above --min-probability, never the author, a bot or a
    deactivated person; a DM with a link, a one-line reason and "useful" / "not for me" buttons;
    at most --max-alerts-per-hour a person, never twice for one conversation, none in --quiet-hours;
    `/beep off` and `/beep on` for each person. Every decision and button press lands in DuckDB
    (tables alerts, alert_feedback), written in short transactions; every event is kept in a durable
    inbox (.beep/slack/) before it is acked. Tokens: SLACK_BOT_TOKEN (xoxb-) and SLACK_APP_TOKEN (xapp-,
    connections:write); `beep slack check` tests them. One app per DuckDB file. Stop with Ctrl-C or
    SIGTERM (exit 0); exit 2 when the setup is wrong (tokens, no model, the file served already)."""
    from beep.labels import EvaluationInputError
    from beep.slack.alerts import AlertPolicy, parse_quiet_hours
    from beep.slack.app import AlreadyServing, MissingToken, SlackRefused, start, tokens

    console = make_console(stderr=True)
    try:
        hours = parse_quiet_hours(quiet_hours)
    except ValueError as err:
        bad_option(console, err)
    try:
        bot_token, app_token = tokens()
    except MissingToken as err:
        print_error(console, err)
        raise typer.Exit(2) from err
    _logging(verbose)
    paths = default_paths(db)
    if min_probability is None:
        min_probability = _operating_point(paths, model, console)
    else:
        console.print(f"--min-probability {min_probability:g} (given)", highlight=False)
    policy = AlertPolicy(min_probability=min_probability, max_alerts_per_hour=max_alerts_per_hour,
                         quiet_hours=hours, dry_run=dry_run, same_channel_minutes=same_channel_minutes,
                         alert_notified=alert_mentioned)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        running = start(paths, model=model, policy=policy, bot_token=bot_token, app_token=app_token)
    except (EvaluationInputError, FileNotFoundError, AlreadyServing, SlackRefused) as err:
        print_error(console, err)
        raise typer.Exit(2) from err
    console.print(f"beep slack: serving {paths.duckdb} with {running.service.model.name}"
                  f"{' (dry run: nothing is sent)' if dry_run else ''}: alerts at p >= {min_probability:g}, at most "
                  f"{max_alerts_per_hour} a person an hour, quiet hours "
                  f"{f'{hours[0]:02d}-{hours[1]:02d} in each person' + chr(39) + 's time zone' if hours else 'off'}"
                  f"{f', one a person per channel in {same_channel_minutes:g} min' if same_channel_minutes else ''}"
                  f"; Ctrl-C stops", highlight=False, markup=False)
    stale = running.service.model.data_age_days(running.service.clock())
    if stale is not None and stale > 30:
        console.print(f"warning: the model's data ends {stale:.0f} days before now: its live scores read people's "
                      "activity as of then, so few reach the threshold; retrain on a fresh export (`beep slack "
                      "pull`, then `beep run`)", highlight=False, markup=False)
    stop.wait()
    running.stop()
    stats = running.stats()
    malformed = stats["malformed"]
    unwritten = stats.get("unwritten", 0)
    decisions = (f"{unwritten} alert(s) not sent: their decisions could not be written to {paths.duckdb} before the "
                 "stop (another process held it)" if unwritten else "every decision is in table alerts")
    console.print(f"beep slack: stopped; {decisions}; events handled: "
                  f"{sum(stats['handled'].values())}, skipped: {sum(stats['skipped'].values())}, malformed (acked, "
                  f"skipped): {sum(malformed.values())}"
                  f"{' (' + ', '.join(f'{k} {v}' for k, v in sorted(malformed.items())) + ')' if malformed else ''}"
                  f", errors: {sum(stats['error'].values())}; left to handle at the next start: {stats['backlog']}",
                  highlight=False)


def _model_to_serve(paths: Paths) -> str:
    """Which model `beep slack serve` would load from this DuckDB file by default (its latest succeeded job)."""
    from beep.db import connect
    from beep.labels import EvaluationInputError
    from beep.predictors.models import latest_model

    if not paths.duckdb.exists():
        return f"model: none yet ({paths.duckdb} does not exist: `beep run` builds the dataset and trains one)"
    try:
        with connect(paths.duckdb, read_only=True) as con:
            return f"model: {latest_model(con)} (the latest succeeded fine-tune job in {paths.duckdb}: serve's default)"
    except EvaluationInputError as err:
        return f"model: none yet in {paths.duckdb} ({err})"


@slack_app.command("check")
def check_command(db: DbOption = None) -> None:
    """Check SLACK_BOT_TOKEN (auth.test) and SLACK_APP_TOKEN (apps.connections.open), and name every
    scope the app needs that the bot token lacks; also say which model `beep slack serve --db` would
    load. Exit 1 when a token or scope is missing."""
    from beep.slack.app import MissingToken, tokens, web_client
    from beep.slack.check import REQUIRED_SCOPES, check

    console = make_console(stderr=True)
    try:
        bot_token, app_token = tokens()
    except MissingToken as err:
        print_error(console, err)
        raise typer.Exit(2) from err
    result = check(web_client(bot_token), app_token)
    out = make_console()
    if result.team:
        out.print(f"bot token: ok ({result.bot_user} in {result.team})", highlight=False)
        out.print(f"scopes: {', '.join(result.scopes) or '(none)'}", highlight=False)
    for scope, why in result.missing.items():
        out.print(f"[red]missing scope[/red] {scope}: needed to {why}", highlight=False)
    if result.missing:
        out.print("add them under OAuth & Permissions > Bot Token Scopes (or recreate the app from "
                  "slack/manifest.yaml), then reinstall the app to the workspace", highlight=False)
    for problem in result.problems:
        out.print(f"[red]error:[/red] {problem}", highlight=False)
    out.print(_model_to_serve(default_paths(db)), highlight=False, markup=False)
    if result.ok:
        out.print(f"ok: both tokens work and the bot has all {len(REQUIRED_SCOPES)} scopes", highlight=False)
        return
    raise typer.Exit(1)


def _epoch(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise typer.BadParameter(f"{option} {value!r} is not a date like 2025-01-31 (or 2025-01-31T12:00)") from err
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


@slack_app.command("pull")
def pull_command(
    folder: Annotated[Path, typer.Argument(help="Where to write the export folder (created; files in it are replaced).")],
    channel: Annotated[
        Optional[list[str]],
        typer.Option("--channel", help="A channel name or id to pull (repeat for several; default: every channel the bot is in).",
                     show_default=False),
    ] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Only messages from this UTC date/time on (ISO).",
                                                 show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Only messages before this UTC date/time (ISO).",
                                                 show_default=False)] = None,
    private: Annotated[bool, typer.Option("--private", help="Private channels the bot is in too (needs the groups:read "
                                          "scope, not in slack/manifest.yaml).")] = False,
    min_interval: Annotated[float, typer.Option("--min-interval", min=0.0,
                                                help="Seconds between two calls of one API method (Slack's tiers: "
                                                     "conversations.history is Tier 3, about 50 a minute; 429s are "
                                                     "retried after Retry-After anyway).")] = 1.2,
) -> None:
    """Backfill: read the history of the channels the bot is in (conversations.history and
    conversations.replies, paginated, paced) and write it in a Slack export's folder layout
    (users.json, channels.json, <channel>/<YYYY-MM-DD>.json), for `beep ingest FOLDER` / `beep run FOLDER`.
    Needs SLACK_BOT_TOKEN only."""
    import os

    from slack_sdk.errors import SlackApiError

    from beep.slack.app import web_client
    from beep.slack.pull import pull

    console = make_console(stderr=True)
    token = os.environ.get("SLACK_BOT_TOKEN", "").strip()
    if not token.startswith("xoxb-"):
        print_error(console, "SLACK_BOT_TOKEN is not set to a bot token (xoxb-…): see docs/slack-app.md")
        raise typer.Exit(2)
    try:
        result = pull(web_client(token), folder, channels=channel or None, oldest=_epoch(since, "--since"),
                      latest=_epoch(until, "--until"), min_interval=min_interval, private=private,
                      say=lambda m: console.print(m, highlight=False))
    except ValueError as err:
        print_error(console, err)
        raise typer.Exit(2) from err
    except SlackApiError as err:
        print_error(console, f"Slack refused {err.response.get('error')}: run `beep slack check` for the scopes")
        raise typer.Exit(1) from err
    make_console().print(f"wrote {result.folder}: {result.n_users} people, {result.n_channels} channels, "
                         f"{result.n_messages} messages in {result.n_day_files} day files ({result.n_calls} API calls); "
                         f"next: beep ingest {result.folder}", highlight=False)
