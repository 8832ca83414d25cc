"""The training cost estimate from seeds/model_prices.csv, and its clear failures."""

from __future__ import annotations

import pytest

from beep.config import PROJECT_DIR
from beep.export.cost import estimate_cost
from beep.llm.pricing import UnknownModelPrice, default_price_table


def test_estimate_uses_the_longest_matching_price_row() -> None:
    estimate = estimate_cost(PROJECT_DIR, "gpt-4.1-nano-2025-04-14", tokens_per_epoch=100_000, n_epochs=3)
    row = default_price_table(PROJECT_DIR).get("gpt-4.1-nano")
    assert estimate.price_model == "gpt-4.1-nano" and estimate.training_tokens == 300_000
    assert estimate.usd == pytest.approx(300_000 * row.training_per_1m / 1_000_000)
    assert "300,000 tokens" in estimate.describe()


def test_a_model_without_a_price_fails_clearly() -> None:
    with pytest.raises(UnknownModelPrice, match="no price for model 'my-llama'"):
        estimate_cost(PROJECT_DIR, "my-llama", 10, 1)
    with pytest.raises(ValueError, match="no training price"):
        estimate_cost(PROJECT_DIR, "gpt-5-mini", 10, 1)
    with pytest.raises(ValueError, match="--n-epochs"):
        estimate_cost(PROJECT_DIR, "gpt-4.1-nano", 10, 0)
