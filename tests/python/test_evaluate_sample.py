"""On the bundled sample, the local model beats the majority baseline on macro F1 and top-5
accuracy (the issue's bar), on all examples and on the newcomer slice; every baseline is there."""

from __future__ import annotations

from rich.console import Console

from beep.config import Paths
from beep.evaluate.api import evaluate
from beep.evaluate.baselines import BASELINES, MAJORITY
from beep.export.api import export
from beep.finetune.api import finetune
from beep.refine.api import refine


def test_local_model_beats_the_majority_baseline_on_the_sample(fresh_paths: Paths) -> None:
    quiet = Console(stderr=True, quiet=True)
    refine(fresh_paths, provider="local", console=quiet)
    exported = export(fresh_paths)
    job = finetune(fresh_paths, export_id=exported.export_id, provider="local", console=quiet)
    result = evaluate(fresh_paths, model=job.job_id, export_id=exported.export_id, console=quiet)
    assert result.n == exported.n_valid and result.n_newcomer > 0
    assert set(result.headline) == {job.fine_tuned_model, *BASELINES}
    model = result.headline[job.fine_tuned_model]
    majority = result.headline[MAJORITY]
    for slice_ in ("all", "newcomer"):
        assert model[slice_]["f1_macro"] > majority[slice_]["f1_macro"], slice_
        assert model[slice_]["top_5_accuracy"] > majority[slice_]["top_5_accuracy"], slice_

    # another split of the same examples: part of its validation set is this model's training data
    other = export(fresh_paths, split_method="conversation", seed=5)
    import pytest

    from beep.evaluate.dataset import EvaluationInputError

    with pytest.raises(EvaluationInputError, match="scores there would be inflated"):
        evaluate(fresh_paths, model=job.job_id, export_id=other.export_id, console=quiet)
