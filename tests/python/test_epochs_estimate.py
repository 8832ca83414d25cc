"""The fine-tuning cost estimate assumes the epochs the provider will train (OpenAI's documented
default by training-file size) or the ones given, says which, and `beep export` prints the token
length distribution of the training examples."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from beep.cli import app
from beep.config import PROJECT_DIR
from beep.export.cost import default_epochs, estimate_cost, token_stats


@pytest.mark.parametrize(("n_train", "epochs"), [
    (1, 25), (4, 25), (10, 10), (30, 3), (34, 3), (1_000, 3), (8_333, 3),  # 3 epochs within 100..25,000 seen
    (8_334, 2), (12_500, 2), (12_501, 1), (154_780, 1),                    # fewer for large files
])
def test_default_epochs_follow_openais_rule(n_train: int, epochs: int) -> None:
    assert default_epochs(n_train) == epochs


def test_the_estimate_uses_the_providers_default_unless_epochs_are_given() -> None:
    default = estimate_cost(PROJECT_DIR, "gpt-4.1-nano", tokens_per_epoch=9_000_000, n_train=154_780)
    three = estimate_cost(PROJECT_DIR, "gpt-4.1-nano", tokens_per_epoch=9_000_000, n_epochs=3)
    assert default.n_epochs == 1 and three.n_epochs == 3
    assert default.usd == pytest.approx(three.usd / 3)  # the "about a third" of the 3-epoch figure
    assert "1 epoch: the provider's default for 154,780 training examples" in default.describe()
    assert "3 epochs as given (--n-epochs)" in three.describe()
    with pytest.raises(ValueError, match="n_train"):
        estimate_cost(PROJECT_DIR, "gpt-4.1-nano", tokens_per_epoch=10)


def test_token_stats_are_min_mean_p95_max() -> None:
    stats = token_stats(list(range(1, 101)))
    assert stats is not None and (stats.min, stats.mean, stats.max, stats.n) == (1, 50.5, 100, 100)
    assert stats.p95 == pytest.approx(95.05)  # numpy.percentile's default (linear)
    assert token_stats([]) is None
    assert "min 1, mean 50.5, p95 95, max 100 (100 examples)" in stats.describe()


def test_beep_export_prints_the_token_distribution_and_the_epochs_assumed(fresh_paths) -> None:
    args = ["export", "--db", str(fresh_paths.duckdb), "--unrefined"]
    env = {"BEEP_WORKDIR": str(fresh_paths.workdir)}
    shown = CliRunner().invoke(app, args, env=env)
    assert shown.exit_code == 0, shown.output
    flat = " ".join(shown.output.split())
    assert re.search(r"tokens per training example: min \d+, mean [\d.]+, p95 \d+, max \d+ \([\d,]+ examples\)", flat)
    assert "the provider's default for" in flat
    as_json = CliRunner().invoke(app, [*args, "--json"], env=env)
    data = json.loads(as_json.stdout)
    lengths = data["token_lengths"]
    assert lengths["n"] == data["n_train"] and lengths["min"] <= lengths["mean"] <= lengths["p95"] <= lengths["max"]
    assert f"x {default_epochs(data['n_train'])} epoch" in data["estimate"]
