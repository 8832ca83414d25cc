"""The metrics equal scikit-learn's on the same predictions; the alert view, top-k, unknown outputs
and the newcomer slice on tiny data computed by hand."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, top_k_accuracy_score

from beep.evaluate.metrics import UNKNOWN, Scored, compute_metrics, confusion_counts, label_set, slice_metrics


def _by_key(rows):
    return {(m.slice, m.metric, m.label): m for m in rows}


def _random_rows(seed: int, n: int = 300, unknown_rate: float = 0.0) -> list[Scored]:
    rng = random.Random(seed)
    labels = ["0", "1", "2", "3", "10", "nil"]
    rows = []
    for _ in range(n):
        true = rng.choice(labels)
        pred: str | None = true if rng.random() < 0.5 else rng.choice(labels)
        if rng.random() < unknown_rate:
            pred = None
        rank = 1 if pred == true else rng.choice([2, 3, 4, 5, 6, None])
        rows.append(Scored(true, pred, rank, rng.random() < 0.4))
    return rows


@pytest.mark.parametrize("unknown_rate", [0.0, 0.1])
def test_metric_values_equal_sklearn(unknown_rate: float) -> None:
    rows = _random_rows(1, unknown_rate=unknown_rate)
    got = _by_key(slice_metrics(rows, "all"))
    y_true = [r.true_label for r in rows]
    y_pred = [r.predicted_label if r.predicted_label is not None else UNKNOWN for r in rows]
    labels = sorted(set(y_true) | {p for p in y_pred if p != UNKNOWN})
    assert set(labels) == set(label_set(y_true, [r.predicted_label for r in rows]))

    assert got[("all", "accuracy", None)].value == pytest.approx(accuracy_score(y_true, y_pred))
    for avg in ("macro", "micro", "weighted"):
        assert got[("all", f"f1_{avg}", None)].value == pytest.approx(
            f1_score(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        )
        assert got[("all", f"precision_{avg}", None)].value == pytest.approx(
            precision_score(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        )
        assert got[("all", f"recall_{avg}", None)].value == pytest.approx(
            recall_score(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        )
    per_f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    per_p = precision_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    per_r = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    for i, label in enumerate(labels):
        assert got[("all", "f1", label)].value == pytest.approx(per_f1[i])
        assert got[("all", "precision", label)].value == pytest.approx(per_p[i])
        assert got[("all", "recall", label)].value == pytest.approx(per_r[i])
        assert got[("all", "f1", label)].support == y_true.count(label)
    if unknown_rate == 0.0:
        # With no unknown outputs, scoring every label is sklearn's default, and micro F1 is accuracy.
        assert got[("all", "f1_macro", None)].value == pytest.approx(f1_score(y_true, y_pred, average="macro"))
        assert got[("all", "f1_micro", None)].value == pytest.approx(got[("all", "accuracy", None)].value)
    else:
        n_unknown = sum(r.predicted_label is None for r in rows)
        assert n_unknown > 0
        assert got[("all", "unknown_outputs", None)].value == n_unknown
        assert got[("all", "unknown_rate", None)].value == pytest.approx(n_unknown / len(rows))
        assert got[("all", "n", None)].value == len(rows)  # counted, not dropped


def test_top_k_equals_sklearn_top_k_accuracy() -> None:
    rng = np.random.default_rng(3)
    labels = [str(i) for i in range(8)]
    scores = rng.random((200, len(labels)))
    y_true = rng.integers(0, len(labels), 200)
    rows = []
    for i in range(200):
        order = list(np.argsort(-scores[i], kind="stable"))
        rank = order.index(y_true[i]) + 1
        rows.append(Scored(labels[y_true[i]], labels[order[0]], rank, False))
    got = _by_key(slice_metrics(rows, "all"))
    for k in (1, 3, 5):
        expected = top_k_accuracy_score(y_true, scores, k=k, labels=list(range(len(labels))))
        assert got[("all", f"top_{k}_accuracy", None)].value == pytest.approx(expected)


def test_alert_view_by_hand() -> None:
    rows = [
        Scored("1", "1", 1, True),  # alert, right person
        Scored("1", "2", 2, False),  # alert, wrong person
        Scored("2", "nil", 3, True),  # no alert though someone answered
        Scored("nil", "3", None, False),  # alert though nobody answered
        Scored("nil", "nil", 1, True),  # correctly silent
        Scored("3", None, None, True),  # unreadable output: no alert, counted
    ]
    got = _by_key(slice_metrics(rows, "all"))
    assert got[("all", "alerts_sent", None)].value == 3
    assert got[("all", "alerts_needed", None)].value == 4
    assert got[("all", "alert_precision_anyone", None)].value == pytest.approx(2 / 3)
    assert got[("all", "alert_recall_anyone", None)].value == pytest.approx(2 / 4)
    assert got[("all", "alert_precision_right_person", None)].value == pytest.approx(1 / 3)
    assert got[("all", "alert_recall_right_person", None)].value == pytest.approx(1 / 4)
    assert got[("all", "unknown_outputs", None)].value == 1
    assert got[("all", "accuracy", None)].value == pytest.approx(2 / 6)
    assert got[("all", "top_1_accuracy", None)].value == pytest.approx(2 / 6)
    assert got[("all", "top_3_accuracy", None)].value == pytest.approx(4 / 6)
    assert confusion_counts(rows)[("3", UNKNOWN)] == 1


def test_newcomer_slice_is_the_metrics_of_the_newcomers_only() -> None:
    rows = _random_rows(5, unknown_rate=0.05)
    both = _by_key(compute_metrics(rows))
    alone = _by_key(slice_metrics([r for r in rows if r.newcomer], "newcomer"))
    assert both[("newcomer", "n", None)].value == sum(r.newcomer for r in rows)
    for key, row in alone.items():
        assert both[key].value == pytest.approx(row.value) if row.value is not None else both[key].value is None
    # and they differ from the whole split's numbers
    assert both[("newcomer", "accuracy", None)].value != both[("all", "accuracy", None)].value


def test_empty_denominators_are_null_not_zero() -> None:
    rows = [Scored("nil", "nil", 1, False), Scored("nil", None, None, False)]
    got = _by_key(slice_metrics(rows, "all"))
    assert got[("all", "alert_precision_anyone", None)].value is None
    assert got[("all", "alert_recall_right_person", None)].value is None
    assert _by_key(compute_metrics(rows))[("newcomer", "n", None)].value == 0


def test_mention_slices_rank_only_their_examples_and_agree_with_the_full_slice_metrics() -> None:
    rows = [
        # (true, pred, label rank, newcomer, responder rank, outsider rank, mentioned, responder mentioned)
        Scored("1", "1", 1, False, 1, None, True, True),
        Scored("2", "1", 2, True, 3, 2, True, True),
        Scored("3", None, None, False, None, None, True, False),
        Scored("1", "2", 4, False, 6, None, True, False),
        Scored("2", "2", 1, False, 1, None, False, False),
    ]
    got = _by_key(compute_metrics(rows))
    assert got[("mentioned", "n", None)].value == 4 and got[("responder_mentioned", "n", None)].value == 2
    assert got[("mentioned", "person_top_1", None)].value == pytest.approx(1 / 4)
    assert got[("mentioned", "person_top_5", None)].value == pytest.approx(2 / 4)
    assert got[("mentioned", "person_ranked", None)].value == pytest.approx(3 / 4)
    assert got[("responder_mentioned", "person_top_1", None)].value == pytest.approx(1 / 2)
    assert got[("responder_mentioned", "person_top_3", None)].value == pytest.approx(1)
    # only ranking metrics there (no per-label rows), equal to what the full metrics give on the same rows
    assert not [k for k in got if k[0] in ("mentioned", "responder_mentioned") and k[2] is not None]
    full = _by_key(slice_metrics([r for r in rows if r.mentioned], "mentioned"))
    for key in (k for k in got if k[0] == "mentioned"):
        assert got[key].value == pytest.approx(full[key].value), key
    # an empty slice still says n = 0
    assert _by_key(compute_metrics(rows[4:]))[("responder_mentioned", "n", None)].value == 0
