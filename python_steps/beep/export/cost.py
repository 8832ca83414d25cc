"""Estimated training tokens and cost of a fine-tune, from the export's own token counts and the
price list the project curates in ``seeds/model_prices.csv`` (USD per million tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

PRICES_SEED = Path("seeds") / "model_prices.csv"


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


def training_prices(project_dir: Path) -> dict[str, float | None]:
    """``model -> training USD per 1M tokens`` (None where the list gives none) from the seed file."""
    path = project_dir / PRICES_SEED
    if not path.exists():
        raise FileNotFoundError(f"the price list {path} is missing: it ships with the repository (seeds/)")
    con = duckdb.connect()
    try:
        rows = con.execute(
            "select model, training_per_1m from read_csv(?, header = true, all_varchar = true)", [str(path)]
        ).fetchall()
    except duckdb.Error as err:
        raise ValueError(f"cannot read {path} (expected columns model, training_per_1m): {err}") from err
    finally:
        con.close()
    prices: dict[str, float | None] = {}
    for model, price in rows:
        if model is None:
            continue
        try:
            prices[model.strip()] = float(price) if price not in (None, "") else None
        except ValueError as err:
            raise ValueError(f"{path}: training_per_1m of {model!r} is {price!r}, not a number") from err
    return prices


def estimate_cost(project_dir: Path, base_model: str, tokens_per_epoch: int, n_epochs: int) -> CostEstimate:
    """The estimate for ``base_model``; fails clearly when the price list has no training price for it."""
    if n_epochs < 1:
        raise ValueError(f"--n-epochs must be at least 1, got {n_epochs}")
    prices = training_prices(project_dir)
    matches = [m for m in prices if base_model == m or base_model.startswith(m + "-")]
    if not matches:
        raise ValueError(
            f"{PRICES_SEED} has no price for base model {base_model!r}: add a row (model,...,training_per_1m,...) "
            f"with the provider's training price per million tokens, then `dbt seed` — known: {', '.join(sorted(prices))}"
        )
    best = max(matches, key=len)
    price = prices[best]
    if price is None:
        raise ValueError(
            f"{PRICES_SEED} row {best!r} has no training price: that model cannot be fine-tuned "
            "(or fill training_per_1m if your provider offers it)"
        )
    return CostEstimate(base_model, best, tokens_per_epoch, n_epochs, price)
