"""On the bundled sample, the local ranker beats every baseline on person top-5 (all replies and
newcomers) and the majority baseline on macro F1; every baseline is there; `beep predict` with the
ranker names people with reasons and honours --exclude-participants and --min-probability."""

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
    # the next-reply metrics: the model and the four baselines (the alert replay's own baselines have
    # only its slice)
    assert {m for m, slices in result.headline.items() if "all" in slices} == {job.fine_tuned_model, *BASELINES}
    replayed = {m for m, slices in result.headline.items() if "alert_replay" in slices}
    assert replayed == {job.fine_tuned_model, "baseline: channel regulars", "baseline: workspace regulars"}
    model = result.headline[job.fine_tuned_model]
    majority = result.headline[MAJORITY]
    for slice_ in ("all", "newcomer"):
        assert model[slice_]["f1_macro"] > majority[slice_]["f1_macro"], slice_
        assert model[slice_]["top_5_accuracy"] > majority[slice_]["top_5_accuracy"], slice_
        for baseline in BASELINES:  # people, not labels: the headline
            assert model[slice_]["person_top_5"] > result.headline[baseline][slice_]["person_top_5"], (slice_, baseline)
    assert model["all"]["person_top_1"] > max(result.headline[b]["all"]["person_top_1"] for b in BASELINES)
    assert 0 < model["all"]["alert_precision_person"] < 1

    _predict_with_the_ranker(fresh_paths, job.job_id)

    # another split of the same examples: part of its validation set is this model's training data
    other = export(fresh_paths, split_method="conversation", seed=5)
    import pytest

    from beep.evaluate.dataset import EvaluationInputError

    with pytest.raises(EvaluationInputError, match="scores there would be inflated"):
        evaluate(fresh_paths, model=job.job_id, export_id=other.export_id, console=quiet)


def _predict_with_the_ranker(paths: Paths, job_id: str) -> None:
    from beep.db import open_duckdb

    from beep.live.predict import predict

    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:  # a conversation in progress with at least two people in it
        channel, at = con.execute(
            """select channel_name, cast(message_at as varchar) from int_conversations
               where position >= 3 and not is_in_thread order by message_at desc limit 1"""
        ).fetchone()
    finally:
        con.close()
    plain = predict(paths, model=job_id, channel=channel, at=at, k=5)
    inside = set(plain.conversation.prior_participant_ids)
    assert len(inside) >= 1 and plain.candidates
    assert all(c.reason and c.user_id and c.probability is not None for c in plain.candidates)
    assert plain.conversation.prior_participant_ids[0] not in {c.user_id for c in plain.candidates}  # the last speaker
    probs = [c.probability for c in plain.candidates]
    assert probs == sorted(probs, reverse=True) and sum(probs) + (plain.nobody_probability or 0) <= 1 + 1e-6
    outside = predict(paths, model=job_id, channel=channel, at=at, k=5, exclude_participants=True)
    assert outside.candidates and not {c.user_id for c in outside.candidates} & inside
    # nor anyone @-mentioned in the conversation's last messages: Slack notifies them, the app never alerts
    # them (the README's moment: dan was just mentioned, and ranks first without the filter)
    readme = predict(paths, model=job_id, channel="general", at="2025-03-04T14:45:00", k=5)
    mentioned = set(readme.conversation.mentioned_user_ids)
    assert mentioned & {c.user_id for c in readme.candidates}
    readme_outside = predict(paths, model=job_id, channel="general", at="2025-03-04T14:45:00", k=5,
                             exclude_participants=True)
    assert readme_outside.candidates and not mentioned & {c.user_id for c in readme_outside.candidates}
    strict = predict(paths, model=job_id, channel=channel, at=at, k=5, min_probability=0.999)
    assert strict.candidates == [] and strict.alert is False
    some = predict(paths, model=job_id, channel=channel, at=at, k=5, min_probability=probs[1])
    assert [c.user_id for c in some.candidates] == [c.user_id for c in plain.candidates][: len(some.candidates)]
    assert all(c.probability >= probs[1] for c in some.candidates)
    text = predict(paths, model=job_id, text="who can look at the failing deploy?", channel=channel, k=3)
    assert text.candidates and all(c.reason for c in text.candidates)
