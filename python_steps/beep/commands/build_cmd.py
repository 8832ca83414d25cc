"""`beep build`: build the dataset with dbt and print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.console import Console
from rich.table import Table

from beep.build import (BuildRefused, DatasetSummary, build, build_fingerprint, build_is_current, incremental_line,
                        resolve_export, summarize, warned_test_lines)
from beep.commands.options import DbOption, bad_option, make_console, print_error
from beep.commands.vars_option import VarOption, var_options
from beep.config import default_paths
from beep.dbt_runner import DbtFailed


#: Where dbt builds the dataset (profiles.yml: the default target, DuckDB, or target spark).
Target = Literal["duckdb", "spark"]


def register(app: typer.Typer) -> None:
    app.command("build")(build_command)


#: Labels the summary lists without --verbose (the rest are in table user_labels).
SHOWN_LABELS = 10


def dbt_line(summary: DatasetSummary) -> str | None:
    """One line of what dbt did: models built, tests passed / failed, seeds, the time."""
    counts = summary.dbt_results
    if not counts:
        return None

    def n(kind: str, *statuses: str) -> int:
        return sum(counts.get(kind, {}).get(s, 0) for s in statuses)

    models = sum(counts.get("model", {}).values())
    parts = [f"{models} models"]
    tests = sum(counts.get("test", {}).values()) + sum(counts.get("unit_test", {}).values())
    if tests:
        failed = n("test", "fail", "error") + n("unit_test", "fail", "error")
        warned = n("test", "warn") + n("unit_test", "warn")
        parts.append(f"{tests} tests ({tests - failed - warned} passed"
                     + (f", {warned} warned" if warned else "") + (f", {failed} failed" if failed else "") + ")")
    if counts.get("seed"):
        parts.append(f"{sum(counts['seed'].values())} seeds")
    skipped = sum(c.get("skipped", 0) for c in counts.values())
    if skipped:
        parts.append(f"{skipped} skipped")
    if summary.unit_tests_kept:
        parts.append("unit tests not run (they passed on this project, vars and dbt before; --rebuild runs them)")
    if summary.eval_runs_tested_through:
        parts.append(f"the tests over stored predictions checked the evaluation runs finished after "
                     f"{summary.eval_runs_tested_through[:19]} (the older ones passed them before; --rebuild tests all)")
    if summary.day_files_counted:
        parts.append(f"the fate reconciliation read {summary.day_files_counted[0]:,} day file"
                     f"{'s' if summary.day_files_counted[0] != 1 else ''} (the other "
                     f"{summary.day_files_counted[1]:,} with the counts recorded when it last passed; --rebuild reads all)")
    return f"[bold]dbt[/bold] built {', '.join(parts)} in {summary.seconds:.1f} s"


def print_summary(summary: DatasetSummary, console: Console, *, verbose: bool = False) -> None:
    """The dataset's headline numbers: what dbt did, the rows of the main tables, the fates of the
    raw messages and the labels (the first SHOWN_LABELS unless ``verbose``)."""
    line = dbt_line(summary)
    if line:
        console.print(line)
    for warned in warned_test_lines(summary.warned_tests):  # severity warn: built and used, but worth a look
        console.print(f"[yellow]warning:[/yellow] {warned}", highlight=False)
    incremental = incremental_line(summary)
    if incremental:
        console.print(incremental, highlight=False, markup=False)
    if summary.table_rows:
        console.print("rows: " + ", ".join(f"{table} {n:,}" for table, n in summary.table_rows.items()))
    console.print(
        f"[bold]dataset[/bold] from {summary.export_path}: {summary.n_raw_messages:,} raw messages → "
        f"{summary.n_examples:,} training examples in {summary.n_conversations:,} conversations, "
        f"{summary.n_labels} labels; {summary.newcomer_share:.0%} of replies come from someone new to the conversation"
    )
    if summary.n_unknown_user_messages:
        console.print(
            f"[yellow]warning:[/yellow] {summary.n_unknown_user_messages:,} messages come from "
            f"{summary.n_unknown_users} user id(s) missing from users.json: their label is named by the id "
            "(counted as unknown_user in ingest_issues)"
        )
    if summary.n_zero_byte_day_files:
        console.print(
            f"[yellow]warning:[/yellow] {summary.n_zero_byte_day_files:,} day file(s) of zero bytes hold no messages; "
            "Spark's file listing leaves them out of stg_slack__day_files, so Beep counted them itself "
            "(`beep ingest` records them as empty_file in ingest_issues)"
        )
    if summary.ingest_issues:
        console.print("handled at ingest (table ingest_issues): "
                      + ", ".join(f"{issue} {n:,}" for issue, n in summary.ingest_issues.items()))
    fates = Table("fate", "reason", "messages", title="what became of every raw message (message_fate_counts)")
    for fate, reason, n in summary.fates:
        fates.add_row(fate, reason or "", f"{n:,}")
    console.print(fates)
    shown = (summary.labels if verbose or len(summary.labels) <= SHOWN_LABELS
             else sorted(summary.labels, key=lambda row: -row[2])[:SHOWN_LABELS])
    title = ("labels (user_labels)" if len(shown) == len(summary.labels)
             else f"the {len(shown)} labels with most examples of {len(summary.labels):,} "
                  "(all: --verbose, or table user_labels)")
    labels = Table("label", "user", "examples", title=title)
    for label, name, n in shown:
        labels.add_row(str(label), name, f"{n:,}")
    console.print(labels)


def build_command(
    export: Annotated[
        Optional[Path],
        typer.Option(help="The unzipped export folder to build from (default: the export this DuckDB file last ingested or "
                          "built; refused, naming it, after a refused ingest; the bundled sample only on a fresh DB).",
                     show_default=False),
    ] = None,
    db: DbOption = None,
    tests: Annotated[bool, typer.Option(help="Run dbt's data and unit tests too (`dbt build`); --no-tests runs `dbt run` only.")] = True,
    var: VarOption = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the dataset even when the export, the dbt project and the vars are unchanged, "
                                               "every table included (dbt --full-refresh; without it, staging and intermediate tables whose "
                                               "export files, input tables and SQL are unchanged are kept as they are).")] = False,
    target: Annotated[
        Target,
        typer.Option(help="Where dbt builds: 'duckdb' (the DuckDB file, --db) or 'spark' (Apache Spark through dbt-spark, "
                          "profiles.yml target spark: a local Spark by default, BEEP_SPARK_DIR for its files; needs the "
                          "spark extra and Java 17+). A Spark-built dataset is read by the later steps through DuckDB views "
                          "over its Parquet tables (docs/spark.md); `beep run` then reuses it (the same export, project and "
                          "vars build the same rows on both)."),
    ] = "duckdb",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Stream dbt's own output (every model and test, on stderr) "
                                                                  "and list every label.")] = False,
) -> None:
    """Build the training dataset with dbt (on DuckDB, or on Spark with --target spark) and print a summary.

    Runs the dbt project (staging → intermediate → marts) over the export and, unless --no-tests,
    every data and unit test. The tables land in the DuckDB file (--db); with --target spark they
    land as Parquet under BEEP_SPARK_DIR (default .beep/spark/<db>-<hash> beside the DuckDB file) and the
    DuckDB file gets views over them. Skipped when the export, the dbt project and the vars are
    unchanged since the last build (--rebuild forces it). Otherwise only what changed is recomputed:
    on DuckDB the message-level models work only on the new, changed or gone day files, their message
    keys, and their channels from the last quiet moment before the changes that no conversation spans
    (macros/incremental_messages.sql; the summary says how many messages that was), and a table whose
    export files, input tables and SQL are unchanged is kept as it is (macros/reusable_table.sql):
    after a change of vars only what the change reaches is rebuilt.
    """
    console = make_console()
    err_console = make_console(stderr=True)
    if export is not None and not (export / "users.json").is_file() and not (export / "org_users.json").is_file():
        what = "does not exist" if not export.exists() else "holds no users.json"
        bad_option(err_console, f"--export {export} {what}: give the unzipped export folder, or run "
                                f"`beep ingest PATH` on the .zip or folder first (it checks every file).")
    dbt_vars = var_options(var)
    paths = default_paths(db)
    try:
        export_path = resolve_export(paths, export)
        if not rebuild and build_is_current(paths, build_fingerprint(paths, export_path, dbt_vars, tests), target):
            err_console.print("dataset unchanged since the last build: skipped (--rebuild forces it)")
            summary = summarize(paths, export_path)
        else:
            if not verbose:
                err_console.print(f"building the dataset from {export_path} with dbt "
                                  f"({'models and tests' if tests else 'models'}; --verbose shows dbt's output)...")
            summary = build(paths, export_path, run_tests=tests, dbt_vars=dbt_vars, target=target,
                            full_refresh=rebuild, quiet=not verbose)
    except DbtFailed as err:
        print_error(err_console, err, "Fix the problem above and run `beep build` again.")
        raise typer.Exit(code=1) from err
    except BuildRefused as err:  # the export was refused before any work: nothing to resume, exit 2
        print_error(err_console, err)
        raise typer.Exit(code=2) from err
    print_summary(summary, console, verbose=verbose)
