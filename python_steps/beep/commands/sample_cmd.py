"""`beep sample …`: generate the deterministic sample Slack workspace export, zip an export folder."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from beep.commands.options import print_error

from beep.sample import (
    SAMPLE_CHANNELS,
    SAMPLE_DAYS,
    SAMPLE_MESSAGES,
    SAMPLE_PEOPLE,
    SAMPLE_SEED,
    OutputExistsError,
    generate_export,
)
from beep.sample.generator import default_workers

sample_app = typer.Typer(
    help=(
        "The sample Slack workspace: a deterministic generator of realistic exports (the bundled "
        f"sample_data/acme-slack-export is `generate` with seed {SAMPLE_SEED} and {SAMPLE_MESSAGES} messages)."
    ),
    no_args_is_help=True,
)


@sample_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the export into (created; must be empty unless --force).")],
    messages: Annotated[int, typer.Option("--messages", min=1, help="Exact number of message objects to write over all day files.")] = SAMPLE_MESSAGES,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed and sizes give byte-identical files.")] = SAMPLE_SEED,
    people: Annotated[int, typer.Option("--people", min=2, help="Number of human members (the first 10 cover 10 distinct fields of expertise; more repeat the fields).")] = SAMPLE_PEOPLE,
    channels: Annotated[int, typer.Option("--channels", min=1, help="Number of public channels (6 named ones, then generated project channels); one private channel is always added.")] = SAMPLE_CHANNELS,
    days: Annotated[int, typer.Option("--days", min=1, help="Length of the timeline in days, starting 2025-01-06 (UTC).")] = SAMPLE_DAYS,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Processes writing channels in parallel; 0 = one per CPU for big exports, 1 below 50,000 messages. The output does not depend on it.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it already holds a Slack export (users.json/channels.json); anything else is never deleted.")] = False,
) -> None:
    """Write a realistic, seeded Slack export: users.json, channels.json, groups.json and day files."""
    console = Console(stderr=True)
    # process start-up costs more than it saves on small exports
    n_workers = workers or (default_workers() if messages >= 50_000 else 1)
    with Progress(TextColumn("[bold]writing messages"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("messages", total=messages)
        try:
            summary = generate_export(out, messages=messages, seed=seed, people=people, channels=channels,
                                      days=days, force=force, workers=n_workers,
                                      progress=lambda n: bar.advance(task, n))
        except (OutputExistsError, ValueError) as exc:
            print_error(console, exc)
            raise typer.Exit(2) from exc
    typer.echo(
        f"wrote {summary.messages:,} messages ({summary.threads:,} threads, {summary.replies:,} replies) by "
        f"{summary.people} people and {summary.bots} bots in {summary.channels} channels, "
        f"{summary.day_files:,} day files, to {summary.out_dir} in {summary.seconds:.1f}s"
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
