"""The style check CI runs: `ruff check` over the whole tree, with the config in pyproject.toml
([tool.ruff]): pyflakes, pycodestyle's error subset and bugbear. About 1 s."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from beep.config import PROJECT_DIR

RUFF = Path(sys.executable).with_name("ruff")


def test_ruff_passes_on_the_whole_tree() -> None:
    assert RUFF.exists(), f"{RUFF} is missing: `make test` installs it from the lockfile (the dev group)"
    ran = subprocess.run([str(RUFF), "check", "--no-cache", "--output-format", "concise", "."], cwd=PROJECT_DIR,
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, f"ruff found problems (fix them, or `ruff check --fix`):\n{ran.stdout}{ran.stderr}"
