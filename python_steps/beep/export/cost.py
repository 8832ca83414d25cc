"""Estimated training tokens and cost of a fine-tune, from the export's own token counts and the
price list the project curates in ``seeds/model_prices.csv`` (read through :mod:`beep.llm.pricing`).

Epochs: given (``--n-epochs``, passed to the job as is), or else the number the provider picks when a
job has none. OpenAI documents how it picks them by the size of the training file (the
"Chat_finetuning_data_prep" guide of the OpenAI cookbook, "Pricing and default n_epochs estimate"):
3 epochs, but at least enough for about 100 examples seen (``min(25, 100 // n)`` when
``3 n < 100``) and at most about 25,000 examples seen (``max(1, 25000 // n)`` when ``3 n > 25000``).
So 154,780 training examples train 1 epoch, not 3. :func:`default_epochs` is that rule; Azure
OpenAI's fine-tuning is assumed to follow it too. The estimate says which epochs it assumed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from beep.llm.pricing import default_price_table

#: OpenAI's rule for the default number of epochs (see the module docstring).
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


def default_epochs(n_train: int) -> int:
    """The epochs OpenAI trains a job without ``n_epochs`` for, given its number of training examples."""
    if n_train < 1:
        return TARGET_EPOCHS
    if n_train * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_train)
    if n_train * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_train)
    return TARGET_EPOCHS


@dataclass(frozen=True)
class TokenStats:
    """The distribution of tokens per example (as OpenAI's data-preparation guide prints it)."""

    n: int
    min: int
    mean: float
    p95: float
    max: int

    def describe(self) -> str:
        return (f"tokens per training example: min {self.min:,}, mean {self.mean:,.1f}, p95 {self.p95:,.0f}, "
                f"max {self.max:,} ({self.n:,} examples)")


def token_stats(lengths: Sequence[int]) -> TokenStats | None:
    """min, mean, 95th percentile (linear interpolation, numpy's default) and max; None without examples."""
    if not lengths:
        return None
    ordered = sorted(lengths)
    position = 0.95 * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    p95 = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return TokenStats(len(ordered), ordered[0], sum(ordered) / len(ordered), p95, ordered[-1])


def token_stats_from_counts(counts: Mapping[int, int]) -> TokenStats | None:
    """:func:`token_stats` of the lengths ``counts`` tallies (length -> how many examples): the same
    numbers without holding one length per example (an export streams its examples)."""
    n = sum(counts.values())
    if not n:
        return None
    ordered = sorted(counts.items())
    position = 0.95 * (n - 1)
    low, high = math.floor(position), math.ceil(position)

    def at(index: int) -> int:
        seen = 0
        for length, k in ordered:
            seen += k
            if index < seen:
                return length
        return ordered[-1][0]

    p95 = at(low) + (at(high) - at(low)) * (position - low)
    return TokenStats(n, ordered[0][0], sum(length * k for length, k in ordered) / n, p95, ordered[-1][0])


@dataclass(frozen=True)
class CostEstimate:
    base_model: str
    price_model: str  # the row of the price list that matched (longest prefix)
    tokens_per_epoch: int
    n_epochs: int
    training_per_1m: float
    #: How n_epochs was chosen: given, or the provider's default for this many training examples.
    epochs_note: str = ""

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
            + (f"; {self.epochs_note}" if self.epochs_note else "")
        )


def estimate_cost(
    project_dir: Path,
    base_model: str,
    tokens_per_epoch: int,
    n_epochs: int | None = None,
    *,
    n_train: int | None = None,
) -> CostEstimate:
    """The estimate for ``base_model``; fails clearly when the price list has no training price for it.

    ``n_epochs`` None: the provider's default for ``n_train`` training examples (:func:`default_epochs`)."""
    if n_epochs is None:
        if n_train is None:
            raise ValueError("estimate_cost needs n_epochs, or n_train to apply the provider's default epochs")
        n_epochs = default_epochs(n_train)
        note = (f"{n_epochs} epoch{'s' if n_epochs != 1 else ''}: the provider's default for {n_train:,} training "
                f"examples (OpenAI's rule: 3, within about {MIN_TARGET_EXAMPLES}-{MAX_TARGET_EXAMPLES:,} examples "
                "seen in all); --n-epochs sets them")
    else:
        note = f"{n_epochs} epoch{'s' if n_epochs != 1 else ''} as given (--n-epochs)"
    if n_epochs < 1:
        raise ValueError(f"--n-epochs must be at least 1, got {n_epochs}")
    row = default_price_table(project_dir).get(base_model)  # raises UnknownModelPrice saying what to add
    if row.training_per_1m is None:
        raise ValueError(
            f"seeds/model_prices.csv row {row.model!r} has no training price (training_per_1m is empty): "
            f"{base_model} cannot be fine-tuned there — pick another --base-model, or fill the price if your "
            "provider offers it"
        )
    return CostEstimate(base_model, row.model, tokens_per_epoch, n_epochs, row.training_per_1m, note)
