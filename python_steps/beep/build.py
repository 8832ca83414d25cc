"""`beep build`: run the dbt project over an export and summarise the dataset it produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from beep.config import SAMPLE_EXPORT, Paths
from beep.db import connect, table_exists
from beep.dbt_runner import run_dbt
from beep.ingest import latest_export_path


@dataclass
class DatasetSummary:
    """Headline numbers of the built dataset."""

    export_path: Path
    n_raw_messages: int = 0
    n_examples: int = 0
    n_conversations: int = 0
    n_labels: int = 0
    newcomer_share: float = 0.0
    fates: list[tuple[str, str | None, int]] = field(default_factory=list)
    labels: list[tuple[int, str, int]] = field(default_factory=list)


def resolve_export(paths: Paths, export: Path | None) -> Path:
    """The export folder to build: the one given, else the last ingested, else the bundled sample."""
    if export is not None:
        return Path(export).resolve()
    return latest_export_path(paths) or SAMPLE_EXPORT


def build(
    paths: Paths,
    export: Path | None = None,
    *,
    run_tests: bool = True,
    quiet: bool = False,
    dbt_vars: dict[str, object] | None = None,
) -> DatasetSummary:
    """`dbt build` (or `dbt run` without tests) of the whole project over ``export``.

    ``dbt_vars`` overrides project vars (context_messages, max_labels, cleaning switches, …).
    """
    export_path = resolve_export(paths, export)
    with connect(paths.duckdb):
        pass  # creates the file and the Python-owned tables dbt sources read
    run_dbt(paths, ["build" if run_tests else "run"], vars={**(dbt_vars or {}), "slack_export": str(export_path)}, quiet=quiet)
    return summarize(paths, export_path)


def summarize(paths: Paths, export_path: Path) -> DatasetSummary:
    """Read the headline numbers of the dataset from the DuckDB file."""
    summary = DatasetSummary(export_path=export_path)
    with connect(paths.duckdb, read_only=True) as con:
        if not table_exists(con, "training_examples"):
            return summary
        n, n_conv, newcomers = con.execute(
            "select count(*), count(distinct conversation_id), coalesce(avg(case when responder_spoke_before then 0 else 1 end), 0) from training_examples"
        ).fetchone()
        summary.n_examples, summary.n_conversations, summary.newcomer_share = int(n), int(n_conv), float(newcomers)
        summary.fates = [
            (fate, reason, int(count))
            for fate, reason, count in con.execute(
                "select fate, reason, sum(n_messages) from message_fate_counts group by all order by fate, 3 desc"
            ).fetchall()
        ]
        summary.n_raw_messages = sum(count for _, _, count in summary.fates)
        summary.labels = [
            (int(label), str(name), int(count))
            for label, name, count in con.execute("select label, user_name, n_examples from user_labels order by label").fetchall()
        ]
        summary.n_labels = len(summary.labels)
    return summary
