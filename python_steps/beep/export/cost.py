"""Estimated training tokens and cost of a fine-tune, from the export's own token counts and the
price list the project curates in ``seeds/model_prices.csv`` (read through :mod:`beep.llm.pricing`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from beep.llm.pricing import default_price_table


@dataclass(frozen=True)
class CostEstimate:
    base_model: str
    price_model: str  # the row of the price list that matched (longest prefix)
    tokens_per_epoch: int
    n_epochs: int
    training_per_1m: float

    @property
    def training_tokens(self) -> int:
        return self.tokens_per_epoch * self.n_epochs

    @property
    def usd(self) -> float:
        return self.training_tokens * self.training_per_1m / 1_000_000

    def describe(self) -> str:
        return (
            f"estimated training: {self.tokens_per_epoch:,} tokens/epoch x {self.n_epochs} epochs = "
            f"{self.training_tokens:,} tokens for {self.base_model} at ${self.training_per_1m:g}/1M "
            f"(price row {self.price_model!r}) = ${self.usd:,.2f}"
        )


def estimate_cost(project_dir: Path, base_model: str, tokens_per_epoch: int, n_epochs: int) -> CostEstimate:
    """The estimate for ``base_model``; fails clearly when the price list has no training price for it."""
    if n_epochs < 1:
        raise ValueError(f"--n-epochs must be at least 1, got {n_epochs}")
    row = default_price_table(project_dir).get(base_model)  # raises UnknownModelPrice saying what to add
    if row.training_per_1m is None:
        raise ValueError(
            f"seeds/model_prices.csv row {row.model!r} has no training price (training_per_1m is empty): "
            f"{base_model} cannot be fine-tuned there — pick another --base-model, or fill the price if your "
            "provider offers it"
        )
    return CostEstimate(base_model, row.model, tokens_per_epoch, n_epochs, row.training_per_1m)
