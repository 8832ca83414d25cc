"""Shared pytest fixtures: the dataset built from the bundled sample, and the fake OpenAI server."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `make test` runs 3 workers on 2 cores: the numeric libraries (torch, OpenBLAS, LightGBM's OpenMP) of
# each worker and of the Beep processes it starts use one thread, instead of threads that spin-wait
# for cores another worker holds (an explicit setting in the environment wins)
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# dbt is imported once per test worker (and per `beep` process a test starts), not once per dbt command:
# about 3 s of CPU each, for about 100 dbt commands (beep.dbt_forkserver). test_dbt_forkserver.py runs
# the plain subprocess, the default of every `beep` command, beside it.
os.environ.setdefault("BEEP_DBT_FORKSERVER", "1")

# helpers that live beside the tests (slack_fixtures, fake_openai) import as top-level modules
sys.path.insert(0, str(Path(__file__).parent))

from beep.build import build  # noqa: E402
from beep.config import SAMPLE_EXPORT, Paths  # noqa: E402
from beep.dbt_runner import warm_dbt_forkserver  # noqa: E402
from fake_openai.fixtures import fake_openai  # noqa: E402,F401  (re-exported fixture)


#: The test files that take longest (`--durations` on 2 cores), longest first. `make test` hands whole
#: files to its workers in collection order (`--dist loadfile --no-loadscope-reorder`): starting these
#: first keeps one of them from being the last thing still running while the other workers sit idle.
SLOWEST_FILES = (
    "test_spark_build.py", "test_kill_run.py", "test_run_pipeline.py", "test_dataset_build.py",
    "test_reusable_tables.py", "test_incremental_build.py", "test_one_at_a_time.py", "test_bad_input.py",
    "test_hf_finetune.py", "test_refine_local.py", "test_rules_parity.py", "test_every_column_described.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first (in :data:`SLOWEST_FILES` order), every other file after them as collected;
    their tests are marked ``slow`` (``pytest -m "not slow"`` runs the rest: a quick loop while editing)."""
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))  # stable: order within a file kept
    for item in items:
        if Path(str(item.fspath)).name in rank:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _warm_dbt(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> None:
    """This worker's dbt fork server parses the project once in its own process before any test runs a
    dbt command: each command after it costs about 2 s of CPU less (beep.dbt_forkserver, "Warming up").
    Under pytest-xdist only (`make test`: a worker runs dozens of dbt commands); a run without workers,
    often a few tests while editing, does not spend the 4-5 s of the warm-up first."""
    if worker_id != "master":
        warm_dbt_forkserver(tmp_path_factory.mktemp("dbt-warm-up"))


@pytest.fixture(scope="session")
def built_paths(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Paths:
    """Paths of a DuckDB file on which `dbt build` (all data and unit tests) ran over the sample.

    Read it, never write it: under pytest-xdist every worker reads the same one. The first worker to
    ask builds it in the run's common tmp folder while holding a lock; the others wait for the lock
    and reuse it (one build instead of one per worker: 16 s of CPU each, measured on 2 cores).
    """
    if worker_id == "master":  # no xdist: this process's own tmp folder
        root = tmp_path_factory.mktemp("built")
        paths = Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")
        build(paths, SAMPLE_EXPORT, run_tests=True, quiet=True)
        return paths
    shared = tmp_path_factory.getbasetemp().parent  # xdist gives each worker a folder in the run's base temp
    root = shared / "built-sample"
    paths = Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")
    done = root / "built"
    with open(shared / "built-sample.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when this worker dies
        if not done.exists():  # a worker whose build failed left no mark: the next one builds again
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            build(paths, SAMPLE_EXPORT, run_tests=True, quiet=True)
            done.touch()
    return paths


@pytest.fixture(scope="session")
def built_db(built_paths: Paths) -> Path:
    """The DuckDB file built from the sample (read it, don't write it: use fresh_db for that)."""
    return built_paths.duckdb


@pytest.fixture
def fresh_paths(built_paths: Paths, tmp_path: Path) -> Iterator[Paths]:
    """Paths with a private copy of the built DuckDB file, for tests that write."""
    paths = Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")
    shutil.copy(built_paths.duckdb, paths.duckdb)
    yield paths


@pytest.fixture
def fresh_db(fresh_paths: Paths) -> Path:
    """A private copy of the DuckDB file built from the sample."""
    return fresh_paths.duckdb
