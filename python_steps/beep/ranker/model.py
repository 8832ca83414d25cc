"""The responder ranker: LightGBM lambdarank over candidates, a softmax temperature and a
"nobody" classifier, fitted on an export's train split; scores any example of the dataset.

Training (``fit``; the settings are :class:`RankerHyperparameters`, documented in docs/ranker.md):

1. the train examples, oldest first; the most recent ``max_train_examples`` are used, the last
   ``holdout_share`` of them (by time) held out;
2. a text embedder fitted on messages up to the last train example only;
3. one chronological pass over the messages (:func:`beep.ranker.training.replay_training_set`) takes
   every train example's candidates as of its last context message; a training group keeps the
   responder and ``negatives`` other candidates (sampled with the seed), a held-out group keeps all
   of them — arrays, the only step that reads the database;
4. :meth:`ResponderRanker.learn` (arrays in, no database): the ranker is fitted on the earlier groups
   (early stopping on the held-out NDCG@``eval_at``), the temperature of the softmax over a group's
   scores and the nobody classifier (examples refinement labelled ``nil``) on the held-out ones.

Refinement decides *whether* to alert, the ranker *whom*: every example (``nil`` ones too — someone
did answer) is a ranking group, and the ``nil`` labels teach the nobody classifier. (Leaving the
``nil`` examples out of the ranking measured worse: on a generated 2,000-person workspace newcomer
top-1 fell from 0.282 to 0.250 with 22 % of the examples labelled nil.)
"""

from __future__ import annotations

import math
import os
import pickle
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import duckdb
import joblib
import lightgbm as lgb
import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from beep.labels import NIL_LABEL as NIL
from beep.ranker.features import (
    FEATURE_DEFINITIONS,
    FEATURES,
    Candidates,
    columns,
    reason,
)
from beep.ranker.state import ConversationState, WorkspaceState
from beep.ranker.stream import Query, replay, sample_texts
from beep.ranker.text import TextEmbedder
from beep.ranker.training import HeldOut, replay_training_set

FORMAT_VERSION = 5


@dataclass(frozen=True)
class RankerHyperparameters:
    """The ranker's settings (docs/ranker.md, "Hyperparameters", says what each does and why)."""

    learner: str = "lightgbm-lambdarank"
    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 40
    negatives: int = 10
    max_train_examples: int = 40_000
    max_bin: int = 63
    holdout_share: float = 0.15
    text_dims: int = 64
    early_stopping_rounds: int = 30
    eval_at: int = 5
    monotone_mentions: bool = True
    mentioned_first: bool = True

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RankerHyperparameters:
        """From a dict (a saved artifact's, or a caller's overrides): missing names keep their default;
        an unknown name is refused, naming the known ones."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown ranker hyperparameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
        defaults = cls()
        return cls(**{name: type(getattr(defaults, name))(value) for name, value in values.items()})

    def settings(self) -> dict[str, Any]:
        """The settings as a dict (saved in the artifact, part of the fine-tune job's settings hash). The
        fields added after the first jobs were hashed (_LATER_FIELDS) are in it only when they differ
        from their default, so that an unchanged ranker keeps its job id and its trained artifact."""
        values = asdict(self)
        defaults = asdict(RankerHyperparameters())
        return {k: v for k, v in values.items() if k not in _LATER_FIELDS or v != defaults[k]}


_LATER_FIELDS = frozenset({"eval_at", "monotone_mentions", "mentioned_first"})
DEFAULT_HYPERPARAMETERS = RankerHyperparameters()
#: The default settings as a dict (part of the fine-tune job's settings hash).
HYPERPARAMETERS: dict[str, Any] = DEFAULT_HYPERPARAMETERS.settings()
#: What the nobody classifier reads of a conversation (with the ranker's top probability and margin):
#: what it says and its rhythm, not who wrote it (a conversation typed into `beep predict` has no
#: known authors, and must not look unlike every training example for that alone).
_GROUP_COLUMNS = ("conv_length", "log_gap", "log_last_chars", "last_question")
_GROUP_IDX = columns(_GROUP_COLUMNS)
#: The workspace state is saved (beside the artifact) every this many messages of the replay, so that
#: `beep predict --at T` resumes from the latest state before T instead of replaying from the start;
#: at most MAX_CHECKPOINTS of them (the interval grows with the workspace).
CHECKPOINT_MESSAGES = 10_000
MAX_CHECKPOINTS = 40
#: LightGBM's monotone constraints (with ``monotone_mentions``): 1 for the features declared
#: ``monotone_up`` (the score may only increase with them), in FEATURES order.
_MONOTONE = [1 if f.monotone_up else 0 for f in FEATURE_DEFINITIONS]


@dataclass(frozen=True)
class RankedPeople:
    """The ranker's answer for one conversation."""

    example_id: str
    user_ids: tuple[str, ...]  # best first
    probabilities: tuple[float, ...]  # P(this person answers and should be alerted)
    reasons: tuple[str, ...]
    nobody_probability: float
    n_candidates: int
    #: the ranked people's feature rows (FEATURES order), only when asked for (``score(with_features=True)``)
    features: np.ndarray | None = None


@dataclass
class FitReport:
    n_train_examples: int = 0
    n_used: int = 0
    n_groups: int = 0
    n_rows: int = 0
    n_holdout: int = 0
    candidate_recall: float | None = None
    mean_candidates: float | None = None
    best_iteration: int | None = None
    temperature: float = 1.0
    nobody_model: str = "none"
    messages: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    feature_importance: dict[str, float] = field(default_factory=dict)


def _threads() -> int:
    """LightGBM's threads: one core is left to the rest (OpenMP threads that share a core with other
    work spin and wait; measured 2.7x slower with 2 threads than 1 on a busy 2-core machine)."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def every(seconds: float, report: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """``report`` at most every ``seconds`` (and always when done): progress that also shows in a pipe."""
    import time

    last = [time.monotonic()]

    def call(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds or done == total:
            if done == total and last[0] == -1.0:
                return
            report(done, total)
            last[0] = -1.0 if done == total else now

    return call


def _nobody_features(features: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The nobody classifier's inputs for one conversation: its _GROUP_COLUMNS (the same on every
    candidate row), the top probability and its margin over the second."""
    if len(features) == 0:
        return np.zeros(len(_GROUP_IDX) + 2, dtype=np.float64)
    top = np.sort(probs)[::-1]
    margin = top[0] - (top[1] if len(top) > 1 else 0.0)
    return np.concatenate([features[0, _GROUP_IDX].astype(np.float64), [top[0], margin]])


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    if len(scores) == 0:
        return scores
    z = scores / temperature
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def mentioned_first(cands: Candidates, probs: np.ndarray) -> np.ndarray:
    """The rule in rank order: people @-mentioned in the conversation's last message rank first (in
    the model's order among them). Their probabilities are raised by the least amount that puts them
    above everyone else, then the group is scaled back to its sum (the people's order and the label
    mass stay consistent). Measured on the stored predictions
    (docs/ranker.md, "Mentioned first"): where the responder was mentioned in the last message,
    top-1 0.692 -> 1.000 on the sample and 0.956 -> 0.992 on a generated workspace, and person top-1
    on all replies changed by +0.030 / -0.001 / -0.003 (sample / generated / ubuntu-irc)."""
    if len(probs) < 2:
        return probs
    mentioned = cands.feature("mentioned_last") > 0
    if not mentioned.any():
        return probs
    others = probs[~mentioned]
    shift = max(0.0, float(others.max()) - float(probs[mentioned].min())) + 1e-9 if len(others) else 0.0
    if shift <= 1e-9:
        return probs  # already first
    total = float(probs.sum())
    lifted = probs + mentioned * shift
    return lifted * (total / float(lifted.sum()))


class ResponderRanker:
    """Candidates + lambdarank + temperature + nobody classifier (see the module docstring)."""

    def __init__(self, *, seed: int = 0,
                 hyperparameters: RankerHyperparameters | Mapping[str, Any] | None = None) -> None:
        self.seed = seed
        self.hp: RankerHyperparameters = (
            hyperparameters if isinstance(hyperparameters, RankerHyperparameters)
            else DEFAULT_HYPERPARAMETERS if hyperparameters is None
            else RankerHyperparameters.from_mapping(hyperparameters))
        self.embedder: TextEmbedder | None = None
        self.booster: lgb.Booster | None = None
        self.temperature = 1.0
        self.nobody_model: Any = None
        self.nobody_prior = 0.0
        self.state: WorkspaceState | None = None  # as of the end of the data, for `beep predict`
        self.trained_until: float | None = None
        self.snapshot: bytes | None = None  # the pickled state as of trained_until (conversations kept)
        #: (t, zlib-compressed pickled state as of t: every message written up to t observed), oldest
        #: first: where `state_at` resumes from. Saved beside the artifact; ``checkpoint_files`` after load.
        self.checkpoints: list[tuple[float, bytes]] = []
        self.checkpoint_files: list[tuple[float, Path, str]] = []  # (t, file, sha256 of its bytes)
        self._spilled: Path | None = None  # the folder :meth:`fit` spilled its checkpoints to (this model's own)

    # -- training ----------------------------------------------------------------------------
    def fit(self, con: duckdb.DuckDBPyConnection, train: Sequence[Query], *,
            say: Callable[[str], None] = lambda _m: None, spill_dir: Path | None = None) -> FitReport:
        """Train on ``train`` (its labels teach the nobody classifier): the text embedder and one replay
        of the database make the arrays, :meth:`learn` fits on them. With ``spill_dir`` the states saved
        every so many messages go to files there as the replay makes them (:meth:`save` moves them
        beside the artifact), not into memory."""
        import time

        report = FitReport(n_train_examples=len(train))
        if not train:
            raise ValueError("cannot train the responder ranker on zero examples: the export's train split is empty")
        hp = self.hp
        clock = time.perf_counter()
        ordered = sorted(train, key=lambda q: (q.target_at, q.example_id))
        used = ordered[-hp.max_train_examples:]
        report.n_used = len(used)
        n_holdout = max(1, round(len(used) * hp.holdout_share)) if len(used) >= 20 else 0
        holdout_ids = {q.example_id for q in used[len(used) - n_holdout:]} if n_holdout else set()
        self.trained_until = ordered[-1].target_at
        say(f"fitting the text embedder on messages up to the last train example ({len(used)} of {len(train)} examples used)")
        self.embedder = TextEmbedder(dims=hp.text_dims, seed=self.seed).fit(sample_texts(con, self.trained_until) or [""])
        report.seconds["embedder"] = round(time.perf_counter() - clock, 2)

        n_messages = int(con.execute("select count(*) from int_conversations").fetchone()[0])
        clock = time.perf_counter()
        replayed = replay_training_set(
            con, self.embedder, used, holdout_ids, trained_until=self.trained_until, negatives=hp.negatives,
            seed=self.seed, checkpoint_every=max(CHECKPOINT_MESSAGES, -(-n_messages // MAX_CHECKPOINTS)),
            progress=every(10.0, lambda done, total: say(
                f"candidates for {done:,}/{total:,} train examples (this replay: {time.perf_counter() - clock:.0f} s)")),
            spill_dir=spill_dir)
        self.state, self.snapshot, self.checkpoints = replayed.state, replayed.snapshot, replayed.checkpoints
        self.checkpoint_files = replayed.checkpoint_files
        self._spilled = spill_dir
        report.messages = replayed.messages
        report.seconds["replay"] = round(time.perf_counter() - clock, 2)
        data = replayed.training
        report.candidate_recall = data.found / len(used)
        report.mean_candidates = data.candidate_rows / len(used)
        say(f"training the ranker on {len(data.groups):,} conversations ({len(data.y):,} candidate rows), "
            f"{len(data.holdout):,} held out; responder among the candidates in {report.candidate_recall:.1%}")
        nil_prior = sum(q.label == NIL for q in train) / len(train)
        self.learn(data.x, data.y, data.groups, data.holdout, nil_prior=nil_prior, report=report)
        self.state.conversations.clear()  # the state is as of the end of the data: what predict needs
        return report

    def learn(self, x: np.ndarray, y: np.ndarray, groups: Sequence[int], holdout: HeldOut, *,
              nil_prior: float, report: FitReport | None = None) -> FitReport:
        """Fit the ranker on the groups (``x``: their candidate rows in FEATURES order, group after group;
        ``y``: 1 for the responder; ``groups``: rows per group), then the temperature and the nobody
        classifier on the held-out examples (``nil_prior``: the train examples' nil share, P(nobody)
        when too few are held out). Arrays only: no database."""
        import time

        report = report or FitReport()
        if not len(groups):
            raise ValueError(
                "no train example has its responder among the candidates (or every one is labelled nil): "
                "the export's train split is too small or too odd to train the ranker on"
            )
        report.n_groups, report.n_rows, report.n_holdout = len(groups), len(y), len(holdout)
        clock = time.perf_counter()
        eval_idx = [i for i, (f, p) in enumerate(zip(holdout.features, holdout.responder)) if p >= 0 and len(f) >= 2]
        self.booster = self._fit_booster(x, y, groups, [holdout.features[i] for i in eval_idx],
                                         holdout.responder[eval_idx])
        report.best_iteration = int(self.booster.best_iteration or self.booster.current_iteration())
        report.seconds["ranker"] = round(time.perf_counter() - clock, 2)
        gains = self.booster.feature_importance(importance_type="gain")
        total_gain = float(gains.sum()) or 1.0
        report.feature_importance = {name: round(float(g) / total_gain, 4) for name, g in
                                     sorted(zip(FEATURES, gains), key=lambda kv: -kv[1])}

        clock = time.perf_counter()
        self.temperature = self._fit_temperature([holdout.features[i] for i in eval_idx], holdout.responder[eval_idx])
        report.temperature = round(self.temperature, 4)
        report.nobody_model = self._fit_nobody(holdout, nil_prior)
        report.seconds["calibration"] = round(time.perf_counter() - clock, 2)
        return report

    def _fit_booster(self, x: np.ndarray, y: np.ndarray, groups: Sequence[int],
                     eval_features: list[np.ndarray], eval_responder: np.ndarray) -> lgb.Booster:
        """LightGBM lambdarank on the groups, early stopping on the held-out groups' NDCG@eval_at."""
        hp = self.hp
        params: dict[str, Any] = {
            "objective": "lambdarank", "learning_rate": hp.learning_rate, "num_leaves": hp.num_leaves,
            "min_data_in_leaf": hp.min_child_samples, "seed": self.seed, "deterministic": True,
            "force_row_wise": True, "max_bin": hp.max_bin, "num_threads": _threads(), "verbosity": -1,
            "eval_at": [hp.eval_at]}
        if hp.monotone_mentions:
            # being @-mentioned (and not having answered since) never makes someone less likely to answer
            params["monotone_constraints"] = _MONOTONE
            params["monotone_constraints_method"] = "advanced"
        train_set = lgb.Dataset(x, y, group=list(groups), feature_name=list(FEATURES), free_raw_data=True)
        valid_sets, callbacks = [], []
        if eval_features:
            ex = np.vstack(eval_features)
            ey = np.concatenate([(np.arange(len(f)) == p).astype(np.int32) for f, p in zip(eval_features, eval_responder)])
            valid_sets = [lgb.Dataset(ex, ey, group=[len(f) for f in eval_features], reference=train_set)]
            callbacks = [lgb.early_stopping(hp.early_stopping_rounds, verbose=False)]
        return lgb.train(params, train_set, num_boost_round=hp.n_estimators, valid_sets=valid_sets, callbacks=callbacks)

    def _scores(self, features: np.ndarray) -> np.ndarray:
        assert self.booster is not None
        if len(features) == 0:
            return np.zeros(0)
        return self.booster.predict(features, num_iteration=self.booster.best_iteration or None)

    def _fit_temperature(self, features: list[np.ndarray], responder: np.ndarray) -> float:
        """The softmax temperature that maximises the held-out responders' likelihood (``features``: each
        group's candidate rows; ``responder``: the responder's row in each)."""
        if not features:
            return 1.0
        sizes = np.array([len(f) for f in features])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        scores = self._scores(np.vstack(features))
        positives = starts + np.asarray(responder)
        group_max = np.maximum.reduceat(scores, starts)
        shifted = scores - np.repeat(group_max, sizes)

        def nll(log_t: float) -> float:
            z = shifted / math.exp(log_t)
            return float(np.mean(np.log(np.add.reduceat(np.exp(z), starts)) - z[positives]))

        result = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded", options={"xatol": 1e-3})
        return float(math.exp(result.x))

    def _fit_nobody(self, holdout: HeldOut, nil_share: float) -> str:
        self.nobody_prior = nil_share
        self.nobody_model = None
        keep = [i for i, f in enumerate(holdout.features) if len(f)]
        rows = [holdout.features[i] for i in keep]
        labels = holdout.nil[keep].astype(np.int32)
        if len(rows) < 20 or labels.sum() < 10 or (1 - labels).sum() < 10:
            return f"prior {nil_share:.4f} (too few held-out nil / non-nil examples to fit a classifier)"
        sizes = [len(f) for f in rows]
        scores = np.split(self._scores(np.vstack(rows)), np.cumsum(sizes)[:-1])
        x = np.vstack([_nobody_features(f, _softmax(s, self.temperature)) for f, s in zip(rows, scores)])
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))
        model.fit(x, labels)
        self.nobody_model = model
        return f"logistic regression on {len(rows):,} held-out examples ({int(labels.sum()):,} nil)"

    # -- scoring -----------------------------------------------------------------------------
    def rank(self, example_id: str, cands: Candidates, *, state: WorkspaceState | None = None) -> RankedPeople:
        """Probabilities for one conversation's candidates, best first."""
        state = state or self.state
        assert state is not None
        return self._ranked_many([(example_id, cands)], self._scores(cands.features), state, top=None)[0]

    def score(self, con: duckdb.DuckDBPyConnection, queries: Sequence[Query],
              on_ranked: Callable[[list[RankedPeople]], None], *, batch: int = 2000, top: int | None = 20,
              progress: Callable[[int, int], None] | None = None, with_features: bool = False) -> None:
        """Replay the workspace and rank each query right after its last context message (live state,
        as a bot would have it); hand results over in batches. The replay resumes from the latest
        state saved before the first query (the one at the end of the training period, or one saved
        every so many messages during it: the same state a replay from the start reaches there, a
        test compares them), else from the start."""
        assert self.embedder is not None
        state: WorkspaceState | None = None
        since: float | None = None
        starts = [q.last_at for q in queries if q.last_at is not None]
        if starts and len(starts) == len(queries):
            state, since = self._saved_state_before(min(starts) - 1e-6)
        if state is None:
            state, since = WorkspaceState(self.embedder.dims), None
        pending: list[tuple[Query, Candidates]] = []

        def flush() -> None:
            if not pending:
                return
            feats = [c.features for _, c in pending]
            scores = self._scores(np.vstack(feats)) if sum(len(f) for f in feats) else np.zeros(0)
            out = self._ranked_many([(q.example_id, c) for q, c in pending], scores, state, top=top,
                                    with_features=with_features)
            pending.clear()
            on_ranked(out)

        def take(query: Query, cands: Candidates) -> None:
            pending.append((query, cands))
            if len(pending) >= batch:
                flush()

        last = max((q.target_at for q in queries), default=None)
        replay(con, state, self.embedder, queries, take, until=last, since=since, progress=progress)
        flush()

    def state_at(self, con: duckdb.DuckDBPyConnection, at: float) -> WorkspaceState:
        """The workspace as of ``at`` (epoch seconds): every message written at or before then observed,
        open conversations included — the state :meth:`score` ranks with right after a message written
        at ``at``. After the training period it resumes from the state saved at its end and replays only
        the messages since (as :meth:`score` does); before it, it replays from the start."""
        assert self.embedder is not None
        state, since = self._saved_state_before(at)
        if state is None:
            state, since = WorkspaceState(self.embedder.dims), None
        replay(con, state, self.embedder, (), lambda _q, _c: None, until=at, since=since)
        return state

    def _saved_state_before(self, at: float) -> tuple[WorkspaceState | None, float | None]:
        """The latest saved state as of a time at or before ``at`` (the training snapshot or a checkpoint)
        and that time; a checkpoint file that is missing or altered is passed over."""
        import hashlib

        bases: list[tuple[float, Callable[[], WorkspaceState | None]]] = []
        if self.snapshot is not None and self.trained_until is not None:
            snapshot = self.snapshot
            bases.append((self.trained_until, lambda: pickle.loads(snapshot)))
        for until, blob in self.checkpoints:
            bases.append((until, lambda blob=blob: pickle.loads(zlib.decompress(blob))))

        def from_file(file: Path, sha: str) -> WorkspaceState | None:
            try:
                blob = file.read_bytes()
            except OSError:
                return None
            return pickle.loads(zlib.decompress(blob)) if hashlib.sha256(blob).hexdigest() == sha else None

        for until, file, sha in self.checkpoint_files:
            bases.append((until, lambda file=file, sha=sha: from_file(file, sha)))
        for until, load in sorted((b for b in bases if b[0] <= at), key=lambda b: -b[0]):
            state = load()
            if state is not None:
                return state, until
        return None, None

    def rank_at(self, con: duckdb.DuckDBPyConnection, conversation_id: str, at: float, *,
                channel_name: str | None = None,
                fallback: Callable[[WorkspaceState], ConversationState] | None = None,
                top: int | None = 20) -> RankedPeople:
        """Rank the people for a conversation in progress at ``at`` (epoch seconds) with the workspace
        state as of then (:meth:`state_at`); time features and reasons ("active … today") are measured
        from ``at``. When ``at`` is the time of the conversation's last message, this is what
        :meth:`score` gives the example whose last context message that is. ``fallback``: the
        conversation to rank, built on the state, when the state no longer holds it (idle longer than the
        state keeps one)."""
        from beep.ranker.features import candidates

        state = self.state_at(con, at)
        conv = state.conversations.get(conversation_id)
        if conv is None and fallback is not None:
            conv = fallback(state)
        if conv is None:
            return RankedPeople(conversation_id, (), (), (), 1.0, 0)
        cands = candidates(state, conv, at, channel_name=channel_name)
        return self._ranked_many([(conversation_id, cands)], self._scores(cands.features), state, top=top)[0]

    def _nobody(self, cands: Sequence[Candidates], probs: Sequence[np.ndarray]) -> np.ndarray:
        if self.nobody_model is None:
            return np.full(len(cands), float(self.nobody_prior))
        x = np.vstack([_nobody_features(c.features, p) for c, p in zip(cands, probs)])
        out = self.nobody_model.predict_proba(x)[:, 1]
        out[[len(c.people) == 0 for c in cands]] = 1.0
        return out

    def _ranked_many(self, items: Sequence[tuple[str, Candidates]], scores: np.ndarray, state: WorkspaceState,
                     top: int | None = 20, with_features: bool = False) -> list[RankedPeople]:
        """Rank several conversations from their candidates' concatenated scores."""
        sizes = [len(c.people) for _, c in items]
        per = np.split(scores, np.cumsum(sizes)[:-1]) if items else []
        probs = [_softmax(s, self.temperature) for s in per]
        nobody = self._nobody([c for _, c in items], probs)
        if self.hp.mentioned_first:
            probs = [mentioned_first(c, p) for (_, c), p in zip(items, probs)]
        out = []
        for (example_id, cands), p, nb in zip(items, probs, nobody):
            if len(cands.people) == 0:
                out.append(RankedPeople(example_id, (), (), (), 1.0, 0))
                continue
            order = np.lexsort((cands.people, -p))[:top]
            out.append(RankedPeople(
                example_id,
                tuple(state.user_ids[int(cands.people[i])] for i in order),
                tuple(float(p[i] * (1.0 - nb)) for i in order),
                tuple(reason(cands.features[i], cands.channel_name) for i in order),
                float(nb),
                len(cands.people),
                cands.features[order] if with_features else None,
            ))
        return out

    def conversation(self, channel: str | None, authors: Sequence[str], texts: Sequence[str],
                     mentions: Sequence[Sequence[str]], ats: Sequence[float], *,
                     state: WorkspaceState | None = None) -> ConversationState:
        """A conversation in progress (oldest message first) as the state's structure, for predict
        (``state``: whose people ids it uses; the state as of the end of the data by default)."""
        state = state or self.state
        assert state is not None and self.embedder is not None
        conv = ConversationState(channel=channel or "")
        vectors = self.embedder.embed([t or "" for t in texts]) if texts else np.zeros((0, self.embedder.dims), np.float32)
        for i, (author, text) in enumerate(zip(authors, texts)):
            user = state.known(author) if author else None
            user = -1 - i if user is None else user  # an unknown author: nobody the ranker knows
            ids = tuple(u for u in (state.known(m) for m in (mentions[i] if i < len(mentions) else ())) if u is not None)
            conv.authors.append(user)
            conv.ats.append(ats[i] if i < len(ats) else state.now)
            conv.vectors.append(vectors[i])
            conv.mentions.append(ids)
            conv.count_by_user[user] = conv.count_by_user.get(user, 0) + 1
            conv.last_index_by_user[user] = conv.n_messages
            if ids:
                conv.mentioned_by_user.setdefault(user, set()).update(ids)
                for mentioned in ids:
                    conv.last_mention_index[mentioned] = conv.n_messages
            conv.n_messages += 1
            conv.last_chars = len(text or "")
            conv.last_question = "?" in (text or "")
            conv.last_at = conv.ats[-1]
        return conv

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> str:
        from beep.checksums import sha256_file

        if self.booster is None or self.embedder is None or self.state is None:
            raise RuntimeError("refusing to save an untrained responder ranker")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format_version": FORMAT_VERSION, "kind": "beep.ResponderRanker", "seed": self.seed,
            "hyperparameters": self.hp.settings(), "features": FEATURES, "nobody_columns": _GROUP_COLUMNS, "booster": self.booster.model_to_string(),
            "temperature": self.temperature, "nobody_model": self.nobody_model, "nobody_prior": self.nobody_prior,
            # the state as pickled bytes: joblib unpickles objects in pure Python, bytes it hands over
            # whole to pickle.loads, much faster (measured: docs/benchmarks.md, "Measurements that were code comments")
            "embedder": self.embedder, "state": pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL),
            "trained_until": self.trained_until,
            "snapshot": self.snapshot,
            "checkpoints": self._save_checkpoints(path),
        }
        tmp = path.with_name(path.name + ".tmp")
        joblib.dump(payload, tmp, compress=3)
        tmp.replace(path)
        return sha256_file(path)

    @staticmethod
    def checkpoint_dir(path: str | Path) -> Path:
        """Where the states saved every so many messages lie, beside the artifact (``model.states/``)."""
        path = Path(path)
        return path.with_name(path.stem + ".states")

    def _save_checkpoints(self, path: Path) -> list[tuple[float, str, str]]:
        """Write the checkpoints beside the artifact; (time, file name, sha256) for its payload. One at a
        time (never every state in memory at once): written to a fresh folder that then replaces the old
        one; the files :meth:`fit` spilled are moved there, another model's (a kept model's origin) copied."""
        import hashlib
        import os
        import shutil

        folder = self.checkpoint_dir(path)
        staging = folder.with_name(folder.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        written: list[tuple[float, str, str]] = []
        moved: list[tuple[float, Path, str]] = []
        if self.checkpoints:
            sources: list[tuple[float, bytes | Path, str | None]] = [(t, blob, None) for t, blob in self.checkpoints]
        else:
            sources = [(t, file, sha) for t, file, sha in self.checkpoint_files if file.exists()]
        for i, (until, source, sha) in enumerate(sources):
            staging.mkdir(parents=True, exist_ok=True)
            name = f"{i:04d}.pickle.zlib"
            if isinstance(source, bytes):
                (staging / name).write_bytes(source)
                sha = hashlib.sha256(source).hexdigest()
            elif self._spilled is not None and source.parent == self._spilled:
                os.replace(source, staging / name)
                moved.append((float(until), folder / name, str(sha)))
            else:
                shutil.copyfile(source, staging / name)
            written.append((float(until), name, str(sha)))
        shutil.rmtree(folder, ignore_errors=True)
        if written:
            os.replace(staging, folder)
        if moved:  # this model's states now lie beside its artifact
            self.checkpoint_files = moved
            shutil.rmtree(self._spilled, ignore_errors=True)
            self._spilled = None
        return written

    @classmethod
    def load(cls, path: str | Path) -> ResponderRanker:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"ranker artifact {path} does not exist: run `beep finetune --provider local` again")
        payload = joblib.load(path)
        if not isinstance(payload, dict) or payload.get("kind") != "beep.ResponderRanker":
            raise ValueError(f"{path} is not a Beep responder ranker artifact")
        if (payload.get("format_version") != FORMAT_VERSION or tuple(payload.get("features", ())) != FEATURES
                or tuple(payload.get("nobody_columns", ())) != _GROUP_COLUMNS):
            raise ValueError(f"{path} was written by another version of the ranker: retrain with `beep finetune --provider local`")
        model = cls(seed=payload["seed"], hyperparameters=RankerHyperparameters.from_mapping(payload["hyperparameters"]))
        model.booster = lgb.Booster(model_str=payload["booster"])
        model.temperature = payload["temperature"]
        model.nobody_model = payload["nobody_model"]
        model.nobody_prior = payload["nobody_prior"]
        model.embedder = payload["embedder"]
        state = payload["state"]
        model.state = pickle.loads(state) if isinstance(state, bytes) else state
        model.trained_until = payload["trained_until"]
        model.snapshot = payload.get("snapshot")
        folder = cls.checkpoint_dir(path)
        model.checkpoint_files = [(float(until), folder / name, sha) for until, name, sha in payload.get("checkpoints", ())]
        return model

