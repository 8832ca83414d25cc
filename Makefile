# Beep: two commands matter —
#   make run    the whole job on the bundled sample workspace (offline, local provider)
#   make test   every test: pytest (which also runs `dbt build` with all data and unit tests)
# Both install the locked environment (.venv, from uv.lock) first. Needs only python3 (3.11+), pip, make.
# Bytecode: `make run` compiles the environment at install; `make test` lets Python write it as modules
# are first imported (PYTHONDONTWRITEBYTECODE unset for the run). Where that variable is set, Python
# would otherwise recompile every module of dbt, sklearn, openai, ... in every process (seconds each).

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export DBT_PROFILES_DIR := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: install run test bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# --inexact: a venv that already holds the test extras keeps them (make run never imports them).
.venv/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --inexact --compile-bytecode --python $(PYTHON)
	.venv/bin/python -m compileall -q python_steps
	@touch $@

# The tests also cover the optional extras: hf (torch, transformers, peft: several GB) and spark.
# One sync with the extras (a superset of `install`, so it marks both done), not byte-compiled: uv
# would compile all 17,172 files of the environment (24-55 s of a fresh clone's `make test`), where
# the tests import a fraction of them, each compiled once by the first process that imports it.
.venv/.synced-test: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --inexact --python $(PYTHON) --extra hf --extra spark
	@touch .venv/.synced $@

install: .venv/.synced

run: install
	.venv/bin/beep run

# Test files run in parallel, one file per worker (its module fixtures, such as the Spark build, are
# made once), the slowest files first (tests/python/conftest.py). Three workers on 2 cores: the tests
# wait on subprocesses, servers and signals a good part of the time (a fresh-clone run with 2 workers
# kept the cores 58 % busy). PYTEST_WORKERS=1 runs them one after another.
PYTEST_WORKERS ?= 3
test: .venv/.synced-test
	env -u PYTHONDONTWRITEBYTECODE .venv/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: install
	.venv/bin/python bench/run_all.py

clean:
	rm -rf .venv .tools target logs .beep beep.duckdb
