"""Where things live: the repo, the DuckDB file, the bundled sample, the work folder.

Nothing here is global state: callers build a :class:`Paths` (usually with :func:`default_paths`)
and pass it down.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

#: The repository root (the folder holding dbt_project.yml).
PROJECT_DIR = Path(__file__).resolve().parents[2]
#: The bundled sample workspace export the default run uses.
SAMPLE_EXPORT = PROJECT_DIR / "sample_data" / "acme-slack-export"

#: The DuckDB file's schemas (docs/analysts.md): the tables Beep's Python steps own
#: (beep.migrations) and the seeds in ``main``, Beep's step tables; the dbt models by layer, as
#: dbt_project.yml's ``+schema`` names them (macros/layer_schemas.sql).
STEP_SCHEMA = "main"
#: `beep run` and `beep prune` keep this many of the newest exports (a week of daily runs; beep.prune).
DEFAULT_KEEP_EXPORTS = 7
LAYER_SCHEMAS = ("staging", "intermediate", "marts")
#: Where Beep's connections look an unqualified name up, in order (beep.db.set_search_path); the
#: first is where an unqualified CREATE goes.
SEARCH_PATH = (STEP_SCHEMA, "marts", "intermediate", "staging")


@dataclass(frozen=True)
class Paths:
    """The files and folders one Beep run reads and writes."""

    duckdb: Path
    workdir: Path
    project_dir: Path = PROJECT_DIR

    @property
    def exports_dir(self) -> Path:
        """Where `beep ingest` puts extracted exports and `beep export` puts JSONL."""
        return self.workdir / "exports"

    @property
    def db_key(self) -> str:
        """This DuckDB file's name and a hash of its full path: names what is its own in a work folder that
        several DuckDB files share (dbt's target and logs, the local Spark, step locks)."""
        digest = hashlib.sha256(str(self.duckdb).encode()).hexdigest()[:12]
        return f"{self.duckdb.name}-{digest}"

    @property
    def spark_dir(self) -> Path:
        """Where the local Spark keeps this DuckDB file's warehouse, metastore and Parquet tables:
        BEEP_SPARK_DIR, else ``<workdir>/spark/<db_key>``."""
        given = os.environ.get("BEEP_SPARK_DIR")
        return Path(given).resolve() if given else self.workdir / "spark" / self.db_key

    @property
    def artifacts_dir(self) -> Path:
        """Where local models and reports are written."""
        return self.workdir / "artifacts"


def default_paths(duckdb_path: str | os.PathLike[str] | None = None) -> Paths:
    """Paths from the arguments, else the environment (BEEP_DUCKDB_PATH, BEEP_WORKDIR), else defaults."""
    db = Path(duckdb_path or os.environ.get("BEEP_DUCKDB_PATH") or PROJECT_DIR / "beep.duckdb")
    if not db.is_absolute():
        db = Path.cwd() / db
    workdir = Path(os.environ.get("BEEP_WORKDIR") or db.parent / ".beep")
    return Paths(duckdb=db.resolve(), workdir=workdir.resolve())
