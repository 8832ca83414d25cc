"""Prices per model from ``seeds/model_prices.csv`` (USD per 1M tokens) and the cost of a usage.

Columns: model, input_per_1m, cached_input_per_1m, output_per_1m, training_per_1m (empty when the
model cannot be fine-tuned), batch_discount (multiplier for the Batch API, 0.5 = half price),
source_date, source. A model id matches the longest row that prefixes it, so dated snapshots
(``gpt-4o-mini-2024-07-18``) and fine-tuned ids (``ft:gpt-4o-mini-2024-07-18:org::abc``) find
their row. Prices change: check ``source_date`` and update the seed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (openai's types: 0.4 s to import, and an export or a report never calls a model)
    from beep.llm.calls import Usage

PRICE_COLUMNS = (
    "model",
    "input_per_1m",
    "cached_input_per_1m",
    "output_per_1m",
    "training_per_1m",
    "batch_discount",
    "source_date",
    "source",
)


class UnknownModelPrice(KeyError):
    """No row of the price seed matches a model."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class ModelPrice:
    """One row of the price seed."""

    model: str
    input_per_1m: float
    cached_input_per_1m: float
    output_per_1m: float
    training_per_1m: float | None
    batch_discount: float
    source_date: str

    def cost(self, usage: Usage, *, batch: bool = False) -> float:
        """USD for ``usage`` (cached prompt tokens at the cached price; Batch API discount if ``batch``)."""
        uncached = max(0, usage.prompt_tokens - usage.cached_tokens)
        dollars = (
            uncached * self.input_per_1m
            + usage.cached_tokens * self.cached_input_per_1m
            + usage.completion_tokens * self.output_per_1m
        ) / 1_000_000
        return dollars * (self.batch_discount if batch else 1.0)

    def training_cost(self, tokens: int) -> float | None:
        """USD to train on ``tokens`` tokens (all epochs), or None when the seed has no training price."""
        if self.training_per_1m is None:
            return None
        return tokens * self.training_per_1m / 1_000_000


@dataclass(frozen=True)
class PriceTable:
    """All rows of the price seed, looked up by longest model-id prefix."""

    rows: tuple[ModelPrice, ...]
    source: Path | None = None

    def find(self, model: str) -> ModelPrice | None:
        """The row for ``model``, or None."""
        best: ModelPrice | None = None
        for row in self.rows:
            if model == row.model or model.startswith(row.model + "-") or model.startswith(row.model + ":"):
                if best is None or len(row.model) > len(best.model):
                    best = row
        return best

    def get(self, model: str) -> ModelPrice:
        """The row for ``model``; raises :class:`UnknownModelPrice` saying how to add one."""
        row = self.find(model)
        if row is None:
            where = self.source or "seeds/model_prices.csv"
            raise UnknownModelPrice(
                f"no price for model {model!r} in {where}: add a row (USD per 1M tokens) for it, "
                f"or for a prefix of its id, before estimating costs."
            )
        return row

    def cost(self, model: str, usage: Usage, *, batch: bool = False) -> float:
        return self.get(model).cost(usage, batch=batch)


def _float(value: str, *, column: str, line: int, path: Path) -> float | None:
    value = (value or "").strip()
    if value == "":
        return None
    try:
        return float(value)
    except ValueError as err:
        raise ValueError(f"{path}:{line}: column {column} must be a number, got {value!r}") from err


def load_prices(path: Path) -> PriceTable:
    """Read the price seed; errors name the file, the line and the column."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"price table {path} not found (it ships in the repo as seeds/model_prices.csv)")
    rows: list[ModelPrice] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in PRICE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(PRICE_COLUMNS)}")
        for line, rec in enumerate(reader, start=2):
            required = {}
            for column in ("input_per_1m", "cached_input_per_1m", "output_per_1m", "batch_discount"):
                value = _float(rec[column], column=column, line=line, path=path)
                if value is None:
                    raise ValueError(f"{path}:{line}: column {column} is empty for model {rec['model']!r}")
                required[column] = value
            rows.append(
                ModelPrice(
                    model=rec["model"].strip(),
                    training_per_1m=_float(rec["training_per_1m"], column="training_per_1m", line=line, path=path),
                    source_date=rec["source_date"].strip(),
                    **required,
                )
            )
    return PriceTable(tuple(rows), path)


def default_price_table(project_dir: Path) -> PriceTable:
    """The repo's ``seeds/model_prices.csv``."""
    return load_prices(Path(project_dir) / "seeds" / "model_prices.csv")
