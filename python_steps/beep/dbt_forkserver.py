"""A dbt fork server: one process that imports dbt once and forks a child for each dbt command.

Starting dbt costs about 3 s of CPU before it reads the project (importing dbt-core, its adapters
and their dependencies: `python -X importtime -c "import dbt.cli.main"`). A process that runs dbt
many times (the test suite: about 150 dbt commands, most of its CPU) pays that once per process
with ``BEEP_DBT_FORKSERVER=1``: :func:`beep.dbt_runner.run_dbt` then hands each DuckDB command to
this server, which forks a child that runs exactly what the ``dbt`` console script runs
(``dbt.cli.main:cli``) with the command's arguments, environment, working folder and output.
Without the variable (the default, and every `beep` command) dbt runs as a plain subprocess.

What a child is, in the terms of the plain subprocess it replaces:

- its standard output and error are the caller's (passed over the socket: ``socket.send_fds``), so
  a quiet call reads dbt's output from a pipe and a loud one writes to the caller's terminal;
- its environment is the caller's for that call, set before dbt's command line is read (dbt and its
  adapters read the environment when they run, not when they are imported);
- it dies with the server (``PR_SET_PDEATHSIG``), and the server with the process that started it,
  so a killed caller leaves no dbt behind, as the plain subprocess dies with its caller; a caller
  interrupted while it waits kills the child (SIGKILL, as ``subprocess.run`` does) and goes on
  unwinding;
- its exit status comes back as ``subprocess`` reports one (negative: the signal that ended it).

The server serves one command at a time per caller process (a lock); a second thread asking while
one waits runs dbt as a plain subprocess instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The environment variable that turns the fork server on (``1``).
ENV_VAR = "BEEP_DBT_FORKSERVER"
#: The largest request (arguments and environment as JSON) the socket carries in one message.
_MAX_REQUEST = 1 << 20
_HEADER = struct.Struct("!q")


def wanted(target: str) -> bool:
    """Whether a dbt command on ``target`` goes through the fork server (DuckDB only: Spark's JVM
    start dwarfs dbt's imports)."""
    return os.environ.get(ENV_VAR) == "1" and target == "duckdb" and sys.platform.startswith("linux")


@dataclass
class _Server:
    """The server process of this caller process and the socket to it."""

    proc: subprocess.Popen[bytes]
    sock: socket.socket
    pid_of_caller: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alive(self) -> bool:
        return self.pid_of_caller == os.getpid() and self.proc.poll() is None


class _Servers:
    """The fork server of the current process, started on first use (a forked caller starts its own)."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._guard = threading.Lock()

    def get(self) -> _Server:
        with self._guard:
            if self._server is None or not self._server.alive():
                self._server = _start()
            return self._server


_SERVERS = _Servers()


def _start() -> _Server:
    from beep.worker import die_with_parent

    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "beep.dbt_forkserver", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        preexec_fn=die_with_parent,  # noqa: PLW1509 - only a prctl call, safe between fork and exec
        stdin=subprocess.DEVNULL,
    )
    theirs.close()
    return _Server(proc, mine, os.getpid())


def run(args: Sequence[str], *, env: Mapping[str, str], cwd: Path, quiet: bool) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <args>`` in a child of the fork server; what ``subprocess.run`` would return for the
    plain ``dbt`` command (``stdout`` holds dbt's output, stderr merged, when ``quiet``)."""
    server = _SERVERS.get()
    if not server.lock.acquire(blocking=False):  # another thread of this process waits on the server
        cmd = [str(Path(sys.executable).with_name("dbt")), *args]
        return subprocess.run(cmd, env=dict(env), cwd=cwd, text=True, check=False,
                              stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
    try:
        return _run(server, args, env=env, cwd=cwd, quiet=quiet)
    finally:
        server.lock.release()


def _run(server: _Server, args: Sequence[str], *, env: Mapping[str, str], cwd: Path,
         quiet: bool) -> subprocess.CompletedProcess[str]:
    request = json.dumps({"args": list(args), "env": dict(env), "cwd": str(cwd)}).encode()
    if len(request) > _MAX_REQUEST:
        raise RuntimeError(f"a dbt command of {len(request):,} bytes of arguments and environment: more than the fork "
                           f"server takes ({_MAX_REQUEST:,}); unset {ENV_VAR}")
    read_end = None
    if quiet:
        read_end, write_end = os.pipe()
        fds = [write_end, write_end]
    else:
        sys.stdout.flush()
        sys.stderr.flush()
        fds = [1, 2]
    try:
        try:
            socket.send_fds(server.sock, [request], fds)
        finally:
            if quiet:
                os.close(write_end)
        pid = _read_number(server)
    except BaseException:  # interrupted before the child's pid came back: the server is out of step
        server.proc.kill()  # its child dies with it (PR_SET_PDEATHSIG); the next call starts another
        server.proc.wait()
        if read_end is not None:
            os.close(read_end)
        raise
    output: list[bytes] = []
    try:
        if read_end is not None:
            with os.fdopen(read_end, "rb") as stream:
                read_end = None
                while chunk := stream.read(65536):
                    output.append(chunk)
        code = _read_number(server)
    except BaseException:  # an interruption (Terminated, Ctrl-C) while dbt runs: stop it, as subprocess.run does
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _read_number(server)  # its exit status: the server answers every request before the next
        raise
    finally:
        if read_end is not None:
            os.close(read_end)
    stdout = b"".join(output).decode("utf-8", errors="replace") if quiet else None
    return subprocess.CompletedProcess(["dbt", *args], code, stdout, None)


def _read_number(server: _Server) -> int:
    data = server.sock.recv(_HEADER.size)
    if len(data) != _HEADER.size:
        raise RuntimeError(f"the dbt fork server (pid {server.proc.pid}) stopped answering "
                           f"(exit {server.proc.poll()}); unset {ENV_VAR} to run dbt as a plain subprocess")
    return int(_HEADER.unpack(data)[0])


# --- the server -----------------------------------------------------------------------------------


def _serve(sock: socket.socket) -> None:
    """Answer requests until the caller closes its end: for each, fork a child running dbt, send its
    pid, wait for it and send its exit status."""
    from dbt.cli.main import cli  # noqa: F401 - imported once here: what every child inherits

    import dbt.adapters.duckdb  # noqa: F401

    from beep.worker import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the caller and the child, not the server
    while True:
        try:
            request, fds, _flags, _addr = socket.recv_fds(sock, _MAX_REQUEST, 2)
        except OSError:
            return
        if not request:  # the caller closed its end (it exited)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: exits as the dbt command would (its atexit and multiprocessing clean-up run)
            sock.close()
            die_with_parent(signal.SIGTERM)
            sys.exit(_child(json.loads(request), fds))
        for fd in fds:
            os.close(fd)
        sock.send(_HEADER.pack(pid))
        _, status = os.waitpid(pid, 0)
        sock.send(_HEADER.pack(os.waitstatus_to_exitcode(status)))


def _child(request: dict, fds: list[int]) -> int:
    """Run dbt as the ``dbt`` console script does, with the request's output, environment, folder and
    arguments; its exit status."""
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in set(fds):
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["dbt", *request["args"]]
        from dbt.cli.main import cli

        try:
            cli.main(args=request["args"], prog_name="dbt")
            return 0
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt:
        return 130
    except BaseException as err:  # noqa: BLE001 - the child must exit, whatever dbt raised
        print(f"dbt fork server child: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    _serve(socket.socket(fileno=int(sys.argv[1])))
