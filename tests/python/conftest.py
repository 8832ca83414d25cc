"""Shared pytest fixtures: the dataset built from the bundled sample, and the fake OpenAI server."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# helpers that live beside the tests (slack_fixtures, fake_openai) import as top-level modules
sys.path.insert(0, str(Path(__file__).parent))

from beep.build import build  # noqa: E402
from beep.config import SAMPLE_EXPORT, Paths  # noqa: E402
from fake_openai.fixtures import fake_openai  # noqa: E402,F401  (re-exported fixture)


@pytest.fixture(scope="session")
def built_paths(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """Paths of a DuckDB file on which `dbt build` (all data and unit tests) ran over the sample."""
    root = tmp_path_factory.mktemp("built")
    paths = Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")
    build(paths, SAMPLE_EXPORT, run_tests=True, quiet=True)
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
