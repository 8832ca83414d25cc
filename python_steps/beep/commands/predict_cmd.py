"""`beep predict`: the top-k people to alert about a conversation in progress, or nobody."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from beep.commands.options import DEFAULT_TIMEOUT_SECONDS, BaseUrlOption, DbOption, Provider, bad_option, make_console, print_error
from beep.config import default_paths


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)


def predict_command(
    db: DbOption = None,
    model: Annotated[
        Optional[str],
        typer.Option("--model", help="A fine-tune job id or fine-tuned model name (default: the latest succeeded job).", show_default=False),
    ] = None,
    text: Annotated[
        Optional[str],
        typer.Option("--text", help="The conversation so far: messages oldest first, separated by blank lines; like a training prompt, the last context_messages (5) count. @name of a known user and <@U123> are mentions. Without --text and --at, read from stdin.", show_default=False),
    ] = None,
    channel: Annotated[
        Optional[str],
        typer.Option("--channel", help="A channel id or name. With --at: take the conversation in progress there from the DuckDB data; with text: tell the model the channel.", show_default=False),
    ] = None,
    at: Annotated[
        Optional[str],
        typer.Option("--at", help="With --channel: the moment to look at, an ISO time (UTC unless an offset is given) or a Slack ts. "
                     "The ranker ranks with the workspace as of then, as beep evaluate does (after the data's end: as of the end, with a warning).",
                     show_default=False),
    ] = None,
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, max=20, help="How many people to list.")] = 3,
    provider: Annotated[
        Optional[Provider],
        typer.Option("--provider", help="Override the job's provider (default: the job's).", show_default=False),
    ] = None,
    export: Annotated[
        Optional[str],
        typer.Option("--export", help="The export whose label mapping decodes the answer (default: the model's own; needed for a model no job knows).", show_default=False),
    ] = None,
    base_url: BaseUrlOption = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="OpenAI path: seconds before a request times out (then it is retried).")] = DEFAULT_TIMEOUT_SECONDS,
    exclude_participants: Annotated[
        bool,
        typer.Option("--exclude-participants", help="List only people an alert could go to, as `beep slack serve` "
                     "decides: not yet in the conversation (known with --channel/--at) and not @-mentioned in its last "
                     "messages (Slack notifies them itself)."),
    ] = False,
    min_probability: Annotated[
        Optional[float],
        typer.Option("--min-probability", min=0.0, max=1.0, help="List only people at least this likely to answer "
                     "(0-1); when nobody is, say nobody needs to be alerted. Also the threshold of the last line "
                     "(whom the Slack app would alert), as `beep slack serve --min-probability` takes it (default there: "
                     "the model's operating point).", show_default=False),
    ] = None,
    alert_mentioned: Annotated[bool, typer.Option(
        "--alert-mentioned/--no-alert-mentioned",
        help="For the last line (whom the Slack app would alert): as `beep slack serve --alert-mentioned`, people "
             "Slack notifies by itself (@-mentioned in the conversation's last messages) are alerted too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prediction as JSON (for machines, e.g. a Slack bot); its \"app\" says whom `beep slack serve` would alert.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print each person's label and Slack user id.")] = False,
) -> None:
    """Who to alert about a conversation in progress: the top-k people with probabilities, or nobody.

    The conversation is text (--text or stdin: messages oldest first, separated by blank lines) or
    the one in progress in --channel at --at, taken from the DuckDB data. The model decodes with its
    own export's label mapping. "nobody" is printed when its best answer is nil. The last line says
    whom `beep slack serve` would alert: its own policy at the model's operating point (or
    --min-probability), before its once-per-conversation and hourly limits."""
    from beep.labels import EvaluationInputError
    from beep.live.predict import predict
    from beep.predictors.base import PredictorOptions  # not evaluate's options: they import scikit-learn's metrics

    console = make_console(stderr=True)
    if at and not channel:
        bad_option(console, "--at needs --channel (which channel's conversation to look at)")
    if at and text is not None:
        bad_option(console, "--at takes the conversation in progress from the DuckDB data, --text gives one: use one "
                            "of them (--text with --channel tells the model the channel)")
    if text is None and not at:
        if sys.stdin is None or sys.stdin.isatty():
            console.print("[red]error:[/red] give the conversation with --text, on stdin, or with --channel and --at")
            raise typer.Exit(2)
        text = sys.stdin.read()
    # as many alternatives as providers give (20): "nobody" gets a probability even when nil is not among the k shown
    options = PredictorOptions(provider=provider, top_k=20, base_url=base_url, timeout=timeout, concurrency=1)
    paths = default_paths(db)
    try:
        result = predict(
            paths, model=model, text=text, channel=channel, at=at, k=k,
            provider=provider, export_id=export, options=options,
            exclude_participants=exclude_participants, min_probability=min_probability,
        )
    except (EvaluationInputError, FileNotFoundError) as err:
        print_error(console, err)
        raise typer.Exit(2) from err
    for warning in result.warnings:  # once per prediction, on stderr (also in --json's "warnings")
        console.print(f"[yellow]warning:[/yellow] {warning}")
    app_view = _app_preview(paths, result, min_probability, alert_mentioned)
    if as_json:
        typer.echo(json.dumps({**result.as_json(), "app": app_view.as_json()}, indent=2))
        return
    out = make_console()
    conv = result.conversation
    where = f" in #{conv.channel_name or conv.channel_id}" if conv.channel_id else ""
    when = f" up to {conv.last_message_at[:19]}" if conv.last_message_at else ""
    as_of = (f"; ranked with the workspace as of the end of its data, {result.ranked_as_of} (\"today\" in the "
             "reasons is that day)" if result.ranked_as_of else "")
    out.print(f"[dim]{result.model}: {conv.n_messages} message(s){where}{when}{as_of}[/dim]")
    if conv.quiet_too_long and conv.minutes_before_at is not None:
        out.print(
            f"[yellow]note:[/] the last message was {conv.minutes_before_at:,.0f} min before --at: "
            "that conversation is probably over"
        )

    if result.unreadable_output is not None:
        out.print(f"the model's answer {result.unreadable_output!r} is no known label: no alert")
    elif not result.alert:
        out.print(_no_alert_line(result.candidates, result.nobody_probability, min_probability, exclude_participants))
        if result.candidates:
            out.print("if you alert anyway, the most likely:")
    for c in result.candidates:
        reason = f" — {c.reason}" if c.reason else ""
        detail = ", ".join(x for x in (f"label {c.label}" if c.label else None, c.user_id) if x)
        extra = f"  [dim]({detail})[/dim]" if verbose and detail else ""
        out.print(f"{c.rank}. {_pct(c.probability)}  {c.user_name or c.user_id or c.label}{reason}{extra}")
    out.print(_app_line(app_view), highlight=False)


def _app_preview(paths, result, min_probability: float | None, alert_mentioned: bool = False):  # -> AppPreview
    """What `beep slack serve` would do about this conversation: its policy at its threshold (the
    model's operating point, or --min-probability when given, as serve takes it)."""
    from beep.commands.operating_point import served_threshold
    from beep.db import connect
    from beep.slack.preview import people_in_duckdb, preview

    if min_probability is not None:
        value, source = min_probability, "--min-probability, as `beep slack serve --min-probability` takes it"
    else:
        found = served_threshold(paths, result.model)
        value, source = found.value, found.source or "the app's default"
    above = [u for u, p, _r in result.ranked_people if u is not None and p is not None and p >= value]
    try:
        with connect(paths.duckdb, read_only=True) as con:
            people = people_in_duckdb(con, above)
    except Exception:  # noqa: BLE001 - a file held by another process: who is a bot is then unknown
        people = {}
    return preview(result, people, min_probability=value, threshold_source=source, alert_notified=alert_mentioned)


def _app_line(view) -> str:
    """One line: whom the Slack app would alert, at which threshold, and what it leaves out."""
    at = f"at {100 * view.min_probability:g}% ({view.threshold_source})"
    if view.alerts:
        who = ", ".join(f"{a['user_name'] or a['user_id']} ({100 * a['probability']:.1f}%)" for a in view.alerts)
        line = f"[bold]the Slack app would alert[/bold] {who}, {at}"
    else:
        line = f"[bold]the Slack app would alert nobody[/bold] {at}"
    left = [f"{p['user_name'] or p['user_id']} ({100 * p['probability']:.1f}%, {why})"
            for why, people in view.not_candidates.items() for p in people]
    left += [f"{s['user_name'] or s['user_id']} ({100 * s['probability']:.1f}%, {s['why']})" for s in view.suppressed]
    if left:
        line += f"; above it but not alerted: {', '.join(left)}"
    if not view.participants_known:
        line += ("; --text does not say who wrote in the conversation, so someone named here may be in it "
                 "(the app never alerts them)")
    return line + " — before its once-per-conversation and hourly limits"


def _pct(p: float | None) -> str:
    return "   ?" if p is None else f"{100 * p:5.1f}%"


def _no_alert_line(candidates: list, nobody: float | None, min_probability: float | None,
                   exclude_participants: bool) -> str:
    """Why there is no alert, with what each number is."""
    nobody_part = (f"the model gives {100 * nobody:.1f}% to 'nobody needs an alert'"
                   if nobody is not None else "")
    if not candidates and min_probability is not None:
        who = ("nobody an alert could go to (not in the conversation, not notified by Slack: "
               "--exclude-participants)" if exclude_participants else "nobody")
        return (f"[bold]no alert[/bold]: {who} is at least {100 * min_probability:g}% likely to answer "
                f"(--min-probability {min_probability:g})" + (f"; {nobody_part}" if nobody_part else ""))
    if not candidates and exclude_participants:
        return "[bold]no alert[/bold]: nobody outside the conversation is ranked (--exclude-participants)"
    if nobody is not None:
        return (f"[bold]no alert[/bold]: 'nobody needs an alert' is the model's most likely answer "
                f"({100 * nobody:.1f}%, more than any one person)")
    return "[bold]no alert[/bold]: the model's most likely answer is that nobody needs one"
