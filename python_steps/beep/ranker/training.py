"""The ranker's training data: one chronological replay of the workspace that turns the train
examples into ranking groups (the feature matrix, the responder flags, the group sizes) and the
held-out groups the calibration learns from.

This is the only part of training that reads the database; what it returns is arrays, and
:meth:`beep.ranker.model.ResponderRanker.learn` fits the ranker, the temperature and the nobody
classifier from them alone.
"""

from __future__ import annotations

import hashlib
import pickle
import zlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from beep.labels import NIL_LABEL as NIL
from beep.ranker.features import FEATURES, Candidates
from beep.ranker.state import WorkspaceState
from beep.ranker.stream import Query, replay
from beep.ranker.text import TextEmbedder


@dataclass(frozen=True)
class HeldOut:
    """The held-out train examples, every candidate kept: what early stopping, the temperature and the
    nobody classifier learn from."""

    #: per example, its candidates' feature rows (candidates, FEATURES)
    features: list[np.ndarray]
    #: per example, the responder's row among its candidates (-1: not a candidate)
    responder: np.ndarray
    #: per example, whether refinement labelled it nil
    nil: np.ndarray

    def __len__(self) -> int:
        return len(self.features)

    @classmethod
    def empty(cls) -> HeldOut:
        return cls([], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))


@dataclass
class TrainingSet:
    """The ranking groups to learn from and the held-out ones (see the module docstring)."""

    x: np.ndarray  # (rows, FEATURES) float32: the groups' candidate rows, group after group
    y: np.ndarray  # (rows,) int32: 1 for the responder (each group's first row), else 0
    groups: list[int]  # rows per group, in order
    holdout: HeldOut
    found: int = 0  # examples whose responder was among the candidates (held out ones included)
    candidate_rows: int = 0  # candidates of every example replayed, before sampling


@dataclass
class Replayed:
    """What the chronological pass leaves: the training data and the workspace state."""

    training: TrainingSet
    state: WorkspaceState  # as of the end of the data (every message observed)
    snapshot: bytes  # the pickled state as of the last train example (open conversations kept)
    checkpoints: list[tuple[float, bytes]] = field(default_factory=list)  # (t, zlib-compressed pickled state)
    #: with a spill folder, the checkpoints as files instead: (t, file, sha256 of its bytes)
    checkpoint_files: list[tuple[float, Path, str]] = field(default_factory=list)
    messages: int = 0


class _GroupCollector:
    """Takes each train example's candidates as the replay reaches it: a held-out example is kept whole;
    a training one becomes a group of the responder and ``negatives`` other candidates sampled with the
    seed (examples whose responder is no candidate, or with fewer than 2 candidates, are left out)."""

    def __init__(self, state: WorkspaceState, holdout_ids: Collection[str], negatives: int, seed: int) -> None:
        self.state = state
        self.holdout_ids = holdout_ids
        self.negatives = negatives
        self.rng = np.random.default_rng(seed)
        self.x: list[np.ndarray] = []
        self.y: list[np.ndarray] = []
        self.groups: list[int] = []
        self.hold_features: list[np.ndarray] = []
        self.hold_responder: list[int] = []
        self.hold_nil: list[bool] = []
        self.found = 0
        self.candidate_rows = 0

    def __call__(self, query: Query, cands: Candidates) -> None:
        responder = self.state.known(query.responder_user_id)
        where = np.flatnonzero(cands.people == responder) if responder is not None else np.zeros(0, dtype=np.int64)
        pos = int(where[0]) if len(where) else -1
        self.candidate_rows += len(cands.people)
        if pos >= 0:
            self.found += 1
        if query.example_id in self.holdout_ids:
            self.hold_features.append(cands.features)
            self.hold_responder.append(pos)
            self.hold_nil.append(query.label == NIL)
            return
        if pos < 0 or len(cands.people) < 2:
            return
        others = np.delete(np.arange(len(cands.people)), pos)
        if len(others) > self.negatives:
            others = np.sort(self.rng.choice(others, size=self.negatives, replace=False))
        keep = np.concatenate([[pos], others])
        self.x.append(cands.features[keep])
        y = np.zeros(len(keep), dtype=np.int32)
        y[0] = 1
        self.y.append(y)
        self.groups.append(len(keep))

    def result(self) -> TrainingSet:
        holdout = HeldOut(self.hold_features, np.array(self.hold_responder, dtype=np.int64),
                          np.array(self.hold_nil, dtype=bool))
        x = np.vstack(self.x) if self.x else np.zeros((0, len(FEATURES)), dtype=np.float32)
        y = np.concatenate(self.y) if self.y else np.zeros(0, dtype=np.int32)
        return TrainingSet(x, y, self.groups, holdout, self.found, self.candidate_rows)


def replay_training_set(
    con: duckdb.DuckDBPyConnection,
    embedder: TextEmbedder,
    used: Sequence[Query],
    holdout_ids: Collection[str],
    *,
    trained_until: float,
    negatives: int,
    seed: int,
    checkpoint_every: int,
    progress: Callable[[int, int], None] | None = None,
    spill_dir: Path | None = None,
) -> Replayed:
    """One chronological pass over the workspace's messages: every train example's candidates as of its
    last context message (collected into a :class:`TrainingSet`), the state pickled as of the last train
    example (``snapshot``: evaluating later examples resumes from it) and every ``checkpoint_every``
    messages (``beep predict --at`` resumes from those), then on to the end of the data. With
    ``spill_dir``, each checkpoint is written there as it is made rather than held in memory (at
    1,000,000 messages the 39 checkpoints are 0.8 GB)."""
    state = WorkspaceState(embedder.dims)
    collect = _GroupCollector(state, holdout_ids, negatives, seed)
    checkpoints: list[tuple[float, bytes]] = []
    files: list[tuple[float, Path, str]] = []
    if spill_dir is not None:
        spill_dir.mkdir(parents=True, exist_ok=True)

    def checkpoint(until: float) -> None:
        blob = zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)
        if spill_dir is None:
            checkpoints.append((until, blob))
            return
        file = spill_dir / f"{len(files):04d}.pickle.zlib"
        file.write_bytes(blob)
        files.append((until, file, hashlib.sha256(blob).hexdigest()))

    messages = replay(con, state, embedder, used, collect, until=trained_until, progress=progress,
                      every=checkpoint_every, on_every=checkpoint)
    snapshot = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    messages += replay(con, state, embedder, (), lambda _q, _c: None, since=trained_until,
                       every=checkpoint_every, on_every=checkpoint)
    return Replayed(collect.result(), state, snapshot, checkpoints, files, messages)
