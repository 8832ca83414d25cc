"""dbt through the fork server (BEEP_DBT_FORKSERVER=1, what the test suite uses) and as the plain
subprocess every `beep` command uses: the same output, exit status and error; the caller's
environment for each command; and no dbt left running after its caller is killed or interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from beep import dbt_forkserver
from beep.config import Paths
from beep.dbt_runner import DbtFailed, run_dbt


def _processes_with(marker: str) -> list[int]:
    """The live processes whose environment holds ``marker`` (this user's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait_gone(marker: str, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_the_same_output_status_and_error_either_way(built_paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    for mode in ("0", "1"):  # a plain subprocess (every `beep` command), then the fork server
        monkeypatch.setenv(dbt_forkserver.ENV_VAR, mode)
        listed = run_dbt(built_paths, ["ls", "--select", "stg_slack__users", "--resource-type", "model",
                                       "--output", "name", "--quiet"], quiet=True)
        with pytest.raises(DbtFailed) as failed:
            run_dbt(built_paths, ["run-operation", "no_such_macro_anywhere"], quiet=True)
        seen[mode] = (listed.returncode, listed.stdout.split(), str(failed.value))
    assert seen["0"] == seen["1"]
    assert seen["1"][:2] == (0, ["stg_slack__users"])
    assert "(exit 2)" in seen["1"][2] and "no_such_macro_anywhere" in seen["1"][2]


def test_each_command_gets_its_callers_environment(tmp_path: Path) -> None:
    # dbt reads DBT_PROFILES_DIR when the command runs: each call's own value, not the first one's
    for value in ("first", "second"):
        proc = dbt_forkserver.run(["debug", "--config-dir"], env={**os.environ, "DBT_PROFILES_DIR": str(tmp_path / value)},
                                  cwd=tmp_path, quiet=True)
        assert proc.returncode == 0 and str(tmp_path / value) in proc.stdout, proc.stdout


#: A process that builds the sample through the fork server; SIGTERM becomes an exception in it (as
#: in `beep`'s commands, beep.interrupts), after which it stays alive for 30 s.
_CALLER = textwrap.dedent("""
    import signal, sys, time
    from pathlib import Path
    from beep.build import build
    from beep.config import SAMPLE_EXPORT, Paths

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    root = Path(sys.argv[1])
    print("building", flush=True)
    try:
        build(Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep"), SAMPLE_EXPORT, run_tests=True, quiet=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        time.sleep(30)
""")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_no_dbt_is_left_running_after_its_caller_is_killed(tmp_path: Path, how: int) -> None:
    marker = f"BEEP_TEST_MARKER={uuid.uuid4().hex}"
    key, value = marker.split("=")
    env = {**os.environ, dbt_forkserver.ENV_VAR: "1", key: value}
    caller = subprocess.Popen([sys.executable, "-c", _CALLER, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert caller.stdout is not None and caller.stdout.readline().strip() == "building"
        # wait for the server's child: a process with the marker whose parent is the server
        deadline = time.monotonic() + 60
        children: list[int] = []
        while time.monotonic() < deadline and not children:
            mine = set(_processes_with(value))
            children = [p for p in mine - {caller.pid}
                        if int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) in mine - {caller.pid}]
            time.sleep(0.1)
        assert children, "dbt never started in a child of the fork server"
        time.sleep(1.0)  # dbt is parsing or building
        caller.send_signal(how)
        if how == signal.SIGTERM:  # the caller lives on: the interrupted call itself stopped dbt
            assert caller.stdout.readline().strip() == "interrupted"
            deadline = time.monotonic() + 5
            while set(children) & set(_processes_with(value)) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert caller.poll() is None and not set(children) & set(_processes_with(value)), \
                "the interrupted call left dbt running"
            caller.kill()
        caller.wait(timeout=30)
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
    assert _wait_gone(value) == [], "a process of the fork server outlived its caller"
