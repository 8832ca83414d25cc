"""Short dense text vectors (LSA) for "who writes about things like this".

Words are hashed (no vocabulary kept, so memory does not grow with the workspace's words),
weighted by IDF and reduced to ``dims`` dimensions with a truncated SVD fitted on a bounded sample
of messages from the training period only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

#: Hash buckets for words (the SVD keeps a dims x N_FEATURES matrix: 64 x 65,536 float32 = 16 MiB).
N_FEATURES = 1 << 16


class TextEmbedder:
    """Fit once on a sample of texts; ``embed`` maps texts to L2-normalised float32 vectors."""

    def __init__(self, dims: int = 64, seed: int = 0) -> None:
        self.dims = dims
        self.seed = seed
        self._hasher = HashingVectorizer(
            n_features=N_FEATURES, alternate_sign=False, norm=None, ngram_range=(1, 1),
            token_pattern=r"(?u)\b\w\w+\b", lowercase=True, stop_words="english",
        )
        self._idf: TfidfTransformer | None = None
        self._svd: TruncatedSVD | None = None

    def fit(self, texts: Sequence[str]) -> TextEmbedder:
        counts = self._hasher.transform(list(texts))
        self._idf = TfidfTransformer(sublinear_tf=True).fit(counts)
        weighted = self._idf.transform(counts)
        # an SVD needs more samples and non-empty columns than components
        n_components = max(1, min(self.dims, weighted.shape[0] - 1, max(1, weighted.nnz // 2)))
        if weighted.shape[0] < 3 or weighted.nnz == 0:
            self._svd = None
            self.dims = 1
            return self
        self._svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=4, random_state=self.seed)
        self._svd.fit(weighted)
        self._svd.components_ = self._svd.components_.astype(np.float32)
        self.dims = n_components
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dims) float32, each row of norm 1 (or 0 for a text with no known word)."""
        if self._idf is None:
            raise RuntimeError("TextEmbedder.embed before fit")
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        if self._svd is None:
            return np.zeros((len(texts), self.dims), dtype=np.float32)
        dense = self._svd.transform(self._idf.transform(self._hasher.transform(list(texts)))).astype(np.float32)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        np.divide(dense, norms, out=dense, where=norms > 0)
        return dense
