"""The label classifier: scikit-learn, offline, fast — `beep finetune --variant text+context` / `text`.

Not the default local model (that is the responder ranker, :mod:`beep.ranker`, ``--variant ranker``);
kept for comparison with it and with the LLMs. Like a fine-tuned LLM, given a conversation's context
it gives a probability to every label of the export (``'0'..'n'`` and ``'nil'``), best first. It is a
TF-IDF + logistic regression classifier, named as what it is and never presented as an LLM.

Two feature variants, so evaluation can compare them:

* ``text`` — the prompt only (word 1-2-grams and character 2-5-grams), i.e. exactly what an LLM
  sees;
* ``text+context`` (this model's default) — also what is known at prediction time without reading the text:
  the channel, the conversation's prior participants (the most recent one marked separately) and
  the users @-mentioned in the context. On real channels this is a strong signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from beep.checksums import sha256_file
from beep.labels import PROMPT_SUFFIX, label_sort_key

#: The feature variants the model supports.
VARIANTS: tuple[str, ...] = ("text", "text+context")
DEFAULT_VARIANT = "text+context"
_FORMAT_VERSION = 1
#: The model's settings (how they were chosen: docs/export-and-finetune.md). Part of the fine-tune
#: job's settings hash, so changing them trains a new job.
HYPERPARAMETERS: dict[str, object] = {
    "word_ngrams": [1, 2],
    "char_ngrams": [2, 5],
    "char_min_df": 2,
    "char_max_features": 20_000,
    "C": 0.5,
    "max_iter": 300,
    "tol": 1e-3,
}


def _as_list(value: Any) -> list[str]:
    """A list of ids from whatever DuckDB/JSON gave us (list, tuple, numpy array, None)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value if v is not None]


def prompt_texts(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The prompt of every row, without the trailing separator."""
    texts = []
    for row in rows:
        text = row.get("prompt") or ""
        texts.append(text.removesuffix(PROMPT_SUFFIX))
    return texts


def context_docs(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One bag of context tokens per row: channel, prior participants, the last speaker, mentions."""
    docs = []
    for row in rows:
        tokens = [f"ch={row.get('channel_id') or '?'}"]
        prior = _as_list(row.get("prior_participant_ids"))
        tokens += [f"pp={uid}" for uid in prior]
        if prior:
            tokens.append(f"last={prior[0]}")
        tokens += [f"at={uid}" for uid in _as_list(row.get("mentioned_user_ids"))]
        docs.append(" ".join(tokens))
    return docs


def _split_tokens(doc: str) -> list[str]:
    return doc.split()


def _build_pipeline(variant: str, seed: int, n_rows: int) -> Pipeline:
    hp = HYPERPARAMETERS
    # on a handful of rows a character n-gram seen twice may not exist: keep them all there
    char_min_df = hp["char_min_df"] if n_rows >= 20 else 1
    text_features = [
        (
            "words",
            Pipeline(
                [
                    ("select", FunctionTransformer(prompt_texts)),
                    (
                        "tfidf",
                        TfidfVectorizer(
                            ngram_range=tuple(hp["word_ngrams"]),
                            token_pattern=r"(?u)\b\w+\b",  # one-character words too ("k", "2")
                            min_df=1,
                            sublinear_tf=True,
                        ),
                    ),
                ]
            ),
        ),
        (
            "chars",
            Pipeline(
                [
                    ("select", FunctionTransformer(prompt_texts)),
                    (
                        "tfidf",
                        TfidfVectorizer(
                            analyzer="char_wb",
                            ngram_range=tuple(hp["char_ngrams"]),
                            min_df=char_min_df,
                            max_features=hp["char_max_features"],
                            sublinear_tf=True,
                        ),
                    ),
                ]
            ),
        ),
    ]
    if variant == "text+context":
        text_features.append(
            (
                "context",
                Pipeline(
                    [
                        ("select", FunctionTransformer(context_docs)),
                        (
                            "bag",
                            CountVectorizer(tokenizer=_split_tokens, token_pattern=None, lowercase=False, binary=True),
                        ),
                    ]
                ),
            )
        )
    return Pipeline(
        [
            ("features", FeatureUnion(text_features)),
            ("clf", LogisticRegression(C=hp["C"], max_iter=hp["max_iter"], tol=hp["tol"], random_state=seed)),
        ]
    )


class LocalResponderModel:
    """TF-IDF (+ context) logistic regression over the export's label texts.

    ``fit(rows)`` needs ``prompt``, ``label`` (the export's label text, e.g. ``'3'`` or ``'nil'``)
    and, for ``text+context``, ``channel_id`` and ``prior_participant_ids`` (``mentioned_user_ids``
    is used when present). ``predict_top_k(rows, k)`` gives ``(label, log-probability)`` pairs,
    best first.
    """

    def __init__(self, variant: str = DEFAULT_VARIANT, *, seed: int = 0) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown feature variant {variant!r}: choose one of {', '.join(VARIANTS)}")
        self.variant = variant
        self.seed = seed
        self.labels: list[str] = []
        self._pipeline: Pipeline | None = None
        self._constant_label: str | None = None
        self.sklearn_version = sklearn.__version__

    # -- training ---------------------------------------------------------------------------
    def fit(self, rows: list[dict]) -> None:
        """Train on rows carrying ``prompt``, ``label`` and (for text+context) the context fields."""
        if not rows:
            raise ValueError("cannot train the local responder model on zero examples: the export's train split is empty")
        missing = [i for i, row in enumerate(rows) if row.get("label") in (None, "")]
        if missing:
            raise ValueError(f"{len(missing)} training rows have no 'label' (first at index {missing[0]})")
        y = [str(row["label"]) for row in rows]
        self.labels = sorted(set(y), key=label_sort_key)
        if len(self.labels) == 1:
            # One class only: a logistic regression cannot be fitted; the honest model says that label.
            self._constant_label = self.labels[0]
            self._pipeline = None
            return
        self._constant_label = None
        pipeline = _build_pipeline(self.variant, self.seed, len(rows))
        try:
            pipeline.fit(rows, y)
        except ValueError as err:
            if "empty vocabulary" not in str(err):
                raise
            raise ValueError(
                "the training prompts contain no usable text (empty vocabulary); check the export's prompts"
            ) from err
        _drop_stop_words(pipeline)
        self._pipeline = pipeline

    @property
    def is_fitted(self) -> bool:
        return self._pipeline is not None or self._constant_label is not None

    # -- prediction -------------------------------------------------------------------------
    def predict_log_proba(self, rows: list[dict]) -> tuple[list[str], np.ndarray]:
        """The label order and an (n_rows, n_labels) array of natural-log probabilities."""
        if not self.is_fitted:
            raise RuntimeError("the local responder model is not trained: call fit() or load() first")
        if self._constant_label is not None:
            return [self._constant_label], np.zeros((len(rows), 1))
        if not rows:
            return list(self._pipeline.classes_), np.zeros((0, len(self._pipeline.classes_)))
        assert self._pipeline is not None
        logp = self._pipeline.predict_log_proba(rows)
        return [str(c) for c in self._pipeline.classes_], logp

    def predict_top_k(self, rows: list[dict], k: int) -> list[list[tuple[str, float]]]:
        """For each row the ``k`` most likely labels with their log-probabilities, best first.

        Ties are broken by label order (stable), so the output is deterministic.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        labels, logp = self.predict_log_proba(rows)
        out: list[list[tuple[str, float]]] = []
        for row_logp in logp:
            order = np.argsort(-row_logp, kind="stable")[:k]
            out.append([(labels[i], float(row_logp[i])) for i in order])
        return out

    def predict(self, rows: list[dict]) -> list[str]:
        """The most likely label of each row."""
        return [top[0][0] for top in self.predict_top_k(rows, 1)]

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> str:
        """Write the model with joblib to ``path`` (folders created); return the file's sha256."""
        if not self.is_fitted:
            raise RuntimeError("refusing to save an untrained local responder model")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format_version": _FORMAT_VERSION,
            "kind": "beep.LocalResponderModel",
            "variant": self.variant,
            "seed": self.seed,
            "labels": self.labels,
            "constant_label": self._constant_label,
            "pipeline": self._pipeline,
            "sklearn_version": self.sklearn_version,
        }
        tmp = path.with_name(path.name + ".tmp")
        joblib.dump(payload, tmp, compress=3)
        tmp.replace(path)
        return sha256_file(path)

    @classmethod
    def load(cls, path: str | Path) -> "LocalResponderModel":
        """Read a model written by :meth:`save`."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"local model artifact {path} does not exist: run `beep finetune --provider local` again"
            )
        payload = joblib.load(path)
        if not isinstance(payload, dict) or payload.get("kind") != "beep.LocalResponderModel":
            raise ValueError(f"{path} is not a Beep local responder model artifact")
        if payload.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{path} has artifact format {payload.get('format_version')}, this Beep reads {_FORMAT_VERSION}: "
                "retrain with `beep finetune --provider local`"
            )
        model = cls(payload["variant"], seed=payload["seed"])
        model.labels = list(payload["labels"])
        model._constant_label = payload["constant_label"]
        model._pipeline = payload["pipeline"]
        model.sklearn_version = payload["sklearn_version"]
        return model


def _drop_stop_words(pipeline: Pipeline) -> None:
    """Remove what makes two identical models' files differ: the vectorisers' ``stop_words_`` sets
    (only kept for introspection, sklearn says so; a set's order depends on PYTHONHASHSEED) and the
    ``_stop_words_id`` cache (an ``id()``, i.e. a memory address)."""
    for _, step in pipeline.named_steps["features"].transformer_list:
        vectorizer = step.steps[-1][1]
        for name in ("stop_words_", "_stop_words_id"):
            if hasattr(vectorizer, name):
                delattr(vectorizer, name)
