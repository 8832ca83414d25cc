"""`beep sample …`: generate the deterministic sample Slack workspace export, zip an export folder."""

from __future__ import annotations

import os
import zipfile
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from beep.commands.options import print_error
from beep.sample import (
    LARGE_CHANNELS,
    LARGE_DAYS,
    LARGE_MESSAGES,
    LARGE_PEOPLE,
    PROFILES,
    SAMPLE_CHANNELS,
    SAMPLE_DAYS,
    SAMPLE_MESSAGES,
    SAMPLE_PEOPLE,
    SAMPLE_SEED,
    OutputExistsError,
)
from beep.sample import generate as write_export
from beep.sample.generator import default_workers

sample_app = typer.Typer(
    help=(
        "The sample Slack workspace: a deterministic generator of realistic exports (the bundled "
        f"sample_data/acme-slack-export is `generate` with seed {SAMPLE_SEED} and {SAMPLE_MESSAGES} messages; "
        "`generate --profile large` writes a company-sized workspace)."
    ),
    no_args_is_help=True,
)


class ProfileName(str, Enum):
    """`--profile`: which kind of workspace `generate` writes."""

    sample = "sample"
    large = "large"


@sample_app.command("generate")
def generate(
    out_arg: Annotated[Path | None, typer.Argument(
        metavar="OUT", show_default=False,
        help="Folder to write the export into (the same as --out; give one of them).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", show_default=False,
        help="Folder to write the export into (created; must be empty unless --force).")] = None,
    profile: Annotated[ProfileName, typer.Option(
        "--profile", case_sensitive=False,
        help=("What kind of workspace: `sample` = the bundled 10-person team (defaults: seed "
              f"{SAMPLE_SEED}, {SAMPLE_MESSAGES:,} messages, {SAMPLE_PEOPLE} people, {SAMPLE_CHANNELS} channels, "
              f"{SAMPLE_DAYS} days); `large` = a company workspace with teams, a long tail of activity, bots, "
              "deactivated users, hundreds of channels and truth.csv (defaults: "
              f"{LARGE_MESSAGES:,} messages, {LARGE_PEOPLE:,} people, {LARGE_CHANNELS} channels, {LARGE_DAYS} days). "
              "See docs/sample-workspace.md."))] = ProfileName.sample,
    messages: Annotated[int | None, typer.Option(
        "--messages", min=1, show_default=False,
        help=f"Exact number of message objects to write over all day files (default: {SAMPLE_MESSAGES:,}; "
             f"large: {LARGE_MESSAGES:,}).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed, profile and sizes give byte-identical files.")] = SAMPLE_SEED,
    people: Annotated[int | None, typer.Option(
        "--people", min=2, show_default=False,
        help=f"Number of human members (default: {SAMPLE_PEOPLE}; large: {LARGE_PEOPLE:,}, at least 10). Sample: "
             "the first 10 cover 10 distinct fields of expertise, more repeat the fields. Large: people form teams "
             "of about 20, each owning a component.")] = None,
    channels: Annotated[int | None, typer.Option(
        "--channels", min=1, show_default=False,
        help=f"Number of public channels (default: {SAMPLE_CHANNELS}; large: {LARGE_CHANNELS}). Sample: 6 named "
             "ones, then generated project channels, plus one private channel. Large: company-wide, help-, team-, "
             "project and social channels, plus one private channel per 30.")] = None,
    days: Annotated[int | None, typer.Option(
        "--days", min=1, show_default=False,
        help=f"Length of the timeline in days, starting 2025-01-06 (UTC) (default: {SAMPLE_DAYS}; large: {LARGE_DAYS}).")] = None,
    truth: Annotated[bool, typer.Option(
        "--truth/--no-truth",
        help="Large profile: also write truth.csv beside users.json (ts, channel, conversation_id, reply_to_ts: "
             "which earlier message each conversation message answers). Ignored by the sample profile.")] = True,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Processes writing channels in parallel; 0 = one per CPU for big exports, 1 below 50,000 messages. The output does not depend on it.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it already holds a Slack export (users.json/channels.json); anything else is never deleted.")] = False,
) -> None:
    """Write a realistic, seeded Slack export: users.json, channels.json, groups.json and day files.

    Without options: the bundled sample's settings. With --profile large: a company workspace (2,000 people, 300 channels, 500,000 messages by default) and its truth.csv.
    """
    console = Console(stderr=True)
    if out is not None and out_arg is not None and out != out_arg:
        print_error(console, f"two output folders given ({out_arg} and --out {out}): give one.")
        raise typer.Exit(2)
    target = out or out_arg
    if target is None:
        print_error(console, "no output folder: give it as OUT or --out.")
        raise typer.Exit(2)
    chosen = PROFILES[profile.value]
    n_messages = messages or chosen.defaults.messages
    # process start-up costs more than it saves on small exports
    n_workers = workers or (default_workers() if n_messages >= 50_000 else 1)
    with Progress(TextColumn("[bold]writing messages"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("messages", total=n_messages)
        try:
            summary = write_export(target, chosen, messages=n_messages, seed=seed, people=people,
                                   channels=channels,
                                   days=days, force=force, workers=n_workers, truth=truth,
                                   progress=lambda n: bar.advance(task, n))
        except (OutputExistsError, ValueError) as exc:
            print_error(console, exc)
            raise typer.Exit(2) from exc
    typer.echo(
        f"wrote {summary.messages:,} messages ({summary.threads:,} threads, {summary.replies:,} replies) by "
        f"{summary.people:,} people and {summary.bots} bots in {summary.channels} channels, "
        f"{summary.day_files:,} day files, to {summary.out_dir} in {summary.seconds:.1f}s"
        + (f" (+ truth.csv, {summary.truth_rows:,} rows)" if summary.truth_rows else "")
    )


@sample_app.command("zip")
def zip_export(
    folder: Annotated[Path, typer.Argument(help="An export folder (holding users.json and channels.json).")],
    out_zip: Annotated[Path, typer.Argument(help="The .zip file to write (replaced if it exists).")],
) -> None:
    """Zip an export folder the way Slack ships it (entries relative to the folder, fixed timestamps)."""
    if not (folder / "users.json").is_file() or not (folder / "channels.json").is_file():
        typer.echo(f"error: {folder} holds no users.json/channels.json; give the export folder itself.", err=True)
        raise typer.Exit(2)
    if not out_zip.parent.is_dir():
        typer.echo(f"error: the folder {out_zip.parent} does not exist; create it or write the .zip elsewhere.", err=True)
        raise typer.Exit(2)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    tmp = out_zip.with_name(out_zip.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    os.replace(tmp, out_zip)
    typer.echo(f"wrote {out_zip} ({len(files)} files)")


def register(app: typer.Typer) -> None:
    """Add `beep sample` to the main app."""
    app.add_typer(sample_app, name="sample")
