"""A dbt fork server: one process that imports dbt once and forks a child for each dbt command.

Starting dbt costs 2-3 s of CPU before it reads the project (importing dbt-core, its adapters and
their dependencies: `python -X importtime -c "import dbt.cli.main"`). A process that runs dbt many
times (the test suite: 95 dbt commands) pays that once with ``BEEP_DBT_FORKSERVER=1``:
:func:`beep.dbt_runner.run_dbt` then hands each DuckDB command to this server, which forks a child
that runs what the ``dbt`` console script runs (``dbt.cli.main:cli``) with the command's arguments,
environment, working folder and output. Without the variable (the default, and what every `beep`
command ships with) dbt runs as a plain subprocess.

How a command travels, and why nothing outlives its caller:

- **One connection per command.** The caller makes a socket pair for the command and sends one end
  to the server over the control socket, with its standard output and error (``socket.send_fds``);
  the request (arguments, environment, folder: any size) follows on that connection. The server
  forks the child, then waits for whichever comes first: the child ends (its exit status, as
  ``subprocess`` reports one, goes back on the connection) or the caller's end of the connection
  closes or shuts down (the caller was interrupted or died: the server SIGKILLs the child and reaps
  it). The caller never signals a pid, and a connection that went wrong is never reused.
- **Signals.** The server ignores SIGINT, SIGTERM and SIGHUP, so a signal to the whole process group
  (Ctrl-C, a closed terminal) reaches the caller, which unwinds as from any subprocess (beep.interrupts)
  and closes the connection; the child gets them as dbt would, with the default dispositions.
- **Deaths.** A child dies with the server (``PR_SET_PDEATHSIG``, set by the single-threaded server's
  child, so it is not tied to a short-lived thread). The server watches its caller's pid (a pidfd):
  when the caller ends, however (killed, or exited while a forked copy of it still holds the sockets),
  the server kills the command it runs and exits; it also exits when the control socket closes, and
  is SIGKILLed when the caller's main thread ends, if it was started from there.

The server serves one command at a time; a second thread of the caller asking while one runs gets
``None`` (:func:`run`), and :func:`beep.dbt_runner.run_dbt` runs that command as a plain subprocess.

**Warming up** (``in_server=True``, :func:`beep.dbt_runner.warm_dbt_forkserver`): a process that will
run many dbt commands (a test worker) can have the server run one command itself, in its own process,
before it forks any child. dbt builds much of what a command needs lazily, once per process: the
(de)serializers of its manifest's classes, their JSON schemas, compiled templates. After the server
parsed a scratch copy of the project (twice: the second reads the first's saved parse), each child
starts with them: `dbt build --select stg_slack__users` on the sample took 1.2-1.5 s of CPU in a child
of a warmed server against 3.4-3.8 s in a cold one (in-process timings, 2 runs each). The server
restores its output, folder and environment afterwards; dbt resets its flags, adapters and loggers at
the start of every command, as it does when one process invokes it many times (``dbtRunner``). The
command must leave no thread running in the server, or a forked child could wait forever on a lock or
pool whose thread it lacks: the parse runs without dbt's static parser (dbt_extractor keeps a native
thread pool: a child of a process that used it hangs in it) and never opens the DuckDB file (DuckDB's
threads). A server left with a thread exits after answering, and the next command starts a new one.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from beep.worker import die_with_parent

#: The environment variable that turns the fork server on (``1``).
ENV_VAR = "BEEP_DBT_FORKSERVER"
_LENGTH = struct.Struct("!Q")
_STATUS = struct.Struct("!q")
_STOPPED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ForkServerError(RuntimeError):
    """The fork server failed to run a command (not dbt failing: that is an exit status)."""


def wanted(target: str) -> bool:
    """Whether a dbt command on ``target`` goes through the fork server (DuckDB only: Spark's JVM
    start dwarfs dbt's imports)."""
    return os.environ.get(ENV_VAR) == "1" and target == "duckdb" and sys.platform.startswith("linux")


@dataclass
class _Server:
    """The server process of this caller process and its control socket."""

    proc: subprocess.Popen[bytes]
    control: socket.socket
    pid_of_caller: int
    busy: threading.Lock = field(default_factory=threading.Lock)
    #: set when the server said it exits after the command it ran in its own process (a thread was left)
    exiting: bool = False

    def alive(self) -> bool:
        return self.pid_of_caller == os.getpid() and self.proc.poll() is None

    def stop(self) -> None:
        self.control.close()
        if self.pid_of_caller == os.getpid() and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class _Servers:
    """The fork server of the current process, started on first use (a forked caller starts its own)."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._guard = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._guard = threading.Lock()  # a lock another thread held at the fork would never be released
        self._server = None  # the parent's server answers the parent only

    def get(self) -> _Server:
        with self._guard:
            if self._server is None or not self._server.alive():
                self._server = _start()
            return self._server

    def drop(self, server: _Server) -> None:
        with self._guard:
            server.stop()
            if self._server is server:
                self._server = None


_SERVERS = _Servers()


def _die_with_caller() -> None:
    """The server's PR_SET_PDEATHSIG: SIGKILL (it ignores SIGTERM, see the module docstring)."""
    die_with_parent(signal.SIGKILL)


def _start() -> _Server:
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    on_main_thread = threading.current_thread() is threading.main_thread()
    proc = subprocess.Popen(
        # -P: no caller's folder on sys.path (a file there would shadow a module dbt imports later)
        [sys.executable, "-P", "-m", "beep.dbt_forkserver", str(theirs.fileno()), str(os.getpid())],
        pass_fds=[theirs.fileno()],
        # PR_SET_PDEATHSIG fires when the thread that started the server ends: only the main thread's end
        # is the process's; started from another thread, the server's watch of the caller's pid ends it
        preexec_fn=_die_with_caller if on_main_thread else None,  # noqa: PLW1509 - only a prctl call
        stdin=subprocess.DEVNULL,
    )
    theirs.close()
    return _Server(proc, mine, os.getpid())


def run(args: Sequence[str], *, env: Mapping[str, str], cwd: Path,
        quiet: bool, in_server: bool = False) -> subprocess.CompletedProcess[str] | None:
    """Run ``dbt <args>`` in a child of the fork server: what ``subprocess.run`` would return for the
    plain ``dbt`` command (``stdout`` holds dbt's output, stderr merged, when ``quiet``). None when the
    server is busy with another thread's command (run it as a plain subprocess then).

    ``in_server``: the server runs the command in its own process instead (warming up: see the module
    docstring); it cannot be interrupted, so use it only for a short command on scratch files."""
    server = _SERVERS.get()
    if not server.busy.acquire(blocking=False):
        return None
    try:
        if server.control.fileno() == -1 or not server.alive():  # another thread dropped it meanwhile
            return None
        proc = _run(server, args, env=env, cwd=cwd, quiet=quiet, in_server=in_server)
        if server.exiting:  # the next command starts a new server
            _SERVERS.drop(server)
        return proc
    except ForkServerError:
        _SERVERS.drop(server)  # a server that failed once is not asked again
        raise
    finally:
        server.busy.release()


def _run(server: _Server, args: Sequence[str], *, env: Mapping[str, str], cwd: Path,
         quiet: bool, in_server: bool) -> subprocess.CompletedProcess[str]:
    request = json.dumps({"args": list(args), "env": dict(env), "cwd": str(cwd), "in_server": in_server}).encode()
    conn, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    read_end = write_end = None
    try:
        if quiet:
            read_end, write_end = os.pipe()
            out_fds = [write_end, write_end]
        else:
            sys.stdout.flush()
            sys.stderr.flush()
            out_fds = [1, 2]
        try:
            socket.send_fds(server.control, [b"r"], [*out_fds, theirs.fileno()])
        except OSError as err:
            raise ForkServerError(f"the dbt fork server (pid {server.proc.pid}) is gone ({err}); "
                                  f"unset {ENV_VAR} to run dbt as a plain subprocess") from err
        finally:
            theirs.close()
            if write_end is not None:
                os.close(write_end)
                write_end = None
        try:
            conn.sendall(_LENGTH.pack(len(request)) + request)
        except OSError as err:
            raise ForkServerError(f"the dbt fork server (pid {server.proc.pid}) hung up ({err}); "
                                  f"unset {ENV_VAR} to run dbt as a plain subprocess") from err
        output = ""
        if read_end is not None:
            # text as subprocess.run(text=True) reads it: the locale's encoding, universal newlines
            with os.fdopen(read_end, "r") as stream:
                read_end = None
                output = stream.read()
        status = _recv_exact(conn, _STATUS.size)
        if len(status) != _STATUS.size:
            raise ForkServerError(f"the dbt fork server (pid {server.proc.pid}) ended during `dbt {' '.join(args[:1])}` "
                                  f"(exit {server.proc.poll()}); unset {ENV_VAR} to run dbt as a plain subprocess")
        code = int(_STATUS.unpack(status)[0])
        if in_server:  # then whether the server serves on (1) or exits (0: a thread was left in it)
            server.exiting = _recv_exact(conn, 1) != b"1"
    except BaseException:
        # interrupted (or failed) before the child's status came back: hang up, so the server kills the
        # child, and wait for it to have done so, as subprocess.run waits for the child it kills
        try:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(10)
            _recv_exact(conn, _STATUS.size)
        except (OSError, ValueError):
            pass
        raise
    finally:
        conn.close()
        for fd in (read_end, write_end):
            if fd is not None:
                os.close(fd)
    return subprocess.CompletedProcess(["dbt", *args], code, output if quiet else None, None)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """``n`` bytes from ``sock``, fewer only when it closed first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


# --- the server -----------------------------------------------------------------------------------


def _serve(control: socket.socket, caller_pid: int) -> None:
    """Run commands until the caller (``caller_pid``) ends or its control socket closes."""
    from dbt.cli.main import cli  # noqa: F401 - imported once here: what every child inherits

    import dbt.adapters.duckdb  # noqa: F401

    for sig in _STOPPED:  # the caller decides what a stopping signal does to its command
        signal.signal(sig, signal.SIG_IGN)
    try:
        caller = os.pidfd_open(caller_pid)
    except ProcessLookupError:  # the caller ended while dbt was imported
        return
    if os.getppid() != caller_pid:  # ... and its pid was taken by another process since
        return
    idle = select.poll()
    idle.register(control.fileno(), select.POLLIN | select.POLLHUP)
    idle.register(caller, select.POLLIN)
    while True:
        if caller in {fd for fd, _ in idle.poll()}:  # the caller ended
            return
        try:
            marker, fds, _flags, _addr = socket.recv_fds(control, 1, 3)
        except OSError:
            return
        if not marker:  # the caller exited or was killed
            return
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        conn = socket.socket(fileno=fds[2])
        try:
            if not _one(control, conn, fds[:2], caller):
                return
        finally:
            conn.close()


def _one(control: socket.socket, conn: socket.socket, out_fds: list[int], caller: int) -> bool:
    """One command: read its request from ``conn``, fork the child, answer its exit status, or kill it
    when the caller hangs up or ends first (``caller``: its pidfd). Closes ``out_fds`` (the caller's
    output) once the child has them. False when the caller ended (the server exits)."""
    request = _request(conn)
    if request is None:
        for fd in set(out_fds):
            os.close(fd)
        return True
    sys.stdout.flush()
    sys.stderr.flush()
    if request.get("in_server"):
        code = _in_server(request, out_fds)
        for fd in set(out_fds):
            os.close(fd)
        # a command that left a thread running (DuckDB's, dbt_extractor's) makes every later fork unsafe:
        # a child would wait on a lock or pool whose thread it does not have. The server ends instead, and
        # says so after the status, so that the caller's next command starts a new one (cold)
        serves_on = len(os.listdir(f"/proc/{os.getpid()}/task")) == 1
        try:
            conn.sendall(_STATUS.pack(code) + (b"1" if serves_on else b"0"))
        except OSError:
            pass
        return serves_on
    server_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: exits as the dbt command would (its atexit and multiprocessing clean-up run)
        die_with_parent(signal.SIGKILL)
        if os.getppid() != server_pid:  # the server died between the fork and the prctl
            os._exit(1)
        control.close()
        conn.close()
        sys.exit(_child(request, out_fds))
    for fd in set(out_fds):  # the child has them: the caller's pipe ends when the child does
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(conn.fileno(), select.POLLIN | select.POLLHUP)
        poller.register(caller, select.POLLIN)
        caller_ended = False
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if pidfd in ready:
                break
            if conn.fileno() in ready or caller in ready:  # the caller hung up (interrupted) or ended: stop dbt
                caller_ended = caller in ready
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                break
        _, status = os.waitpid(pid, 0)
        try:
            conn.sendall(_STATUS.pack(os.waitstatus_to_exitcode(status)))
        except OSError:
            pass
        return not caller_ended
    finally:
        os.close(pidfd)


def _request(conn: socket.socket) -> dict | None:
    """The command's request (length, then JSON), or None when the caller hung up before sending it."""
    header = _recv_exact(conn, _LENGTH.size)
    if len(header) != _LENGTH.size:
        return None
    body = _recv_exact(conn, _LENGTH.unpack(header)[0])
    try:
        request = json.loads(body)
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def _in_server(request: dict, out_fds: list[int]) -> int:
    """Run the request's dbt command in the server's own process (warming up), then restore the server's
    output, folder, environment and arguments; the command's exit status."""
    # dbt's locks start multiprocessing's resource tracker, a process that lives as long as the server:
    # started here, before the command's output is in fds 1 and 2, it holds the server's own output,
    # not the caller's pipe (which would then never end)
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    saved_fds = [os.dup(1), os.dup(2)]
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    try:
        os.dup2(out_fds[0], 1)
        os.dup2(out_fds[1], 2)
        return _dbt_main(request)
    except Exception as err:  # noqa: BLE001 - warming up is best effort: the server serves on either way
        print(f"dbt fork server: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        _close_dbt_logs()
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv


def _dbt_main(request: dict) -> int:
    """What the ``dbt`` console script runs, in the request's folder, with its environment and arguments
    (output already in fds 1 and 2); its exit status."""
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


def _close_dbt_logs() -> None:
    """Close the files dbt's loggers hold (its dbt.log) and forget them: dbt replaces its loggers at the
    next command without closing them, and every child would inherit the open file."""
    try:
        from dbt_common.events.event_manager_client import cleanup_event_logger, get_event_manager

        for logger in list(getattr(get_event_manager(), "loggers", [])):
            python_logger = getattr(logger, "_python_logger", None)
            for handler in list(getattr(python_logger, "handlers", [])):
                handler.close()
                python_logger.removeHandler(handler)
        cleanup_event_logger()
    except Exception:  # noqa: BLE001 - best effort: an open log file costs a file descriptor, nothing else
        pass


def _child(request: dict, out_fds: list[int]) -> int:
    """Run dbt as the ``dbt`` console script does, with the request's output, environment, folder and
    arguments; its exit status."""
    try:
        for sig in _STOPPED:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        os.dup2(out_fds[0], 1)
        os.dup2(out_fds[1], 2)
        for fd in set(out_fds):
            if fd > 2:
                os.close(fd)
        return _dbt_main(request)
    except KeyboardInterrupt:
        return 130
    except BaseException as err:  # noqa: BLE001 - the child must exit, whatever dbt raised
        print(f"dbt fork server child: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    _serve(socket.socket(fileno=int(sys.argv[1])), int(sys.argv[2]))
