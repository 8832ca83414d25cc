"""Provider ``local``: an offline scikit-learn strong/weak classifier fitted on the few-shot set.

What it is: TF-IDF over word 1-2-grams of the few-shot texts, plus three shape features (log
length, log words of the longest message, number of messages of five words or more — chit-chat
is short), into a
class-balanced logistic regression. It learns from the 20-30 curated examples only, so it is a
cheap, deterministic stand-in for the LLM's judgement, not an LLM: words it never saw in the
few-shot set carry no weight and the shape features decide. Same set + same texts = same verdicts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from beep.refine.fewshot import FewShotSet

from beep.refine.providers import LOCAL_MODEL_NAME  # noqa: F401  (recorded with local verdicts)

_WORD = re.compile(r"\w+")


def shape_features(texts: Sequence[str]) -> np.ndarray:
    """(n, 3): log1p(chars), log1p(words of the longest message), messages with >= 5 words."""
    out = np.empty((len(texts), 3), dtype=np.float64)
    for i, text in enumerate(texts):
        words = [len(_WORD.findall(m)) for m in text.split("\n\n") if m.strip()] or [0]
        out[i, 0] = math.log1p(len(text))
        out[i, 1] = math.log1p(max(words))
        out[i, 2] = sum(1 for w in words if w >= 5)
    return out


@dataclass
class LocalClassifier:
    """Fitted vectorizer + logistic regression; ``predict`` gives verdicts and confidences."""

    vectorizer: TfidfVectorizer
    model: LogisticRegression
    shape_scale: np.ndarray

    @classmethod
    def fit(cls, fewshot: FewShotSet) -> "LocalClassifier":
        texts = [e.text for e in fewshot.examples]
        y = np.array([1 if e.verdict == "strong" else 0 for e in fewshot.examples])
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), lowercase=True, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        words = vectorizer.fit_transform(texts)
        shapes = shape_features(texts)
        scale = np.maximum(shapes.std(axis=0), 1e-6)
        X = sparse.hstack([words, sparse.csr_matrix(shapes / scale)], format="csr")
        model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=1000, solver="liblinear", random_state=0)
        model.fit(X, y)
        return cls(vectorizer, model, scale)

    def strong_probability(self, texts: Sequence[str]) -> np.ndarray:
        X = sparse.hstack(
            [self.vectorizer.transform(texts), sparse.csr_matrix(shape_features(texts) / self.shape_scale)], format="csr"
        )
        return self.model.predict_proba(X)[:, 1]

    def predict(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        """Verdicts (strong when P(strong) >= 0.5) and the probability of the verdict given."""
        p = self.strong_probability(texts)
        verdicts = ["strong" if x >= 0.5 else "weak" for x in p]
        confidence = [float(x if x >= 0.5 else 1.0 - x) for x in p]
        return verdicts, confidence
