"""dbt through the fork server (BEEP_DBT_FORKSERVER=1, what the test suite uses) and as the plain
subprocess every `beep` command uses: the same output, exit status and error; each command's own
environment, however large; and no dbt left running once its caller is interrupted or killed, with
the server still answering the caller's next command after an interruption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from beep import dbt_forkserver
from beep.config import Paths
from beep.dbt_runner import DbtFailed, dbt_cwd, dbt_env, run_dbt, warm_dbt_forkserver


def test_the_same_output_status_and_error_either_way(fresh_paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    for mode in ("0", "1"):  # a plain subprocess (every `beep` command), then the fork server
        monkeypatch.setenv(dbt_forkserver.ENV_VAR, mode)
        listed = run_dbt(fresh_paths, ["ls", "--select", "stg_slack__users", "--resource-type", "model",
                                       "--output", "name", "--quiet"], quiet=True)
        with pytest.raises(DbtFailed) as failed:
            run_dbt(fresh_paths, ["run-operation", "no_such_macro_anywhere"], quiet=True)
        seen[mode] = (listed.returncode, listed.stdout.split(), str(failed.value))
    assert seen["0"] == seen["1"]
    assert seen["1"][:2] == (0, ["stg_slack__users"])
    assert "(exit 2)" in seen["1"][2] and "no_such_macro_anywhere" in seen["1"][2]


def test_warming_up_leaves_the_server_as_it_was_and_a_failed_one_changes_nothing(tmp_path: Path) -> None:
    # the server parses a scratch copy of the project in its own process (under pytest-xdist the worker's
    # server was warmed this way by conftest's _warm_dbt already; this warms it again), then serves as before: its output,
    # folder and environment restored, and each command in a child with the command's own environment
    server = dbt_forkserver._SERVERS.get()
    before = {link: os.readlink(f"/proc/{server.proc.pid}/{link}") for link in ("cwd", "fd/1", "fd/2")}
    assert warm_dbt_forkserver(tmp_path / "warm")
    target = Path(dbt_env(Paths(duckdb=tmp_path / "warm" / "warm-up.duckdb", workdir=tmp_path / "warm" / ".beep"))["DBT_TARGET_PATH"])
    assert (target / "partial_parse.msgpack").is_file() and (target / "manifest.json").is_file()
    # a command in the server that fails (as a broken warm-up would) leaves it serving too
    (tmp_path / "no-project-here").mkdir()
    failed = dbt_forkserver.run(["parse", "--project-dir", str(tmp_path / "no-project-here")],
                                env=dbt_env(Paths(duckdb=tmp_path / "x.duckdb", workdir=tmp_path / ".beep")),
                                cwd=tmp_path, quiet=True, in_server=True)
    assert failed is not None and failed.returncode != 0 and "dbt_project.yml" in failed.stdout
    assert dbt_forkserver._SERVERS.get() is server and server.alive()
    assert {link: os.readlink(f"/proc/{server.proc.pid}/{link}") for link in before} == before
    # no file of the warm-up left open (dbt's log), which every child would inherit
    open_files = [os.readlink(f"/proc/{server.proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{server.proc.pid}/fd")]
    assert not [name for name in open_files if name.startswith(str(tmp_path))], open_files
    assert len(os.listdir(f"/proc/{server.proc.pid}/task")) == 1  # no thread left running in it (it forks)
    proc = dbt_forkserver.run(["debug", "--config-dir"], env={**os.environ, "DBT_PROFILES_DIR": str(tmp_path / "mine")},
                              cwd=tmp_path, quiet=True)
    assert proc is not None and proc.returncode == 0 and str(tmp_path / "mine") in proc.stdout, proc


def test_a_command_that_leaves_a_thread_in_the_server_ends_it_and_the_next_command_gets_a_new_one(
        fresh_paths: Paths) -> None:
    # dbt's static parser keeps a native thread pool: a child forked after it hangs in it, so the server
    # must not fork again (a timeout here is the hang this guards against)
    server = dbt_forkserver._SERVERS.get()
    env = {**dbt_env(fresh_paths), "DBT_STATIC_PARSER": "true", "DBT_TARGET_PATH": str(fresh_paths.workdir / "static")}
    proc = dbt_forkserver.run(["parse", "--quiet", "--project-dir", str(fresh_paths.project_dir)], env=env,
                              cwd=dbt_cwd(fresh_paths), quiet=True, in_server=True)
    assert proc is not None and proc.returncode == 0, proc
    assert server.exiting  # it said so: the next command, at once, goes to a new server
    listed = run_dbt(fresh_paths, ["ls", "--select", "stg_slack__users", "--resource-type", "model",
                                   "--output", "name", "--quiet"], quiet=True)
    assert listed.stdout.split() == ["stg_slack__users"]
    assert dbt_forkserver._SERVERS.get() is not server
    assert server.proc.wait(timeout=30) is not None  # and the old one ended


def test_a_warm_up_whose_server_dies_costs_only_the_warm_up(fresh_paths: Paths, tmp_path: Path) -> None:
    server = dbt_forkserver._SERVERS.get()
    killer = threading.Timer(1.0, os.kill, (server.proc.pid, signal.SIGKILL))  # during the first parse
    killer.start()
    try:
        assert warm_dbt_forkserver(tmp_path / "warm") is False
    finally:
        killer.cancel()
    listed = run_dbt(fresh_paths, ["ls", "--select", "stg_slack__users", "--resource-type", "model",
                                   "--output", "name", "--quiet"], quiet=True)
    assert listed.stdout.split() == ["stg_slack__users"]
    assert dbt_forkserver._SERVERS.get() is not server


def test_each_command_gets_its_own_environment_however_large(tmp_path: Path) -> None:
    # dbt reads DBT_PROFILES_DIR when the command runs: each call's own value, not the first one's; a
    # request far over a socket buffer (the environment here: about 600 KB) goes through whole
    big = {f"BEEP_TEST_BIG_{i}": "x" * 100_000 for i in range(6)}
    for value in ("first", "second"):
        proc = dbt_forkserver.run(["debug", "--config-dir"], env={**os.environ, **big, "DBT_PROFILES_DIR": str(tmp_path / value)},
                                  cwd=tmp_path, quiet=True)
        assert proc is not None and proc.returncode == 0 and str(tmp_path / value) in proc.stdout, proc


def _tiny_project(root: Path) -> Path:
    """A dbt project whose one model (Python, on DuckDB) sleeps for a minute: a command that only a kill ends soon."""
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: tiny\nversion: '1.0'\nconfig-version: 2\nprofile: tiny\n"
                                          "model-paths: [models]\n")
    (root / "profiles.yml").write_text(f"tiny:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                       f"      path: {root / 'tiny.duckdb'}\n")
    (root / "models" / "slow.py").write_text("import time\n\n\ndef model(dbt, session):\n    time.sleep(60)\n"
                                             "    return session.sql('select 1 as x')\n")
    return root


#: A caller: starts the slow command through the fork server; a SIGTERM becomes an exception in it (as in
#: `beep`'s commands, beep.interrupts), after which it runs a quick command through the same server.
_CALLER = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from beep import dbt_forkserver

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    project = Path(sys.argv[1])
    args = ["run", "--project-dir", str(project), "--profiles-dir", str(project)]
    first = dbt_forkserver._SERVERS.get().proc.pid
    print("running", flush=True)
    try:
        dbt_forkserver.run(args, env=dict(os.environ), cwd=project, quiet=True)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        server = dbt_forkserver._SERVERS.get().proc.pid
        again = dbt_forkserver.run(["debug", "--config-dir"], env=dict(os.environ), cwd=project, quiet=True)
        print(f"again {again.returncode} {server == dbt_forkserver._SERVERS.get().proc.pid == first}", flush=True)
        time.sleep(30)
""")


def _with_marker(value: str) -> dict[int, int]:
    """{pid: parent pid} of the live processes whose environment holds ``value``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if value.encode() not in (entry / "environ").read_bytes():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        if fields[0] != "Z":
            found[int(entry.name)] = int(fields[1])
    return found


def _dbt_child(value: str, caller: int) -> int | None:
    """The pid of the server's child (a process with the marker whose parent is the server)."""
    found = _with_marker(value)
    servers = {pid for pid, parent in found.items() if parent == caller}
    return next((pid for pid, parent in found.items() if parent in servers), None)


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["SIGTERM to the caller", "SIGTERM to its process group", "SIGKILL to the caller"])
def test_no_dbt_is_left_running_after_its_caller_is_interrupted_or_killed(tmp_path: Path, how: str) -> None:
    project = _tiny_project(tmp_path / "tiny")
    value = uuid.uuid4().hex
    env = {**os.environ, dbt_forkserver.ENV_VAR: "1", "BEEP_TEST_MARKER": value}
    errors = (tmp_path / "stderr.txt").open("w")
    caller = subprocess.Popen([sys.executable, "-c", _CALLER, str(project)], env=env, stdout=subprocess.PIPE,
                              stderr=errors, text=True, start_new_session=True)
    try:
        assert caller.stdout is not None and caller.stdout.readline().strip() == "running"
        deadline = time.monotonic() + 90
        while (child := _dbt_child(value, caller.pid)) is None:
            assert caller.poll() is None and time.monotonic() < deadline, "dbt never started in a child of the fork server"
            time.sleep(0.1)
        time.sleep(1.0)  # dbt is starting, or already in the model's sleep
        server = {pid for pid, parent in _with_marker(value).items() if parent == caller.pid}
        signalled = time.monotonic()
        if how == "SIGKILL to the caller":
            caller.kill()
            assert _gone(child, 5), "dbt outlived its killed caller"
            assert server and all(_gone(pid, 5) for pid in server), "the fork server outlived its killed caller"
        else:
            if how == "SIGTERM to the caller":
                caller.send_signal(signal.SIGTERM)
            else:  # Ctrl-C or a closed terminal reach every process of the group: the server ignores them
                os.killpg(caller.pid, signal.SIGTERM)
            assert caller.stdout.readline().strip() == "interrupted"
            assert time.monotonic() - signalled < 10, "the interrupted call waited for dbt instead of stopping it"
            assert _gone(child, 0.5), "the interrupted call returned with dbt still running"
            # the same server answers the next command: the stopping signal neither killed it nor broke it
            assert caller.stdout.readline().strip() == "again 0 True"
    finally:
        if caller.poll() is None:
            os.killpg(caller.pid, signal.SIGKILL)
        caller.wait(timeout=30)
        errors.close()
    deadline = time.monotonic() + 5
    while _with_marker(value) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _with_marker(value), f"left running: {_with_marker(value)}; {(tmp_path / 'stderr.txt').read_text()[-2000:]}"
    assert "ForkServerError" not in (tmp_path / "stderr.txt").read_text()


#: A caller whose command runs on a thread of its own (so the server has no PR_SET_PDEATHSIG: that signal
#: would come when the thread ends, not the process), and which forks while it runs: the forked copy holds
#: the server's sockets, so they do not close when the caller is killed.
_FORKED_COPY = textwrap.dedent("""
    import os, sys, threading, time
    from pathlib import Path
    from beep import dbt_forkserver

    project = Path(sys.argv[1])
    args = ["run", "--project-dir", str(project), "--profiles-dir", str(project)]
    threading.Thread(target=dbt_forkserver.run, args=(args,), kwargs=dict(env=dict(os.environ), cwd=project, quiet=True),
                     daemon=True).start()
    while dbt_forkserver._SERVERS._server is None:  # the server is started and the command on its way
        time.sleep(0.05)
    time.sleep(float(sys.argv[2]))
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    print("forked", flush=True)
    time.sleep(60)
""")


def test_a_killed_caller_stops_the_server_even_when_a_fork_of_it_holds_the_sockets(tmp_path: Path) -> None:
    project = _tiny_project(tmp_path / "tiny")
    value = uuid.uuid4().hex
    env = {**os.environ, dbt_forkserver.ENV_VAR: "1", "BEEP_TEST_MARKER": value}
    caller = subprocess.Popen([sys.executable, "-c", _FORKED_COPY, str(project), "1"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while (child := _dbt_child(value, caller.pid)) is None:
            assert caller.poll() is None and time.monotonic() < deadline, "dbt never started in a child of the fork server"
            time.sleep(0.1)
        assert caller.stdout is not None and caller.stdout.readline().strip() == "forked"
        server = {pid for pid, parent in _with_marker(value).items() if parent == caller.pid and pid != child}
        server -= {pid for pid in server if "beep.dbt_forkserver" not in Path(f"/proc/{pid}/cmdline").read_text()}
        caller.kill()
        assert _gone(child, 5), "dbt outlived its killed caller"
        assert server and all(_gone(pid, 5) for pid in server), "the fork server outlived its killed caller"
    finally:
        os.killpg(caller.pid, signal.SIGKILL)  # the forked copy too
        caller.wait(timeout=30)
