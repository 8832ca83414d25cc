"""The threshold `beep slack serve` alerts at when not told (`--min-probability`): the served model's
operating point from its latest evaluation with an alert replay, else 0.3. `beep predict` shows what
the app would do with the same threshold."""

from __future__ import annotations

from dataclasses import dataclass

from beep.config import Paths

#: The threshold without an alert replay of the model (or without a DuckDB file to read it from).
FALLBACK = 0.3


@dataclass(frozen=True)
class Threshold:
    value: float
    #: where it comes from, in words ("the operating point of evaluation ev-…"); None when nothing
    #: could be read at all (no DuckDB file or no model yet: the command says what is missing)
    source: str | None
    #: the evaluation run whose operating point it is
    eval_run_id: str | None = None
    #: True when it is the fallback because the file was held by another process
    busy: bool = False


def served_threshold(paths: Paths, model: str | None) -> Threshold:
    """The model's (default: the latest) operating point, or :data:`FALLBACK` and why."""
    from beep.db import DatabaseBusy, connect
    from beep.evaluate.store import operating_point
    from beep.predictors.models import latest_model, resolve_model

    try:
        with connect(paths.duckdb, read_only=True) as con:
            name = resolve_model(con, model or latest_model(con)).name
            found = operating_point(con, name)
    except DatabaseBusy as err:
        return Threshold(FALLBACK, f"the operating point could not be read ({err}); pass --min-probability to "
                                   "choose the threshold yourself", busy=True)
    except Exception:  # noqa: BLE001 - no DB or no model yet: the command says what is missing
        return Threshold(FALLBACK, None)
    if found is None:
        return Threshold(FALLBACK, "no alert replay of this model yet: `beep evaluate` chooses an operating point")
    value, run_id = found
    return Threshold(value, f"the operating point of evaluation {run_id}", eval_run_id=run_id)
