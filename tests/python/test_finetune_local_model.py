"""The local responder model: trains, predicts top-k log-probabilities, saves and reloads identically."""

from __future__ import annotations

import math
import random

import pytest

from beep.checksums import sha256_file
from beep.finetune.local_model import LocalResponderModel

WORDS = {
    "0": "deploy kubernetes helm cluster pod",
    "1": "invoice billing refund payment card",
    "2": "design figma mockup colour font",
    "nil": "lunch nachos weekend coffee hello",
}


def _rows(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.choice(sorted(WORDS))
        words = WORDS[label].split()
        text = " ".join(rng.choice(words) for _ in range(6)) + f" message {i}"
        rows.append(
            {
                "prompt": text + "\n\n###\n\n",
                "label": label,
                "channel_id": f"C{label}" if rng.random() < 0.8 else "Cgeneral",
                "prior_participant_ids": [f"U{label}", "U9"] if label != "nil" else ["U9"],
                "mentioned_user_ids": [],
            }
        )
    return rows


@pytest.mark.parametrize("variant", ["text", "text+context"])
def test_trains_and_ranks_the_right_label_first(variant: str) -> None:
    train, test = _rows(200, seed=1), _rows(60, seed=2)
    model = LocalResponderModel(variant)
    model.fit(train)
    assert model.labels == ["0", "1", "2", "nil"]
    top = model.predict_top_k(test, 3)
    assert all(len(t) == 3 for t in top)
    for ranked in top:
        logps = [lp for _, lp in ranked]
        assert logps == sorted(logps, reverse=True)
        assert all(lp <= 0.0 for lp in logps)
    accuracy = sum(t[0][0] == row["label"] for t, row in zip(top, test)) / len(test)
    assert accuracy > 0.9
    full = model.predict_top_k(test[:1], 10)[0]
    assert len(full) == 4
    assert math.isclose(sum(math.exp(lp) for _, lp in full), 1.0, rel_tol=1e-6)


def test_context_is_used_only_by_the_context_variant() -> None:
    # Prompts carry no signal; only the channel does.
    rows = [
        {"prompt": "same text\n\n###\n\n", "label": str(i % 2), "channel_id": f"C{i % 2}", "prior_participant_ids": []}
        for i in range(40)
    ]
    ctx = LocalResponderModel("text+context")
    ctx.fit(rows)
    assert ctx.predict(rows) == [r["label"] for r in rows]
    text_only = LocalResponderModel("text")
    text_only.fit(rows)
    probs = text_only.predict_top_k(rows[:2], 2)
    assert math.isclose(probs[0][0][1], probs[0][1][1], abs_tol=1e-6)


def test_save_and_load_give_the_same_predictions(tmp_path) -> None:
    train, test = _rows(120), _rows(30, seed=5)
    model = LocalResponderModel()
    model.fit(train)
    path = tmp_path / "models" / "m.joblib"
    digest = model.save(path)
    assert digest == sha256_file(path) and len(digest) == 64
    again = LocalResponderModel.load(path)
    assert again.variant == "text+context" and again.labels == model.labels
    assert again.predict_top_k(test, 4) == model.predict_top_k(test, 4)


def test_errors_are_clear(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown feature variant"):
        LocalResponderModel("words")
    with pytest.raises(ValueError, match="zero examples"):
        LocalResponderModel().fit([])
    with pytest.raises(RuntimeError, match="not trained"):
        LocalResponderModel().predict_top_k([{"prompt": "x"}], 1)
    with pytest.raises(FileNotFoundError, match="beep finetune"):
        LocalResponderModel.load(tmp_path / "missing.joblib")
    (tmp_path / "other.joblib").write_bytes(b"")
    import joblib

    joblib.dump({"something": 1}, tmp_path / "other.joblib")
    with pytest.raises(ValueError, match="not a Beep local responder model"):
        LocalResponderModel.load(tmp_path / "other.joblib")


def test_a_single_label_gives_that_label_with_certainty() -> None:
    model = LocalResponderModel()
    model.fit([{"prompt": "a", "label": "nil"}, {"prompt": "b", "label": "nil"}])
    assert model.predict_top_k([{"prompt": "c"}], 3) == [[("nil", 0.0)]]


def test_the_same_training_gives_the_same_artifact_bytes(tmp_path) -> None:
    rows = _rows(80)
    first, second = LocalResponderModel(), LocalResponderModel()
    first.fit(rows)
    second.fit(rows)
    assert first.save(tmp_path / "a.joblib") == second.save(tmp_path / "b.joblib")
    for _, step in first._pipeline.named_steps["features"].transformer_list:
        vectorizer = step.steps[-1][1]
        assert not hasattr(vectorizer, "stop_words_") and not hasattr(vectorizer, "_stop_words_id")


def test_tiny_and_textless_training_sets() -> None:
    model = LocalResponderModel()
    model.fit([{"prompt": "a", "label": "0"}, {"prompt": "b", "label": "1"}])
    assert model.predict([{"prompt": "a"}, {"prompt": "b"}]) == ["0", "1"]
    with pytest.raises(ValueError, match="no usable text"):
        LocalResponderModel("text").fit([{"prompt": "!!", "label": "0"}, {"prompt": "", "label": "1"}])
