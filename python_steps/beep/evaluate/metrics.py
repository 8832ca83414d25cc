"""Metrics of one model (or baseline) on one slice of an evaluation split.

Precision / recall / F1 come straight from scikit-learn, so the numbers mean exactly what sklearn
documents. Conventions, stated once:

* An output that decodes to no known label (``predicted_label`` is None) is **counted, not
  dropped**: it is a miss for accuracy and for the recall of its true label, it is no label's
  prediction (so it lowers no label's precision), it counts as "no alert" in the alert view, and it
  is reported on its own as ``unknown_outputs`` / ``unknown_rate``. Because sklearn's F1 is given
  the known labels only, ``f1_micro`` can exceed ``accuracy`` when unknown outputs exist.
* ``nil`` means "nobody needs to be alerted". The alert view asks two questions:
  *alerting anyone* — does the model alert when someone did respond (positive = label is not nil),
  and *alerting the right person* — of the alerts sent, how many went to the actual responder
  (precision), and of the conversations someone responded to, how many alerted that person
  (recall).
* Top-k accuracy uses the rank of the true label in the model's ranked labels; a true label outside
  the stored ranking counts as a miss.
* **People, not labels.** An export folds the rarest responders into one ``other`` label, and a
  label is only a proxy for a person. The ``person_*`` metrics ask whether the *person* who
  responded is among the model's first k people (``person_top_k``); ``outsider_top_k`` (newcomer
  slice only) ranks only the people not yet in the conversation, the ones an alert is for; and
  ``alert_precision_person`` / ``alert_recall_person`` (shown as next-reply precision / recall) score
  the top person as the guess of who replies next (a label model's top label read as its user;
  ``other`` is nobody in particular, so never right). The app's alerts, to people outside the
  conversation, are scored by the alert replay (beep.evaluate.alert_replay).
* A metric whose denominator is empty is stored as null (value None), never as a made-up 0 — except
  sklearn's per-label and averaged scores, which use sklearn's ``zero_division=0``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from beep.labels import NIL_LABEL, OTHER_LABEL, EvalExample, label_sort_key

#: Placeholder for an output that decoded to no known label (never a real label text).
UNKNOWN = "__unknown__"
#: The k of the top-k accuracies we report.
TOP_KS: tuple[int, ...] = (1, 3, 5)
#: The slices every metric is computed for.
SLICES: tuple[str, ...] = ("all", "newcomer")
#: The slices of the examples whose window @-mentions someone (``mentioned``: known at the moment, the
#: slice the mention rule is compared on) and of those whose responder was @-mentioned in it
#: (``responder_mentioned``: the mention rule's best case). Only the metrics of :data:`MENTION_METRICS`.
MENTION_SLICES: tuple[str, ...] = ("mentioned", "responder_mentioned")


@dataclass(frozen=True)
class Scored:
    """What the metrics need of one prediction."""

    true_label: str
    predicted_label: str | None
    true_label_rank: int | None
    newcomer: bool
    responder_rank: int | None = None  # the responder's 1-based rank among the people ranked
    outsider_rank: int | None = None  # ... among the people not yet in the conversation (newcomers)
    mentioned: bool = False  # the example's window @-mentions someone
    responder_mentioned: bool = False  # ... and the responder is among them


#: The k of the person top-k accuracies.
PERSON_TOP_KS: tuple[int, ...] = (1, 3, 5, 10)


@dataclass(frozen=True)
class MetricRow:
    """One row of the ``metrics`` table (without the run and model columns)."""

    slice: str
    metric: str
    label: str | None
    value: float | None
    support: int


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def label_set(true: Sequence[str], pred: Sequence[str | None]) -> list[str]:
    """The labels sklearn scores: every true label and every known predicted label, sorted."""
    return sorted({*true, *(p for p in pred if p is not None)} - {UNKNOWN}, key=label_sort_key)


def slice_metrics(rows: Sequence[Scored], slice_name: str) -> list[MetricRow]:
    """Every metric for ``rows`` (already restricted to the slice), tagged with ``slice_name``."""
    n = len(rows)
    out: list[MetricRow] = [MetricRow(slice_name, "n", None, float(n), n)]
    if n == 0:
        return out
    y_true = [r.true_label for r in rows]
    y_pred_raw = [r.predicted_label for r in rows]
    labels = label_set(y_true, y_pred_raw)
    n_unknown = sum(p is None for p in y_pred_raw)
    # sklearn is given each label as its position in ``labels`` (an undecodable output: one past the
    # last): the same counts and scores as with the label texts, without sorting 10^5 strings per call
    # (a 1,000,000-message evaluation's seven models: 6.6 -> 1.2 s)
    index = {label: i for i, label in enumerate(labels)}
    unknown = len(labels)
    y_true_i = np.fromiter((index.get(t, unknown) for t in y_true), dtype=np.int64, count=n)
    y_pred_i = np.fromiter((unknown if p is None else index.get(p, unknown) for p in y_pred_raw), dtype=np.int64, count=n)
    positions = np.arange(len(labels))

    def add(metric: str, value: float | None, support: int, label: str | None = None) -> None:
        out.append(MetricRow(slice_name, metric, label, None if value is None else float(value), support))

    add("unknown_outputs", n_unknown, n)
    add("unknown_rate", n_unknown / n, n)
    add("accuracy", accuracy_score(y_true_i, y_pred_i), n)
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true_i, y_pred_i, labels=positions, average=average, zero_division=0
        )
        add(f"precision_{average}", p, n)
        add(f"recall_{average}", r, n)
        add(f"f1_{average}", f, n)
    p, r, f, s = precision_recall_fscore_support(y_true_i, y_pred_i, labels=positions, average=None, zero_division=0)
    for i, label in enumerate(labels):
        add("precision", p[i], int(s[i]), label)
        add("recall", r[i], int(s[i]), label)
        add("f1", f[i], int(s[i]), label)
        add("support", int(s[i]), int(s[i]), label)
    for k in TOP_KS:
        hits = sum(1 for row in rows if row.true_label_rank is not None and row.true_label_rank <= k)
        add(f"top_{k}_accuracy", hits / n, n)

    # The alert view: nil (and an undecodable output) means no alert.
    alerted = [p is not None and p != NIL_LABEL for p in y_pred_raw]
    needed = [t != NIL_LABEL for t in y_true]
    right = [a and p == t for a, p, t in zip(alerted, y_pred_raw, y_true)]
    n_alerted, n_needed = sum(alerted), sum(needed)
    add("alerts_sent", n_alerted, n)
    add("alerts_needed", n_needed, n)
    add("alert_precision_anyone", _ratio(sum(a and nd for a, nd in zip(alerted, needed)), n_alerted), n_alerted)
    add("alert_recall_anyone", _ratio(sum(a and nd for a, nd in zip(alerted, needed)), n_needed), n_needed)
    add("alert_precision_right_person", _ratio(sum(right), n_alerted), n_alerted)
    add("alert_recall_right_person", _ratio(sum(right), n_needed), n_needed)

    # People: the responder's rank among the people ranked (whatever label the export gave them).
    for k in PERSON_TOP_KS:
        add(f"person_top_{k}", sum(1 for r in rows if r.responder_rank is not None and r.responder_rank <= k) / n, n)
    add("person_ranked", sum(1 for r in rows if r.responder_rank is not None) / n, n)
    newcomers = [r for r in rows if r.newcomer]
    if slice_name == "newcomer" and newcomers:
        for k in PERSON_TOP_KS:
            hits = sum(1 for r in newcomers if r.outsider_rank is not None and r.outsider_rank <= k)
            add(f"outsider_top_{k}", hits / len(newcomers), len(newcomers))
    right_person = [a and nd and p != OTHER_LABEL and r.responder_rank == 1
                    for a, nd, p, r in zip(alerted, needed, y_pred_raw, rows)]
    add("alert_precision_person", _ratio(sum(right_person), n_alerted), n_alerted)
    add("alert_recall_person", _ratio(sum(right_person), n_needed), n_needed)
    return out


#: What the mention slices hold: how the people and labels are ranked (no per-label rows: two slices
#: of every label's scores would double the table for what the other slices already tell).
MENTION_METRICS: tuple[str, ...] = ("n", "accuracy", *(f"top_{k}_accuracy" for k in TOP_KS),
                                    *(f"person_top_{k}" for k in PERSON_TOP_KS), "person_ranked")


def mention_slice_metrics(rows: Sequence[Scored], slice_name: str) -> list[MetricRow]:
    """The metrics of :data:`MENTION_METRICS` for ``rows`` (already restricted to the slice)."""
    n = len(rows)
    out = [MetricRow(slice_name, "n", None, float(n), n)]
    if n == 0:
        return out
    right = sum(1 for r in rows if r.predicted_label is not None and r.predicted_label == r.true_label)
    out.append(MetricRow(slice_name, "accuracy", None, right / n, n))
    for k in TOP_KS:
        hits = sum(1 for r in rows if r.true_label_rank is not None and r.true_label_rank <= k)
        out.append(MetricRow(slice_name, f"top_{k}_accuracy", None, hits / n, n))
    for k in PERSON_TOP_KS:
        hits = sum(1 for r in rows if r.responder_rank is not None and r.responder_rank <= k)
        out.append(MetricRow(slice_name, f"person_top_{k}", None, hits / n, n))
    out.append(MetricRow(slice_name, "person_ranked", None, sum(1 for r in rows if r.responder_rank is not None) / n, n))
    return out


def mention_flags(examples: Iterable[EvalExample]) -> dict[str, tuple[bool, bool]]:
    """Per example whose window @-mentions someone: (True, whether the responder is among them)."""
    return {ex.example_id: (True, ex.responder_user_id is not None and ex.responder_user_id in ex.mentioned_user_ids)
            for ex in examples if ex.mentioned_user_ids}


def compute_metrics(rows: Iterable[Scored]) -> list[MetricRow]:
    """Every metric on ``all`` and ``newcomer`` (the responder had not written yet); the ranking
    metrics on the two mention slices (:data:`MENTION_SLICES`)."""
    rows = list(rows)
    return (slice_metrics(rows, "all") + slice_metrics([r for r in rows if r.newcomer], "newcomer")
            + mention_slice_metrics([r for r in rows if r.mentioned], "mentioned")
            + mention_slice_metrics([r for r in rows if r.responder_mentioned], "responder_mentioned"))


def true_label_rank(ranked_labels: Sequence[str], true_label: str) -> int | None:
    """1-based rank of the true label in a ranking, None when absent."""
    for i, label in enumerate(ranked_labels, start=1):
        if label == true_label:
            return i
    return None


def confusion_counts(rows: Iterable[Scored]) -> Counter[tuple[str, str]]:
    """(true, predicted) counts, with undecodable outputs as :data:`UNKNOWN`."""
    return Counter((r.true_label, r.predicted_label if r.predicted_label is not None else UNKNOWN) for r in rows)


#: The headline metrics, in the order reports and summaries show them.
HEADLINE: tuple[str, ...] = (
    "person_top_1",
    "person_top_5",
    "outsider_top_1",
    "outsider_top_5",
    "alert_precision_person",
    "alert_recall_person",
    "accuracy",
    "f1_macro",
    "f1_weighted",
    "top_1_accuracy",
    "top_3_accuracy",
    "top_5_accuracy",
    "alert_precision_right_person",
    "alert_recall_right_person",
    "unknown_rate",
)
