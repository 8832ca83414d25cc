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

    def word_features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The same matrix as ``self.vectorizer.transform(texts)``, computed faster.

        The vocabulary comes from a few dozen few-shot texts, so almost every n-gram of a new text is
        unknown: instead of building every n-gram (what sklearn does), look up the words and only the
        bigrams whose first word starts one in the vocabulary. Then sublinear tf x idf, l2-normalised.
        """
        vocab: dict[str, int] = self.vectorizer.vocabulary_
        get = vocab.get
        firsts = {term.split(" ", 1)[0] for term in vocab if " " in term}
        findall = re.compile(self.vectorizer.token_pattern).findall
        rows: list[int] = []
        cols: list[int] = []
        for row, text in enumerate(texts):
            words = findall(text.lower())
            hits = [j for j in map(get, words) if j is not None]
            hits += [j for j in (get(a + " " + b) for a, b in zip(words, words[1:]) if a in firsts) if j is not None]
            rows.extend([row] * len(hits))
            cols.extend(hits)
        X = sparse.coo_matrix(
            (np.ones(len(cols)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(len(texts), len(vocab)),
        ).tocsr()  # duplicates are summed: term counts
        X.sort_indices()
        X.data = 1.0 + np.log(X.data)  # sublinear_tf
        X = X @ sparse.diags(self.vectorizer.idf_)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1.0 / norms) @ X)

    def strong_probability(self, texts: Sequence[str]) -> np.ndarray:
        X = sparse.hstack(
            [self.word_features(texts), sparse.csr_matrix(shape_features(texts) / self.shape_scale)], format="csr"
        )
        return self.model.predict_proba(X)[:, 1]

    def predict(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        """Verdicts (strong when P(strong) >= 0.5) and the probability of the verdict given."""
        p = self.strong_probability(texts)
        verdicts = ["strong" if x >= 0.5 else "weak" for x in p]
        confidence = [float(x if x >= 0.5 else 1.0 - x) for x in p]
        return verdicts, confidence
