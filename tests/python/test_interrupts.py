"""beep.interrupts: a stopping signal that lands while DuckDB runs a query still counts as an
interruption. DuckDB polls for signals during a query, stops it when the handler raises
``Terminated`` and raises its own "Query interrupted" error instead; a step that took that for a
failure recorded a SIGTERM'd evaluation ``failed`` (a CI run caught it)."""

from __future__ import annotations

import os
import signal
import threading

import duckdb
import pytest

from beep.interrupts import Terminated, interruption, signal_seen, signals_as_interrupts
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


def test_a_signal_during_a_duckdb_query_is_an_interruption() -> None:
    with signals_as_interrupts():
        err = _query_stopped_by(signal.SIGTERM)
        assert signal_seen() == signal.SIGTERM
        stopped = interruption(err)
    assert not isinstance(err, KeyboardInterrupt)  # DuckDB dropped the Terminated the handler raised
    assert isinstance(stopped, Terminated) and stopped.signum == signal.SIGTERM and stopped.exit_code == 143
    assert stopped.__cause__ is err
    assert signal_seen() is None  # the handlers are put back when the block ends


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
    with pytest.raises(Terminated) as caught:
        run_in_worker(f"{__name__}:stopped_during_a_query", {})
    assert caught.value.signum == signal.SIGTERM
