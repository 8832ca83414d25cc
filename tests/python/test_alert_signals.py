"""The decision signals measured by `python -m beep.evaluate.alert_head` (docs/evaluation.md, "What
limits recall"): the answer profile, attention across a channel's conversations, and per-channel
thresholds, reactions, on tiny hand-made streams whose right values are known. No DuckDB, no model: each runs in
milliseconds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beep.evaluate.alert_head import (ANSWER_FEATURES, ATTENTION_FEATURES, REACTION_FEATURES, REACTION_LAG, HeadData,
                                      answer_features, attention_features, channel_thresholds, collect,
                                      per_channel_scores, reaction_features)
from beep.evaluate.alert_replay import SentAlert

T0 = 1_700_000_000.0


def _data(groups: dict[str, list[str]], width: int) -> HeadData:
    data = HeadData()
    for key, people in groups.items():
        data.keys.append(key)
        data.people.append(people)
        for _ in people:
            data.add([0.0] * width)
    return data


# conversation, position, at, user, channel, mentions
STREAM = [
    ("c1", 1, T0, "A", "C", ()),                          # A asks about postgres
    ("c1", 2, T0 + 60, "B", "C", ()),                     # B answers (a join: B's answer)
    ("c2", 1, T0 + 600, "A", "C", ()),                    # A asks about the kubernetes ingress
    ("c2", 2, T0 + 660, "Z", "C", ()),                    # Z answers (Z's answer)
    ("c3", 1, T0 + 7200, "Q", "C", ()),                   # Q asks about postgres again: the moment
    ("c3", 2, T0 + 7260, "B", "C", ()),                   # B answers after the moment (must not count)
]
TEXTS = [
    "postgres index is slow on the orders table",
    "add a partial postgres index on orders and vacuum the table",
    "the kubernetes ingress returns 502 for the api",
    "restart the kubernetes ingress controller pods",
    "postgres index on orders slow again after vacuum",
    "postgres index partial on orders again",
]


def test_the_answer_profile_matches_the_person_who_answered_like_questions_and_reads_only_the_past() -> None:
    data = _data({"c3#1": ["B", "Z", "N"]}, 1)
    feats = answer_features(STREAM, TEXTS, fit_until=T0 + 7200, data=data)
    assert feats.shape == (3, len(ANSWER_FEATURES))
    b, z, n = feats
    col = {name: i for i, name in enumerate(ANSWER_FEATURES)}
    assert b[col["answer_similarity_max"]] > 0.3 > z[col["answer_similarity_max"]]
    assert b[col["answered_question_similarity_max"]] > z[col["answered_question_similarity_max"]]
    assert b[col["log_answers_channel"]] == pytest.approx(math.log1p(1))  # c1 only: c3's answer is later
    assert b[col["log_similar_questions_channel"]] == pytest.approx(math.log1p(1))
    assert z[col["log_similar_questions_channel"]] == 0.0
    assert not n.any()  # never answered: all zero


def test_the_answer_profile_is_capped_and_its_vocabulary_is_the_fit_periods_only() -> None:
    stream = [("c0", 1, T0, "A", "C", ())] + [(f"k{i}", p, T0 + 10 * i + p, u, "C", ())
                                             for i in range(5) for p, u in ((1, "A"), (2, "B"))]
    stream.append(("q", 1, T0 + 100, "A", "C", ()))
    texts = ["word"] + ["postgres question", "postgres answer"] * 5 + ["postgres again"]
    data = _data({"q#1": ["B"]}, 1)
    capped = answer_features(stream, texts, fit_until=T0 + 100, data=data, cap=2)
    assert capped[0, 3] == pytest.approx(math.log1p(2))  # 5 answers, the newest 2 kept
    # words first seen after fit_until are unknown: nothing to compare with
    unknown = answer_features(stream, texts, fit_until=T0 + 1, data=data)
    assert unknown[0, 0] == 0.0


def test_attention_is_this_conversations_share_of_the_persons_scores_in_the_channel() -> None:
    stream = [
        ("c1", 1, T0, "A", "C", ()),
        ("c2", 1, T0 + 60, "Q", "C", ()),
        ("c9", 1, T0 + 90, "Q", "D", ()),            # another channel: not counted
        ("c3", 1, T0 + 4000, "A", "C", ()),           # c1 and c2 are over an hour old by then
    ]
    rankings = {"c1#1": [("R", 0.3), ("S", 0.1)], "c2#1": [("R", 0.1)], "c9#1": [("R", 0.9)],
                "c3#1": [("R", 0.2)]}
    data = _data({"c2#1": ["R", "S"], "c3#1": ["R"]}, 1)
    feats = attention_features(stream, rankings, data, active_seconds=1800)
    assert feats.shape == (3, len(ATTENTION_FEATURES))
    r, s, r_later = feats
    assert r[0] == pytest.approx(0.1 / (0.1 + 0.3)) and r[1] == pytest.approx(math.log1p(30.0))
    assert s[0] == 0.0  # not ranked for c2
    assert r[2] == pytest.approx(math.log1p(2))
    assert r_later[0] == pytest.approx(1.0) and r_later[2] == pytest.approx(math.log1p(1))
    assert r[3] == 15.0 and r[4] == 0  # R never wrote anywhere


def test_a_person_writing_in_another_conversation_is_engaged_elsewhere() -> None:
    stream = [
        ("c1", 1, T0, "A", "C", ()),
        ("c1", 2, T0 + 60, "H", "C", ()),              # the helper answers A
        ("c2", 1, T0 + 120, "Q", "C", ()),              # a new question: H is busy with A
        ("c3", 1, T0 + 60 + 900, "Q", "C", ()),          # 15 minutes after H last wrote: no longer engaged
    ]
    data = _data({"c2#1": ["H"], "c3#1": ["H"]}, 1)
    busy, later = attention_features(stream, {}, data)
    assert busy[3] == pytest.approx(math.log1p(1.0)) and busy[4] == 1
    assert later[3] == pytest.approx(math.log1p(15.0)) and later[4] == 0


def test_reactions_count_only_once_known_and_say_who_reacts_here_to_whom_and_to_this_conversation() -> None:
    stream = [
        ("c1", 1, T0, "A", "C", ()),                     # A asks; R and S react to it
        ("c1", 2, T0 + 60, "B", "C", ()),                # B answers; R reacts to B's answer
        ("c2", 1, T0 + 600, "A", "C", ()),               # A asks again, ten minutes later: the first moment
        ("c2", 2, T0 + 2 * REACTION_LAG, "Q", "D", ()),  # later, in another channel: the second moment
        ("c1", 3, T0 + 2.5 * REACTION_LAG, "A", "C", ()),  # A comes back to c1, after the reactions to it
        ("c3", 1, T0 + 3 * REACTION_LAG, "A", "C", ()),  # R reacted to c3's question (not known yet)
    ]
    # (known at, reactor, channel, the message's author, its conversation): load_reactions' rows
    reactions = [(T0 + REACTION_LAG, "R", "C", "A", "c1"), (T0 + REACTION_LAG, "S", "C", "A", "c1"),
                 (T0 + 60 + REACTION_LAG, "R", "C", "B", "c1"), (T0 + 4 * REACTION_LAG, "R", "C", "A", "c3")]
    data = _data({"c2#1": ["R", "S"], "c2#2": ["R", "S", "N"], "c1#3": ["S"], "c3#1": ["R"]}, 1)
    feats = reaction_features(stream, reactions, data)
    assert feats.shape == (7, len(REACTION_FEATURES))
    col = {name: i for i, name in enumerate(REACTION_FEATURES)}
    r_early, s_early, r_late, s_late, n_late, s_c1, r_c3 = feats
    assert not r_early.any() and not s_early.any()  # ten minutes in: no reaction is known yet
    # two hours in, as the other channel's conversation goes on (its last author Q, its starter A)
    assert r_late[col["log_reacted_to_starter"]] == pytest.approx(math.log1p(1))
    assert r_late[col["log_reacted_to_last_author"]] == 0.0
    assert r_late[col["reaction_share_channel"]] == 0.0  # channel D has no reaction
    assert r_late[col["log_reactions_any"]] > s_late[col["log_reactions_any"]] > 0.0
    assert r_late[col["reacted_in_conversation"]] == 0.0  # c2: nobody reacted to it
    assert not n_late.any()  # never reacted: all zero
    assert s_c1[col["reacted_in_conversation"]] == 1.0  # S reacted to c1's question, known by now
    # c3 in channel C: R holds 2 of its 3 reactions (nearly: they decay a little), and reacted to c1, not c3
    assert r_c3[col["reaction_share_channel"]] == pytest.approx(2 / 3, abs=0.01)
    assert r_c3[col["log_reacted_to_last_author"]] == pytest.approx(math.log1p(1))  # to A, once
    assert r_c3[col["reacted_in_conversation"]] == 0.0  # its reaction to c3 is not known before the lag
    assert r_c3[col["reactions_per_message_channel"]] == pytest.approx(2 / 1)  # 2 reactions, never wrote: / (0 + 1)


def test_the_channels_frequent_reactors_become_candidates_once_their_reactions_are_known() -> None:
    stream = [("c1", 1, T0, "A", "C", ()), ("c1", 2, T0 + 60, "B", "C", ()),
              ("c2", 1, T0 + 600, "A", "C", ()),                  # before R's reaction is known
              ("c3", 1, T0 + 2 * REACTION_LAG, "Q", "C", ()),     # after: R, who never wrote, is a candidate
              ("c4", 1, T0 + 2 * REACTION_LAG + 60, "Q", "D", ())]  # another channel: not there
    reactions = [(T0 + REACTION_LAG, "R", "C", "A", "c1"), (T0 + REACTION_LAG, "B", "C", "A", "c1")]
    wanted = {"c2#1": None, "c3#1": None, "c4#1": None}
    rankings = {"c2#1": [("B", 0.4)], "c3#1": [("B", 0.4)], "c4#1": [("B", 0.4)]}

    def excluded(key: str) -> tuple[frozenset[str], frozenset[str]]:
        return frozenset({"A"} if key == "c2#1" else {"Q"}), frozenset()

    plain = collect(stream, wanted, rankings, excluded, None)
    wide = collect(stream, wanted, rankings, excluded, None, reactions, reactors=10)
    assert dict(zip(plain.keys, plain.people)) == {"c2#1": ["B"], "c3#1": ["B", "A"], "c4#1": ["B"]}
    # B is a candidate already (once, first); R comes after the others, in channel C only
    assert dict(zip(wide.keys, wide.people)) == {"c2#1": ["B"], "c3#1": ["B", "A", "R"], "c4#1": ["B"]}
    assert wide.n_rows == plain.n_rows + 1


def _sent(channel: str, threshold: float, useful: int, nothing: int) -> list[SentAlert]:
    return [SentAlert("m", threshold, T0, "c", channel, "P", 0.5, None, outcome)
            for outcome in ["joined"] * useful + ["nothing"] * nothing]


def test_a_channel_gets_the_lowest_threshold_reaching_the_target_with_enough_alerts() -> None:
    sent = (_sent("quiet", 0.1, 3, 7) + _sent("quiet", 0.2, 4, 2) + _sent("quiet", 0.3, 3, 0)
            + _sent("busy", 0.1, 2, 18) + _sent("busy", 0.2, 1, 9)
            + _sent("rare", 0.1, 3, 0))  # precise, but too few alerts
    assert channel_thresholds(sent, 0.5, min_alerts=5) == {"quiet": 0.2}


def test_per_channel_scores_let_one_threshold_through_at_each_channels_own_and_keep_the_order() -> None:
    rankings = {"k1": (("A", 0.3), ("B", 0.1)), "k2": (("A", 0.3),), "k3": (("A", 0.9),)}
    scaled = per_channel_scores(rankings, {"k1": "quiet", "k2": "busy", "k3": "none"}, {"quiet": 0.2, "busy": 0.6})
    assert "k3" not in scaled  # a channel without a threshold is never alerted
    assert [u for u, _ in scaled["k1"]] == ["A", "B"]
    assert scaled["k1"][0][1] >= 0.5 > scaled["k1"][1][1]  # 0.3 >= 0.2; 0.1 < 0.2
    assert scaled["k2"][0][1] < 0.5  # 0.3 < 0.6
    assert np.isclose(scaled["k1"][0][1], 0.75)
