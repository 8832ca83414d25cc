"""`beep ingest`: check a Slack export (.zip or folder) and prepare it for `beep build`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from beep.commands.options import DbOption, format_size, make_console, parse_size, print_error
from beep.config import default_paths
from beep.ingest import DEFAULT_MAX_COMPRESSION_RATIO, DEFAULT_MAX_UNCOMPRESSED_BYTES, IngestError, ingest


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_command)


def ingest_command(
    path: Annotated[Path, typer.Argument(help="The Slack export: its .zip file or its unzipped folder.", show_default=False)],
    db: DbOption = None,
    max_size: Annotated[
        int,
        typer.Option(parser=parse_size, metavar="SIZE", show_default=format_size(DEFAULT_MAX_UNCOMPRESSED_BYTES),
                     help="Refuse a zip that would unpack to more than this (a zip-bomb guard): bytes, or a number "
                          "with a unit: 20GB (10^9 bytes each), 20GiB (2^30), 512MB, 1.5TB."),
    ] = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    max_ratio: Annotated[
        float,
        typer.Option(min=1.0, help="Refuse a zip member (of 1 MiB or more unpacked) that unpacks to more than this many "
                                   "times its compressed size (a zip-bomb guard; the bundled sample compresses at most 9:1 per file)."),
    ] = DEFAULT_MAX_COMPRESSION_RATIO,
) -> None:
    """Check a Slack export and prepare the folder dbt reads.

    A zip is extracted safely (absolute paths, '..', symlinks and oversized archives are refused).
    Every file is checked: malformed JSON stops with the file, line and what to do; problems Beep can
    handle (empty day files, unpaired surrogates, folders missing from channels.json, two messages with
    the same ts and different texts) are repaired in a prepared copy or counted, and printed naming
    their files. The original export is never changed. Then run `beep build`.
    """
    console = make_console(stderr=True)
    paths = default_paths(db)
    with Progress(TextColumn("checking day files"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("check", total=None)
        try:
            result = ingest(paths, path, max_bytes=max_size, max_ratio=max_ratio,
                            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                            say=lambda line: console.print(line, markup=False, highlight=False, emoji=False))
        except IngestError as err:
            print_error(console, err)
            raise typer.Exit(code=2) from err
    console.print(
        f"[green]ingested[/green] {result.n_messages:,} messages in {result.n_day_files:,} day files "
        f"({result.n_bytes / 1e6:.1f} MB) from {result.source_path}"
    )
    if result.n_day_files_unchanged:
        console.print(result.describe_reuse())
    if result.issues:
        table = Table("issue", "files", "occurrences", title="handled problems (table ingest_issues)")
        files: dict[str, int] = {}
        for issue in result.issues:
            files[issue.issue] = files.get(issue.issue, 0) + 1
        for name, n in sorted(result.issue_counts().items()):
            table.add_row(name, str(files[name]), str(n))
        console.print(table)
    console.print(f"export folder for dbt: {result.export_path}\nnext: beep build")
    typer.echo(str(result.export_path))
