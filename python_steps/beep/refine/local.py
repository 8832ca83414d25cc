"""Provider ``local``: an offline strong/weak classifier fitted on the few-shot set.

What it is: TF-IDF over word 1-2-grams of the few-shot texts, plus 15 shape features of the
conversation window (:data:`SHAPE_FEATURES`: lengths, questions, chatter, technical tokens, problem
words, substantive messages), into a class-balanced logistic regression whose shape coefficients
keep a fixed sign (:data:`SHAPE_SIGNS`: a question never counts against strong, chatter never for
it). It learns from a few dozen curated examples only, so it is a cheap, deterministic stand-in for
an LLM's judgement, not an LLM. A few dozen texts cannot teach a workspace's vocabulary: words it
never saw in the few-shot set carry no weight, and the shape features — which mean the same in any
workspace — carry the verdict. Same set + same texts = same verdicts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from sklearn.feature_extraction.text import TfidfVectorizer

from beep.refine.fewshot import FewShotSet

from beep.refine.providers import LOCAL_MODEL_NAME  # noqa: F401  (recorded with local verdicts)

_WORD = re.compile(r"\w+(?:'\w+)*")  # "can't" is one word
# "@name text", "@name: text", "name: text", "name, text" at the start of a message: who it is for
_LEAD_MENTION = re.compile(r"^(?:@\S+[:,]?\s*|\S+[:,]\s+(?=\S))")
_MENTION = re.compile(r"@\S+")
_TOKEN = re.compile(r"\S+")
_LAUGH = re.compile(r"(?i)\b(?:lol|lmao|rofl|ha(?:ha)+|he(?:he)+|xd)\b|[:;]-?[)pPdD(]|\\o/")
# a token with a digit, inner punctuation (paths, file names, key=value, flags) or an inner capital (camelCase, ATI)
_TECH = re.compile(r"\d|[/\\._=:<>\[\]{}()$#|-]\w|\w[A-Z]")

#: Words that make up chatter in any workplace chat: acknowledgements, thanks, laughter, greetings,
#: availability, praise. A message made only of these (or of two words at most) is chatter.
CHATTER_WORDS = frozenset("""
ok okay k kk oki okey yes yeah yep yup ya yea no nope nah sure cool nice great awesome perfect good
fine alright right thanks thank thx ty tnx thanx cheers appreciated appreciate np yw welcome you your
so much a lot very lol lmao rofl haha hahaha hehe heh hah xd wow omg oh ah ahh aha hmm hm hmmm ugh
meh oops sorry hi hello hey hiya yo morning good evening night afternoon all everyone guys folks gn
gm bye cya later see ya brb afk back bbl bbiab ttyl lunch coffee weekend friday happy congrats
congratulations aboard agreed agree indeed true exactly same here me too got it will do done on
noted +1
""".split())
#: Words a question or a request starts with.
QUESTION_START = frozenset("""
how what why where when who whom whose which can could would should will does do did is are was
were has have anyone anybody any someone somebody there please help need
""".split())
#: Words that say something is wrong.
PROBLEM_WORDS = frozenset("""
error errors fail fails failed failing failure broken break breaks crash crashes crashed issue
issues problem problems bug bugs wrong missing stuck cannot can't cant won't wont doesn't doesnt
isn't didn't unable timeout timed down slow blocked denied invalid refused exception warning lost
corrupt declined rejected rejects throws hangs hang hanging freezes frozen freeze blank empty
""".split())

#: Names of the columns of :func:`shape_features`, in order, and the direction each may push a
#: verdict in (+1 towards strong, -1 towards weak): the few-shot set learns how much, never the sign.
#: A few dozen examples cannot tell correlated features apart, and unconstrained, one of a pair
#: would often learn the opposite sign (more chatter -> stronger) and not transfer.
SHAPE_FEATURES = (
    "log_chars", "log_words_last", "log_words_longest", "messages_5_words", "last_has_question",
    "share_with_question", "last_is_chatter", "share_chatter", "last_starts_like_question",
    "share_technical_tokens", "share_with_problem_word", "open_question_anywhere", "last_laughs",
    "problem_word_anywhere", "substantive_messages",
)
SHAPE_SIGNS = np.array([+1, +1, +1, +1, +1, +1, -1, -1, +1, +1, +1, +1, -1, +1, +1], dtype=np.float64)
#: Weight of the word features against the (standardised) shape features: words the set shares with
#: a dataset (a set curated from it) speak loudly; unknown words are zero whatever the scale.
WORD_SCALE = 3.0


def _messages(text: str) -> list[str]:
    return [m.strip() for m in text.split("\n\n") if m.strip()] or [""]


def _strip_mentions(message: str) -> str:
    previous = None
    while previous != message:
        previous, message = message, _LEAD_MENTION.sub("", message, count=1)
    return _MENTION.sub(" ", message)


def is_chatter(message: str) -> bool:
    """Whether a message is chatter: only acknowledgement / thanks / greeting words, or two words
    at most without a problem word (a question of three words or more never is)."""
    body = _strip_mentions(message).lower()
    words = _WORD.findall(body)
    if not words:
        return True
    if "?" in body and len(words) > 2:
        return False
    return all(w in CHATTER_WORDS for w in words) or (len(words) <= 2 and not any(w in PROBLEM_WORDS for w in words))


def shape_features(texts: Sequence[str]) -> np.ndarray:
    """(n, 15) features of each window (messages separated by blank lines), in :data:`SHAPE_FEATURES`
    order. Leading @-mentions are not counted as words. They mean the same in every workspace."""
    out = np.zeros((len(texts), len(SHAPE_FEATURES)), dtype=np.float64)
    for i, text in enumerate(texts):
        messages = _messages(text)
        bodies = [_strip_mentions(m) for m in messages]
        words = [_WORD.findall(b.lower()) for b in bodies]
        n_words = [len(w) for w in words]
        chatter = [is_chatter(m) for m in messages]
        tokens = [t for b in bodies for t in _TOKEN.findall(b)]
        last, last_words = bodies[-1], words[-1]
        out[i] = (
            math.log1p(len(text)),
            math.log1p(n_words[-1]),
            math.log1p(max(n_words)),
            min(sum(1 for n in n_words if n >= 5), 5),
            1.0 if "?" in last else 0.0,
            sum(1 for b in bodies if "?" in b) / len(bodies),
            1.0 if chatter[-1] else 0.0,
            sum(chatter) / len(chatter),
            1.0 if last_words and last_words[0] in QUESTION_START else 0.0,
            sum(1 for t in tokens if _TECH.search(t)) / max(len(tokens), 1),
            sum(1 for w in words if any(x in PROBLEM_WORDS for x in w)) / len(words),
            1.0 if any("?" in b and len(w) >= 3 and not c for b, w, c in zip(bodies, words, chatter)) else 0.0,
            1.0 if _LAUGH.search(last) else 0.0,
            1.0 if any(x in PROBLEM_WORDS for w in words for x in w) else 0.0,
            min(sum(1 for b, w, c in zip(bodies, words, chatter) if not c and (len(w) >= 5 or "?" in b
                    or any(x in PROBLEM_WORDS for x in w))), 5),
        )
    return out


def _fit_signed_logistic(X: sparse.csr_matrix, y: np.ndarray, *, n_free: int, signs: np.ndarray,
                         C: float) -> tuple[np.ndarray, float]:
    """Class-balanced, L2-penalised logistic regression (the objective of scikit-learn's
    ``LogisticRegression(C=C, class_weight="balanced")``) whose first ``n_free`` coefficients are free
    and whose others keep the sign in ``signs`` (L-BFGS-B with bounds). Deterministic."""
    n, d = X.shape
    weights = np.where(y == 1, n / (2.0 * max(int(y.sum()), 1)), n / (2.0 * max(int(n - y.sum()), 1)))
    target = 2.0 * y - 1.0

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:d], params[d]
        margin = target * (X @ w + b)
        value = C * float(np.sum(weights * np.logaddexp(0.0, -margin))) + 0.5 * float(w @ w)
        g = -C * weights * target / (1.0 + np.exp(margin))
        return value, np.concatenate([X.T @ g + w, [g.sum()]])

    bounds = [(None, None)] * n_free + [(0.0, None) if s > 0 else (None, 0.0) for s in signs] + [(None, None)]
    result = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 5000, "gtol": 1e-8})
    return np.asarray(result.x[:d]), float(result.x[d])


@dataclass
class LocalClassifier:
    """Fitted vectorizer + sign-constrained logistic regression; ``predict`` gives verdicts and confidences."""

    vectorizer: TfidfVectorizer
    coef: np.ndarray  # word features, then shape features
    intercept: float
    shape_mean: np.ndarray
    shape_scale: np.ndarray

    @classmethod
    def fit(cls, fewshot: FewShotSet, *, C: float = 10.0) -> "LocalClassifier":
        texts = [e.text for e in fewshot.examples]
        y = np.array([1 if e.verdict == "strong" else 0 for e in fewshot.examples])
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), lowercase=True, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        words = vectorizer.fit_transform(texts) * WORD_SCALE
        shapes = shape_features(texts)
        mean, scale = shapes.mean(axis=0), np.maximum(shapes.std(axis=0), 1e-6)
        X = sparse.hstack([words, sparse.csr_matrix((shapes - mean) / scale)], format="csr")
        coef, intercept = _fit_signed_logistic(X, y, n_free=words.shape[1], signs=SHAPE_SIGNS, C=C)
        return cls(vectorizer, coef, intercept, mean, scale)

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
            [self.word_features(texts) * WORD_SCALE, sparse.csr_matrix((shape_features(texts) - self.shape_mean) / self.shape_scale)], format="csr"
        )
        return 1.0 / (1.0 + np.exp(-(X @ self.coef + self.intercept)))

    def predict(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        """Verdicts (strong when P(strong) >= 0.5) and the probability of the verdict given."""
        p = self.strong_probability(texts)
        verdicts = ["strong" if x >= 0.5 else "weak" for x in p]
        confidence = [float(x if x >= 0.5 else 1.0 - x) for x in p]
        return verdicts, confidence
