"""The responder ranker: point-in-time features, candidate generation, scale, nobody, persistence."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from beep.db import open_duckdb
from beep.ranker.features import FEATURES, candidates
from beep.ranker.model import ResponderRanker
from beep.ranker.state import WorkspaceState
from beep.ranker.stream import Query, load_queries, replay
from beep.ranker.text import TextEmbedder
from ranker_world import Msg, synthetic_workspace, write_world

COL = {name: i for i, name in enumerate(FEATURES)}


def _features_of(db: Path, example_id: str) -> dict[str, dict[str, float]]:
    """{candidate user id: {feature: value}} for one example, from a fresh replay."""
    con = open_duckdb(str(db), read_only=True)
    embedder = TextEmbedder(dims=4).fit(["postgres index query", "css button layout", "dns vpn route", "thanks"])
    state = WorkspaceState(embedder.dims)
    queries = load_queries(con, [example_id])
    got: dict[str, dict[str, float]] = {}

    def take(query, cands):
        for person, row in zip(cands.people, cands.features):
            got[state.user_ids[int(person)]] = {name: float(row[i]) for i, name in enumerate(FEATURES)}

    replay(con, state, embedder, queries.values(), take)
    con.close()
    return got


def _world_with_gap(extra: bool) -> list[Msg]:
    """A asks in C1 at 1000 s; B last wrote in C1 at 100 s; with ``extra`` B also writes in C2 at
    1010 s, after the question and before answering at 1060 s."""
    messages = [
        Msg("old", "B", 100.0, "postgres index tips"),
        Msg("old", "C", 160.0, "thanks"),
        Msg("q", "A", 1000.0, "my postgres query is slow, any idea?", mentions=["D"]),
        Msg("q", "B", 1060.0, "add an index"),
    ]
    if extra:
        messages.append(Msg("other", "B", 1010.0, "css button layout", channel="C2"))
    return messages


def test_features_are_as_of_the_last_context_message_not_the_answer(tmp_path: Path) -> None:
    """The response delay never leaks: times are measured at the question (1000 s), and B's message
    written after the question (in another channel) is not seen when scoring the answer to it."""
    plain, extra = tmp_path / "plain.duckdb", tmp_path / "extra.duckdb"
    write_world(plain, _world_with_gap(extra=False))
    write_world(extra, _world_with_gap(extra=True))
    example = "ex-q-2"
    a, b = _features_of(plain, example), _features_of(extra, example)
    assert a == b, "a message written after the last context message changed the features"
    assert a["B"]["log_seconds_since_channel"] == pytest.approx(math.log1p(1000.0 - 100.0), rel=1e-5)
    assert a["B"]["log_seconds_since_any"] == pytest.approx(math.log1p(1000.0 - 100.0), rel=1e-5)
    # the target (B's answer at 1060 s) is not in the state either: B has one message so far
    assert a["B"]["log_messages_total"] == pytest.approx(math.log1p(1))


def test_features_do_not_change_when_the_future_is_cut_off(tmp_path: Path) -> None:
    """On a whole synthetic workspace: every example's features equal those computed on the data cut
    right after its last context message."""
    messages, _ = synthetic_workspace(60, 400, seed=3)
    full = tmp_path / "full.duckdb"
    write_world(full, messages)
    con = open_duckdb(str(full), read_only=True)
    example_ids = [r[0] for r in con.execute("select example_id from training_examples order by target_at").fetchall()]
    con.close()
    for example_id in example_ids[5::37]:
        conv, pos = example_id.split("-")[1], int(example_id.split("-")[2])
        ordered = sorted(messages, key=lambda m: m.seconds)
        conv_msgs = [m for m in ordered if m.conversation == conv]
        last_context = conv_msgs[pos - 2]
        cut = tmp_path / f"cut-{example_id}.duckdb"
        kept = [m for m in ordered if m.seconds <= last_context.seconds]
        kept.append(conv_msgs[pos - 1])  # the target itself, so the example exists in the cut world
        write_world(cut, kept)
        assert _features_of(full, example_id) == _features_of(cut, example_id), example_id


def test_candidates_cover_participants_mentions_and_channel_and_never_the_last_speaker(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    write_world(db, [
        Msg("a", "E", 10.0, "deploy done"),
        Msg("b", "F", 20.0, "css modal broken"),
        Msg("q", "A", 100.0, "who knows dns?"),
        Msg("q", "B", 110.0, "not me"),
        Msg("q", "A", 120.0, "maybe @D does", mentions=["D"]),
        Msg("q", "C", 130.0, "D is out today"),
    ])
    got = _features_of(db, "ex-q-4")  # C answers A's third message
    assert "A" not in got, "the author of the last message can never be the next responder"
    assert {"B", "D", "E", "F"} <= set(got)
    assert got["B"]["in_conversation"] == 1 and got["B"]["participant_rank"] == 1
    assert got["D"]["mentioned_last"] == 1 and got["D"]["in_conversation"] == 0
    assert got["E"]["from_recent"] == 1 and got["E"]["in_conversation"] == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResponderRanker, Path, list[Query], list[Query]]:
    """A ranker trained on a 1,500-person synthetic workspace with chatter labelled nil."""
    root = tmp_path_factory.mktemp("ranker")
    messages, nil = synthetic_workspace(1500, 6000, seed=1, nil_rate=0.25)
    db = root / "w.duckdb"
    write_world(db, messages)
    con = open_duckdb(str(db), read_only=True)
    found = load_queries(con, [r[0] for r in con.execute("select example_id from training_examples").fetchall()])
    ordered = sorted(found.values(), key=lambda q: (q.target_at, q.example_id))
    cut = int(len(ordered) * 0.8)
    train = [Query(**{**q.__dict__, "label": nil.get(q.example_id, "x")}) for q in ordered[:cut]]
    valid = [Query(**{**q.__dict__, "label": nil.get(q.example_id, "x")}) for q in ordered[cut:]]
    valid = [q for q in valid if q.last_at > train[-1].target_at]  # after the training period
    model = ResponderRanker(seed=0)
    report = model.fit(con, train)
    con.close()
    assert report.n_groups > 100 and report.candidate_recall > 0.8
    return model, db, train, valid


def _score(model: ResponderRanker, db: Path, queries: list[Query]):
    con = open_duckdb(str(db), read_only=True)
    out = []
    model.score(con, queries, out.extend)
    con.close()
    return {r.example_id: r for r in out}


def test_ranker_beats_recency_and_says_nobody_for_chatter(trained) -> None:
    model, db, _train, valid = trained
    ranked = _score(model, db, valid)
    assert set(ranked) == {q.example_id for q in valid}
    people = [q for q in valid if q.label != "nil"]
    top1 = sum(ranked[q.example_id].user_ids[:1] == (q.responder_user_id,) for q in people) / len(people)
    assert top1 > 0.7  # the expert answers: participants + topic similarity find them
    nobody_nil = np.mean([ranked[q.example_id].nobody_probability for q in valid if q.label == "nil"])
    nobody_real = np.mean([ranked[q.example_id].nobody_probability for q in people])
    assert nobody_nil > 0.5 > nobody_real
    for r in ranked.values():  # probabilities: people and nobody add up to at most 1
        assert sum(r.probabilities) + r.nobody_probability <= 1 + 1e-6
        assert all(isinstance(reason, str) and reason for reason in r.reasons)


def test_artifact_memory_does_not_grow_with_vocabulary(trained, tmp_path: Path) -> None:
    """1,500 people and a 5,000-word vocabulary: the saved ranker holds a fixed-size text model and a
    few floats per person, not people x vocabulary (the label classifier needed 34 GiB at 1,000)."""
    model, db, _train, valid = trained
    path = tmp_path / "ranker.joblib"
    model.save(path)
    assert path.stat().st_size < 30 * 2**20
    assert model.state is not None and model.state.profiles.shape[1] == model.embedder.dims <= 64
    again = ResponderRanker.load(path)
    first = _score(model, db, valid[:50])
    second = _score(again, db, valid[:50])
    assert {k: v.user_ids for k, v in first.items()} == {k: v.user_ids for k, v in second.items()}


def test_predict_from_text_uses_the_state_as_of_the_end(trained) -> None:
    model, _db, _train, _valid = trained
    assert model.state is not None
    conv = model.conversation("C1", [None], ["how do I fix the postgres index problem?"], [()], [model.state.now])
    ranked = model.rank("", candidates(model.state, conv, model.state.now, channel_name="C1"))
    assert ranked.user_ids and 0.0 <= ranked.nobody_probability <= 1.0


def test_scoring_from_the_training_snapshot_equals_a_replay_from_the_start(trained) -> None:
    model, db, _train, valid = trained
    assert model.snapshot is not None and all(q.last_at > model.trained_until for q in valid)
    resumed = _score(model, db, valid)
    snapshot, model.snapshot = model.snapshot, None
    try:
        full = _score(model, db, valid)
    finally:
        model.snapshot = snapshot
    assert resumed.keys() == full.keys()
    for example_id, r in resumed.items():
        assert r.user_ids == full[example_id].user_ids
        assert r.probabilities == pytest.approx(full[example_id].probabilities)
        assert r.nobody_probability == pytest.approx(full[example_id].nobody_probability)


def test_people_mentioned_in_the_last_message_rank_first(trained) -> None:
    """Issue 23: where the responder was @-mentioned the ranker must not lose to the mention rule. A
    quiet person mentioned in the last message of a two-person exchange ranks first (the model alone
    ranks the other participant first), the others keep the model's order, and the probabilities
    still add up to what they did."""
    from beep.ranker import model as ranker_model

    model, _db, _train, _valid = trained
    state = model.state
    assert state is not None
    by_activity = sorted(range(len(state.user_ids)), key=lambda u: (state.n_messages[u], u))
    quiet, a, b = by_activity[0], by_activity[-1], by_activity[-2]
    ids = state.user_ids
    texts = ["css button layout", "which browser?", "firefox", "and the layout breaks?", "yes", f"<@{ids[quiet]}> knows"]
    authors = [ids[a], ids[b]] * 3
    mentions = [()] * 5 + [(ids[quiet],)]
    conv = model.conversation("C1", authors, texts, mentions, [state.now - 60 * (5 - i) for i in range(6)])
    cands = candidates(state, conv, state.now, channel_name="C1")
    ruled = model.rank("x", cands)
    rule_on = model.hp
    model.hp = replace(rule_on, mentioned_first=False)
    try:
        plain = model.rank("x", cands)
    finally:
        model.hp = rule_on
    assert plain.user_ids[0] != ids[quiet]  # the rule is what puts them first here
    assert ruled.user_ids[0] == ids[quiet] and ruled.reasons[0] == "mentioned in the conversation"
    assert ruled.user_ids[1:] == tuple(u for u in plain.user_ids if u != ids[quiet])
    assert list(ruled.probabilities) == sorted(ruled.probabilities, reverse=True)
    assert sum(ruled.probabilities) == pytest.approx(sum(plain.probabilities))
    # the feature rows of the people ranked, only when asked for (the alert head's measurement reads them)
    assert ruled.features is None
    rows = model._ranked_many([("x", cands)], model._scores(cands.features), state, top=3, with_features=True)[0]
    index = {state.user_ids[int(u)]: i for i, u in enumerate(cands.people)}
    assert rows.features is not None and rows.features.shape == (3, len(FEATURES))
    assert np.array_equal(rows.features, cands.features[[index[u] for u in rows.user_ids]])
    # nobody mentioned: the model's own ranking, untouched
    probs = np.array([0.5, 0.3, 0.2])
    none = type(cands)(np.arange(3), np.zeros((3, len(FEATURES)), dtype=np.float32))
    assert ranker_model.mentioned_first(none, probs) is probs


def test_features_are_declared_once_and_read_by_name(tmp_path: Path) -> None:
    """One declaration per feature: the matrix's columns are FEATURE_DEFINITIONS in order, each named
    once and described; a column is read by its name, and an unknown name is refused naming the known."""
    from beep.ranker.features import FEATURE_DEFINITIONS, Candidates, column

    names = [f.name for f in FEATURE_DEFINITIONS]
    assert tuple(names) == FEATURES and len(set(names)) == len(names)
    assert all(f.description and callable(f.compute) for f in FEATURE_DEFINITIONS)
    assert [column(n) for n in names] == list(range(len(names)))
    with pytest.raises(KeyError, match="known: in_conversation"):
        column("no_such_feature")
    db = tmp_path / "gap.duckdb"
    write_world(db, _world_with_gap(extra=False))
    con = open_duckdb(str(db), read_only=True)
    embedder = TextEmbedder(dims=4).fit(["postgres index query", "css button layout", "thanks"])
    state = WorkspaceState(embedder.dims)
    found: list[Candidates] = []
    replay(con, state, embedder, load_queries(con, ["ex-q-2"]).values(), lambda _q, c: found.append(c))
    con.close()
    (cands,) = found
    assert cands.features.shape == (len(cands.people), len(FEATURE_DEFINITIONS))
    who = {state.user_ids[int(p)]: i for i, p in enumerate(cands.people)}
    assert "A" not in who  # the last message's author is never a candidate
    mentioned = cands.feature("mentioned_last")
    assert mentioned[who["D"]] == 1 and mentioned[who["B"]] == 0  # A's question @-mentions D
    assert cands.feature("from_recent")[who["B"]] == 1  # B wrote in C1 before the question
    assert np.array_equal(cands.feature("n_candidates"), np.full(len(who), len(who), dtype=np.float32))


def test_learning_takes_arrays_not_a_database() -> None:
    """ResponderRanker.learn fits the ranker, the temperature and the nobody classifier from arrays
    alone: groups where the responder's ``similarity`` stands out are learnt (held-out responders
    ranked first), and nil examples that end without a question mark teach the nobody classifier."""
    from beep.ranker.features import Candidates, column
    from beep.ranker.training import HeldOut

    rng = np.random.default_rng(0)

    def group(nil: bool) -> np.ndarray:
        x = rng.normal(size=(8, len(FEATURES))).astype(np.float32)
        x[0, column("similarity")] += 3.0
        x[:, column("last_question")] = 0.0 if nil else 1.0
        return x

    train = [group(False) for _ in range(200)]
    x, y = np.vstack(train), np.concatenate([np.eye(8, dtype=np.int32)[0]] * 200)
    nil = np.arange(60) % 2 == 0
    held = [group(bool(n)) for n in nil]
    model = ResponderRanker(seed=0, hyperparameters={"n_estimators": 40})
    report = model.learn(x, y, [8] * 200, HeldOut(held, np.zeros(60, dtype=np.int64), nil), nil_prior=0.2)
    assert report.n_groups == 200 and report.n_rows == 1600 and report.n_holdout == 60
    scores = [model._scores(h) for h in held]
    assert np.mean([int(np.argmax(s)) == 0 for s in scores]) > 0.9
    assert model.temperature > 0 and report.nobody_model.startswith("logistic regression on 60")
    cands = [Candidates(np.arange(8), h) for h in held]
    nobody = model._nobody(cands, [np.full(8, 1 / 8)] * len(held))
    assert nobody[nil].mean() > 0.5 > nobody[~nil].mean()
    with pytest.raises(ValueError, match="no train example has its responder"):
        ResponderRanker(seed=0).learn(x[:0], y[:0], [], HeldOut.empty(), nil_prior=0.0)


def test_hyperparameters_are_named_fields() -> None:
    """The settings are RankerHyperparameters' fields; their dict (saved in the artifact, part of the
    fine-tune job's settings hash) is what it was before the dataclass, so trained jobs are reused."""
    from beep.ranker.model import HYPERPARAMETERS, RankerHyperparameters

    assert HYPERPARAMETERS == {
        "learner": "lightgbm-lambdarank", "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31,
        "min_child_samples": 40, "negatives": 10, "max_train_examples": 40_000, "max_bin": 63,
        "holdout_share": 0.15, "text_dims": 64, "early_stopping_rounds": 30,
    }
    hp = RankerHyperparameters.from_mapping({**HYPERPARAMETERS, "n_estimators": 50})
    assert hp.n_estimators == 50 and hp.mentioned_first and hp.eval_at == 5
    assert replace(hp, mentioned_first=False).settings()["mentioned_first"] is False
    assert RankerHyperparameters.from_mapping(replace(hp, eval_at=3).settings()).eval_at == 3
    with pytest.raises(ValueError, match="unknown ranker hyperparameter.*n_trees"):
        RankerHyperparameters.from_mapping({"n_trees": 10})
    assert ResponderRanker(hyperparameters=hp).hp is hp
