"""beep.worker: a step in a worker process hands back its result, large ones included, without
the worker mistaking the parent's normal end for its death; errors come back as StepError."""

from __future__ import annotations

import pytest

from beep.worker import StepError, run_in_worker


def test_a_large_result_comes_back_whole_and_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    # far more than a pipe's buffer: the worker is still writing when the parent has read it all
    value = run_in_worker("builtins:dict", {"payload": "x" * 3_000_000, "n": 7})
    assert value == {"payload": "x" * 3_000_000, "n": 7}
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Terminated" not in err, err


def test_an_error_in_the_step_comes_back_as_step_error() -> None:
    with pytest.raises(StepError) as caught:
        run_in_worker("json:loads", {"s": "{not json"})
    assert caught.value.type_name == "JSONDecodeError"
