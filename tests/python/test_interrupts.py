"""beep.interrupts: a stopping signal that lands while DuckDB runs a query still stops the step, as
an interruption. DuckDB polls for signals during a query, stops it when the handler raises
``Terminated`` and raises its own "Query interrupted" error instead (a step that took that for a
failure recorded a SIGTERM'd evaluation ``failed``: a CI run caught it); now and then it drops the
exception and runs the query on without polling again (one run in six under load: the query ran for
5 minutes). A signal swallowed by a call that goes on is delivered again, and a call that goes on
after that ends the process with 128 + the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from beep.interrupts import EXIT_SECONDS, REDELIVER_SECONDS, Terminated, interruption, signal_seen, signals_as_interrupts
from beep.worker import run_in_worker

LONG_QUERY = "select count(*) from range(100000000000) t(x) where x % 7 = 3"


def _query_stopped_by(signum: int) -> BaseException:
    con = duckdb.connect()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signum))
    timer.start()
    try:
        con.execute(LONG_QUERY).fetchall()
    except BaseException as err:  # noqa: BLE001 - what DuckDB raises is the point
        return err
    finally:
        timer.cancel()
        con.close()
    raise AssertionError("the query was not stopped")


def test_duckdbs_error_after_a_signal_is_an_interruption() -> None:
    """What a step sees when the signal lands in a query (the worker test below makes it happen)."""
    with signals_as_interrupts():
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert signal_seen() == signal.SIGTERM
        err = RuntimeError("Query interrupted")
        stopped = interruption(err)
    assert isinstance(stopped, Terminated) and stopped.signum == signal.SIGTERM and stopped.exit_code == 143
    assert stopped.__cause__ is err
    assert signal_seen() is None  # the handlers are put back when the block ends


def test_a_signal_that_a_call_swallows_is_delivered_again() -> None:
    """What DuckDB sometimes does, in Python: the call on the line the signal lands on drops the
    exception and goes on. Seconds later the signal is delivered again, and this time it stops it.
    (The loop that naps is one line, so wherever in it the signal lands, that is the line it goes on
    with.)"""
    swallowed: list[Terminated] = []
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    with pytest.raises(Terminated) as caught, signals_as_interrupts():
        while True:
            try:
                while time.monotonic() - started < 30: time.sleep(0.05)  # noqa: E701 - one line, see above
                break
            except Terminated as err:
                if swallowed:
                    raise
                swallowed.append(err)  # dropped, once, by a call that goes on
    took = time.monotonic() - started
    assert len(swallowed) == 1 and caught.value.signum == signal.SIGTERM
    assert REDELIVER_SECONDS < took < REDELIVER_SECONDS + 5, took


def test_a_later_signal_is_still_ignored_while_the_first_is_handled() -> None:
    """The clean-up after a stop is not cut short by a second Ctrl-C, nor by a re-delivery: once the
    exception left the line it landed on, nothing is delivered again."""
    with pytest.raises(Terminated), signals_as_interrupts():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        finally:
            cleanup_started = time.monotonic()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(REDELIVER_SECONDS + 0.5)  # would be cut short by a second Terminated
            assert time.monotonic() - cleanup_started >= REDELIVER_SECONDS + 0.5


def test_without_a_signal_the_same_error_is_a_failure() -> None:
    with signals_as_interrupts():
        assert interruption(RuntimeError("Query interrupted")) is None
        assert interruption(ValueError("bad")) is None
        ctrl_c = KeyboardInterrupt()
        assert interruption(ctrl_c) is ctrl_c
    assert interruption(RuntimeError("Query interrupted")) is None


def stopped_during_a_query() -> None:
    """A step whose DuckDB query gets SIGTERM from outside (run in a worker by the test below)."""
    raise _query_stopped_by(signal.SIGTERM)  # what the query raised, as a step's query would


def test_a_worker_stopped_during_a_query_reports_an_interruption() -> None:
    """In a worker (this test process must not be the one DuckDB may leave running, which then exits):
    DuckDB's error or, when it swallowed the signal, the exit with 143 both come back as Terminated."""
    started = time.monotonic()
    with pytest.raises(Terminated) as caught:
        run_in_worker(f"{__name__}:stopped_during_a_query", {})
    assert caught.value.signum == signal.SIGTERM
    assert time.monotonic() - started < EXIT_SECONDS + 10


def test_a_call_that_never_stops_ends_the_process_with_128_plus_the_signal(tmp_path: Path) -> None:
    """A call that drops every interruption (DuckDB once it stopped polling): the process says so and
    exits 143 about EXIT_SECONDS after SIGTERM, without its clean-up, as SIGKILL would end it."""
    script = tmp_path / "stuck.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from beep.interrupts import Terminated, signals_as_interrupts
        said = False
        with signals_as_interrupts():
            while True:
                try:  # one line: the signal lands on it, in the print or in the nap
                    said = said or print("ready", flush=True) or True; time.sleep(0.05)
                except Terminated:
                    pass
        print("clean-up ran", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=EXIT_SECONDS + 20)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert EXIT_SECONDS - 0.5 < took < EXIT_SECONDS + 10, took
    assert "stopped by SIGTERM" in err and "without recording the run" in err and "stuck.py" in err, err
    assert "clean-up ran" not in out
