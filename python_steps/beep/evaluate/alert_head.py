"""The alert head: a model of the decision itself, P(person joins this conversation within the
alert window | the moment, the person is not in it and Slack does not notify them).

The next-responder ranker answers another question (who writes the next reply, people in the
conversation included), so its probability for people outside the conversation is small and
badly ordered. The head is trained for the app's decision: at each moment of its training period
(the train period before the tune part), its candidates are the people outside the conversation
(neither participants nor notified by Slack) from the ranker's top people, the channel's regulars
and the people active in the channel in the last hour; its label is "wrote in that conversation
within the alert window". Features, all as of the moment (:class:`Activity`, one chronological
pass):

- the ranker's probability and rank for the person;
- presence: minutes since the person's last message anywhere and in this channel, their activity in
  the channel over the last day (decayed), their share of messages at this hour of the week;
- role: the person's share of the channel's messages, of the workspace's, and how often they joined
  conversations in this channel (and anywhere) that someone else started;
- the conversation: messages so far, participants, minutes since it started, mentions in the window.

A LightGBM classifier (binary, fixed seed) learns it. Measured in the alert replay beside the plain
ranker and the baselines (docs/evaluation.md).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

FEATURES = ("ranker_probability", "ranker_rank", "channel_share", "workspace_share", "log_minutes_since_any",
            "log_minutes_since_channel", "channel_activity_day", "hour_of_week_share", "join_rate_channel",
            "join_rate_any", "conversation_messages", "conversation_people", "log_minutes_since_start",
            "mentions_in_window", "log_messages")
_HALF_LIFE = 86400.0
#: Shares and join rates decay with this half-life: a workspace changes (people come and go), and
#: all-time counts ranked long-gone regulars first (measured on ubuntu-irc: docs/evaluation.md).
_ROLE_HALF_LIFE = 7 * 86400.0


class _Decayed:
    """Counts that halve every ``half_life`` seconds, read at any later time."""

    __slots__ = ("half_life", "values")

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self.values: dict[Any, tuple[float, float]] = {}

    def add(self, key: Any, at: float, amount: float = 1.0) -> None:
        value, when = self.values.get(key, (0.0, at))
        self.values[key] = (value * 0.5 ** ((at - when) / self.half_life) + amount, at)

    def get(self, key: Any, at: float) -> float:
        found = self.values.get(key)
        return found[0] * 0.5 ** ((at - found[1]) / self.half_life) if found else 0.0
_RECENT = 3600.0
#: Candidates per moment at most (the ranker's, the channel's regulars, the recently active).
CANDIDATES = 40
#: Moments the head is trained on at most (the newest before the tune period).
TRAIN_MOMENTS = 30_000


@dataclass
class _Conv:
    start: float
    channel: str
    messages: int = 0
    people: set = field(default_factory=set)
    starter: str | None = None


class Activity:
    """Who is around and who joins what, as of the last observed message."""

    def __init__(self) -> None:
        self.last_any: dict[str, float] = {}
        self.last_channel: dict[tuple[str, str], float] = {}
        self.decayed: dict[tuple[str, str], tuple[float, float]] = {}  # (channel, user) -> (value, at)
        self.channel_counts: dict[str, Counter[str]] = {}
        self.channel_totals: Counter[str] = Counter()
        self.workspace: Counter[str] = Counter()
        self.total = 0
        self.how: dict[str, np.ndarray] = {}
        self.joins_channel: Counter[tuple[str, str]] = Counter()
        self.convs_channel: Counter[str] = Counter()
        self.joins_any: Counter[str] = Counter()
        self.convs_any = 0
        self.convs: dict[str, _Conv] = {}
        self.recent: dict[str, deque] = {}  # channel -> (at, user) of the last hour
        self.role = _Decayed(_ROLE_HALF_LIFE)  # keys: ("m", channel, user), ("m", channel), ("w", user), ("w",),
        # ("j", channel, user) joins, ("c", channel) conversations, ("J", user), ("C",)

    def observe(self, conv_id: str, at: float, user: str, channel: str) -> None:
        conv = self.convs.get(conv_id)
        role = self.role
        if conv is None:
            conv = self.convs[conv_id] = _Conv(at, channel, starter=user)
            self.convs_channel[channel] += 1
            self.convs_any += 1
            role.add(("c", channel), at)
            role.add(("C",), at)
        elif user not in conv.people and user != conv.starter:
            self.joins_channel[(channel, user)] += 1
            self.joins_any[user] += 1
            role.add(("j", channel, user), at)
            role.add(("J", user), at)
        role.add(("m", channel, user), at)
        role.add(("m", channel), at)
        role.add(("w", user), at)
        role.add(("w",), at)
        conv.messages += 1
        conv.people.add(user)
        self.last_any[user] = at
        self.last_channel[(channel, user)] = at
        value, when = self.decayed.get((channel, user), (0.0, at))
        self.decayed[(channel, user)] = (value * 0.5 ** ((at - when) / _HALF_LIFE) + 1.0, at)
        self.channel_counts.setdefault(channel, Counter())[user] += 1
        self.channel_totals[channel] += 1
        self.workspace[user] += 1
        self.total += 1
        hours = self.how.get(user)
        if hours is None:
            hours = self.how[user] = np.zeros(168, np.float32)
        hours[_hour_of_week(at)] += 1
        recent = self.recent.setdefault(channel, deque())
        recent.append((at, user))
        while recent and recent[0][0] < at - _RECENT:
            recent.popleft()

    def recently_active(self, channel: str) -> list[str]:
        return list(dict.fromkeys(u for _, u in reversed(self.recent.get(channel, ()))))

    def features(self, conv_id: str, at: float, channel: str, person: str, ranker_p: float, ranker_rank: int,
                 mentions_in_window: int) -> list[float]:
        conv = self.convs.get(conv_id)
        last = self.last_any.get(person)
        last_c = self.last_channel.get((channel, person))
        value, when = self.decayed.get((channel, person), (0.0, at))
        hours = self.how.get(person)
        mine = float(self.workspace[person])
        how = float(hours[_hour_of_week(at)] / mine * 168.0 / 7.0) if hours is not None and mine else 0.0
        role = self.role
        return [
            ranker_p,
            float(ranker_rank),
            role.get(("m", channel, person), at) / (role.get(("m", channel), at) or 1.0),
            role.get(("w", person), at) / (role.get(("w",), at) or 1.0),
            math.log1p((at - last) / 60.0) if last is not None else 15.0,
            math.log1p((at - last_c) / 60.0) if last_c is not None else 15.0,
            value * 0.5 ** ((at - when) / _HALF_LIFE),
            how,
            role.get(("j", channel, person), at) / (role.get(("c", channel), at) + 1.0),
            role.get(("J", person), at) / (role.get(("C",), at) + 1.0),
            float(conv.messages if conv else 0),
            float(len(conv.people) if conv else 0),
            math.log1p((at - conv.start) / 60.0) if conv else 0.0,
            float(mentions_in_window),
            math.log1p(role.get(("w", person), at)),
        ]


def _hour_of_week(at: float) -> int:
    return int((at // 3600 + 72) % 168)  # epoch day 0 was a Thursday: 72 h shift puts Monday 00:00 at 0


_BLOCK = 65_536


@dataclass
class HeadData:
    """Feature rows of (moment, candidate) pairs, grouped by moment; rows in float32 blocks (a
    workspace's million pairs stay within ~100 MB)."""

    keys: list[str] = field(default_factory=list)  # moment key per group
    people: list[list[str]] = field(default_factory=list)  # candidates per group
    labels: list[int] = field(default_factory=list)
    _blocks: list[np.ndarray] = field(default_factory=list)
    _block: np.ndarray = field(default_factory=lambda: np.empty((_BLOCK, len(FEATURES)), np.float32))
    _filled: int = 0

    def add(self, row: list[float]) -> None:
        if self._filled == _BLOCK:
            self._blocks.append(self._block)
            self._block = np.empty((_BLOCK, len(FEATURES)), np.float32)
            self._filled = 0
        self._block[self._filled] = row
        self._filled += 1

    @property
    def n_rows(self) -> int:
        return len(self._blocks) * _BLOCK + self._filled

    def matrix(self) -> np.ndarray:
        return np.vstack([*self._blocks, self._block[: self._filled]]) if self.n_rows else np.zeros((0, len(FEATURES)), np.float32)


def collect(stream_rows: Sequence[tuple[str, int, float, str, str, tuple[str, ...]]],
            wanted: Mapping[str, Any], rankings: Mapping[str, Sequence[tuple[str, float]]],
            excluded: Callable[[str], tuple[frozenset[str], frozenset[str]]],
            label: Callable[[str, str, float], int] | None,
            reactions: Sequence[tuple[float, str, str, str, str]] = (), reactors: int = 0) -> HeadData:
    """One chronological pass: at each wanted moment (key ``conv#pos``), the features of its
    candidates outside the conversation; ``label(conv, person, at)`` when training. ``reactors``:
    the channel's this many most frequent reactors (``reactions``: :func:`load_reactions`, as known
    at the moment) are candidates too, after the others."""
    activity = Activity()
    data = HeadData()
    recent_mentions: dict[str, deque] = {}
    regulars_of: dict[str, tuple[int, list[str]]] = {}  # channel -> (its message count then, its top people)
    reacted: dict[str, Counter[str]] = {}  # channel -> reactor -> reactions known
    n_reactions = 0
    for conv, pos, at, user, channel, mentions in stream_rows:
        while reactors and n_reactions < len(reactions) and reactions[n_reactions][0] <= at:
            _known, reactor, r_channel, _author, _conv = reactions[n_reactions]
            reacted.setdefault(r_channel, Counter())[reactor] += 1
            n_reactions += 1
        activity.observe(conv, at, user, channel)
        window = recent_mentions.setdefault(conv, deque(maxlen=5))
        window.append(mentions)
        key = f"{conv}#{pos}"
        if key not in wanted:
            continue
        participants, notified = excluded(key)
        ranking = rankings.get(key, ())
        rank_of = {u: (p, i + 1) for i, (u, p) in enumerate(ranking)}
        n_channel = activity.channel_totals[channel]
        cached = regulars_of.get(channel)
        if cached is None or n_channel - cached[0] >= 25:  # a busy channel's top list, not sorted at every message
            counts = activity.channel_counts.get(channel) or Counter()
            cached = (n_channel, [u for u, _ in heapq.nlargest(25, counts.items(), key=lambda kv: (kv[1], kv[0]))])
            regulars_of[channel] = cached
        regulars = cached[1]
        pool = list(dict.fromkeys([u for u, _ in ranking] + activity.recently_active(channel) + regulars))
        people = [u for u in pool if u not in participants and u not in notified][:CANDIDATES]
        if reactors:
            top = heapq.nlargest(reactors, (reacted.get(channel) or Counter()).items(), key=lambda kv: (kv[1], kv[0]))
            people = list(dict.fromkeys(people + [u for u, _ in top if u not in participants and u not in notified]))
        if not people:
            continue
        n_mentions = sum(len(m) for m in window)
        data.keys.append(key)
        data.people.append(people)
        for person in people:
            p, r = rank_of.get(person, (0.0, 99))
            data.add(activity.features(conv, at, channel, person, p, r, n_mentions))
            if label is not None:
                data.labels.append(label(conv, person, at))
    return data


class AlertHead:
    """The LightGBM classifier of the decision (see the module docstring)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.model: Any = None
        self.report = ""

    def fit(self, data: HeadData) -> AlertHead:
        import lightgbm as lgb

        x = data.matrix()
        y = np.asarray(data.labels, dtype=np.int32)
        if len(x) == 0 or y.min() == y.max():
            self.report = "no positive (or no negative) training pairs: the head is not used"
            return self
        self.model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=40,
                                        subsample=0.8, subsample_freq=1, colsample_bytree=0.9, random_state=self.seed,
                                        n_jobs=1, verbose=-1)  # 2 threads under load: 20x slower (OpenMP spinning)
        self.model.fit(x, y)
        self.report = (f"trained on {len(data.keys):,} moments, {len(x):,} (moment, person) pairs, "
                       f"{int(y.sum()):,} joins within the window")
        return self

    def rankings(self, data: HeadData, top: int = 20) -> dict[str, tuple[tuple[str, float], ...]]:
        if self.model is None or not data.n_rows:
            return {}
        probs = np.concatenate([self.model.predict_proba(block)[:, 1]
                                for block in np.array_split(data.matrix(), max(1, data.n_rows // _BLOCK))])
        out: dict[str, tuple[tuple[str, float], ...]] = {}
        start = 0
        for key, people in zip(data.keys, data.people):
            part = probs[start: start + len(people)]
            start += len(people)
            order = np.argsort(-part, kind="stable")[:top]
            out[key] = tuple((people[i], float(part[i])) for i in order)
        return out


# -- the candidate's answer profile ----------------------------------------------------------------

#: What a person's answers say about this conversation (:func:`answer_features`), all as of the moment.
ANSWER_FEATURES = ("answer_similarity_max", "answer_similarity_mean", "answered_question_similarity_max",
                   "log_answers_channel", "log_similar_questions_channel")
#: Answers kept per person (their newest): a capped profile, so memory and time per pair stay bounded.
ANSWER_CAP = 50
#: A past answered question is "like this conversation" from this cosine up (TF-IDF).
SIMILAR_QUESTION = 0.2
#: Weights of the conversation's last messages (the latest first) in its text vector.
_CONTEXT_WEIGHTS = (1.0, 0.7, 0.5, 0.35, 0.25)


def load_texts(con: Any, rows: Sequence[tuple[str, int, float, str, str, tuple[str, ...]]]) -> list[str]:
    """The cleaned text of each of ``rows`` (alert_replay._load_stream's rows), in their order."""
    until = max((r[2] for r in rows), default=0.0)
    found = {f"{c}#{p}": t or "" for c, p, t in con.execute(
        "select conversation_id, position, clean_text from int_conversations "
        "where user_id is not null and epoch(message_at) <= ?", [until]).fetchall()}
    return [found.get(f"{c}#{p}", "") for c, p, *_ in rows]


def _tfidf(texts: Sequence[str], fit_texts: Sequence[str]) -> Any:
    """Rows of L2-normalised TF-IDF (scipy CSR, float32) for ``texts``, the vocabulary and IDF learnt
    from ``fit_texts`` only (words seen in at least 2 of them)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=100_000, stop_words="english",
                                 token_pattern=r"(?u)\b\w\w+\b", dtype=np.float32)
    try:
        vectorizer.fit(fit_texts)
    except ValueError:  # no word seen twice (a tiny or empty period): every similarity is 0
        return sparse.csr_matrix((len(texts), 1), dtype=np.float32)
    return vectorizer.transform(texts).tocsr()


def answer_features(stream_rows: Sequence[tuple[str, int, float, str, str, tuple[str, ...]]], texts: Sequence[str],
                    fit_until: float, data: HeadData, cap: int = ANSWER_CAP) -> np.ndarray:
    """(data.n_rows, len(ANSWER_FEATURES)) float32, in ``data``'s row order: for each (moment, person)
    pair, how much the conversation so far (its last messages, TF-IDF) is like the person's answers,
    the messages they wrote when joining conversations someone else started (their first message in
    each; the newest ``cap``): the best and the mean cosine; the best cosine with the questions they
    answered (those conversations' first messages); how many of their answers were in this channel,
    and how many of those answered a question like this one (cosine >= SIMILAR_QUESTION). Only
    messages before the moment count; the TF-IDF is fitted on the messages before ``fit_until``."""
    x = _tfidf(texts, [t for row, t in zip(stream_rows, texts) if row[2] < fit_until])
    group_of = {key: i for i, key in enumerate(data.keys)}
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in data.people])]).astype(np.int64)
    out = np.zeros((data.n_rows, len(ANSWER_FEATURES)), np.float32)
    answers: dict[str, deque] = {}  # person -> (their join's row, its channel, the conversation's first row)
    convs: dict[str, tuple[int, str, set, deque]] = {}  # conversation -> (first row, starter, people, last rows)
    dense = np.zeros(x.shape[1], np.float32)
    indptr, indices, values = x.indptr, x.indices, x.data
    for i, (conv, pos, _at, user, channel, _m) in enumerate(stream_rows):
        state = convs.get(conv)
        if state is None:
            state = convs[conv] = (i, user, set(), deque(maxlen=len(_CONTEXT_WEIGHTS)))
        elif user not in state[2] and user != state[1]:
            answers.setdefault(user, deque(maxlen=cap)).append((i, channel, state[0]))
        state[2].add(user)
        state[3].append(i)
        g = group_of.get(f"{conv}#{pos}")
        if g is None:
            continue
        touched = []
        for weight, row in zip(_CONTEXT_WEIGHTS, reversed(state[3])):
            cols = indices[indptr[row]: indptr[row + 1]]
            dense[cols] += weight * values[indptr[row]: indptr[row + 1]]
            touched.append(cols)
        cols = np.concatenate(touched)
        norm = float(np.sqrt(np.square(dense[np.unique(cols)]).sum()))
        people = data.people[g]
        mine = [answers.get(p, ()) for p in people]
        counts = np.array([len(a) for a in mine], np.int64)
        if norm > 0 and counts.sum():
            flat = [a for answered in mine for a in answered]
            rows = np.fromiter((a[0] for a in flat), np.int64, len(flat))
            roots = np.fromiter((a[2] for a in flat), np.int64, len(flat))
            here = np.fromiter((a[1] == channel for a in flat), bool, len(flat))
            sim_a = (x[rows] @ dense) / norm
            sim_q = (x[roots] @ dense) / norm
            has = counts > 0
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[has]
            block = out[offsets[g]: offsets[g + 1]]
            block[has, 0] = np.maximum.reduceat(sim_a, starts)
            block[has, 1] = np.add.reduceat(sim_a, starts) / counts[has]
            block[has, 2] = np.maximum.reduceat(sim_q, starts)
            block[has, 3] = np.log1p(np.add.reduceat(here.astype(np.float32), starts))
            block[has, 4] = np.log1p(np.add.reduceat((here & (sim_q >= SIMILAR_QUESTION)).astype(np.float32), starts))
        elif counts.sum():
            block = out[offsets[g]: offsets[g + 1]]
            block[:, 3] = [math.log1p(sum(a[1] == channel for a in answered)) for answered in mine]
        dense[cols] = 0.0
    return out


# -- who reacts to what -----------------------------------------------------------------------------

#: What a person's reactions say about a (moment, person) pair (:func:`reaction_features`).
REACTION_FEATURES = ("reaction_share_channel", "log_reactions_any", "log_reacted_to_starter",
                     "log_reacted_to_last_author", "reacted_in_conversation", "reactions_per_message_channel")
#: How many of a channel's most frequent reactors measure_signals adds to a moment's candidates.
REACTORS = 10
#: An export gives a reaction no time of its own: it counts as known this long after its message was
#: written (most reactions come within minutes; a later one is then known too early, an earlier one late).
REACTION_LAG = 3600.0


def load_reactions(con: Any, until: float) -> list[tuple[float, str, str, str, str]]:
    """(known at, reactor, channel, the message's author, its conversation) of every reaction on a usable
    message written up to ``until``, known ``REACTION_LAG`` after the message, oldest first; none on a
    dataset built before the reaction models."""
    import duckdb

    try:
        rows = con.execute(
            """
            select epoch(c.message_at) + ?, r.user_id, coalesce(c.channel_id, c.channel_folder), c.user_id, c.conversation_id
            from stg_slack__reactions r
            inner join int_conversations c on c.channel_folder = r.channel_folder and c.ts = r.ts
            where epoch(c.message_at) <= ? and r.user_id is not null and c.user_id is not null
              and not coalesce(r.is_own_message, false)
            order by 1, 2, 5
            """,
            [REACTION_LAG, until],
        ).fetchall()
    except duckdb.Error:
        return []
    return [(float(t), str(u), str(ch), str(a), str(cv)) for t, u, ch, a, cv in rows]


def reaction_features(stream_rows: Sequence[tuple[str, int, float, str, str, tuple[str, ...]]],
                      reactions: Sequence[tuple[float, str, str, str, str]], data: HeadData) -> np.ndarray:
    """(data.n_rows, len(REACTION_FEATURES)) float32, in ``data``'s row order: for each (moment, person)
    pair, from the reactions known at the moment (``reactions``: :func:`load_reactions`): the person's
    share of the channel's reactions and their reactions anywhere (decaying with the role half-life),
    how often they reacted to the conversation's starter and to the author of its latest message, whether
    they reacted to one of this conversation's messages, and their reactions per message written in the
    channel (a reader who reacts rather than writes)."""
    group_of = {key: i for i, key in enumerate(data.keys)}
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in data.people])]).astype(np.int64)
    out = np.zeros((data.n_rows, len(REACTION_FEATURES)), np.float32)
    decayed = _Decayed(_ROLE_HALF_LIFE)  # ("c", channel, person), ("c", channel), ("a", person)
    to_author: Counter[tuple[str, str]] = Counter()  # (reactor, author) -> reactions
    in_conv: dict[str, set[str]] = {}  # conversation -> its reactors known so far
    reacts_channel: Counter[tuple[str, str]] = Counter()
    writes_channel: Counter[tuple[str, str]] = Counter()
    starter: dict[str, str] = {}
    n = 0
    for conv, pos, at, user, channel, _m in stream_rows:
        while n < len(reactions) and reactions[n][0] <= at:
            known, reactor, r_channel, author, r_conv = reactions[n]
            decayed.add(("c", r_channel, reactor), known)
            decayed.add(("c", r_channel), known)
            decayed.add(("a", reactor), known)
            to_author[(reactor, author)] += 1
            in_conv.setdefault(r_conv, set()).add(reactor)
            reacts_channel[(r_channel, reactor)] += 1
            n += 1
        starter.setdefault(conv, user)
        writes_channel[(channel, user)] += 1
        g = group_of.get(f"{conv}#{pos}")
        if g is None:
            continue
        total = decayed.get(("c", channel), at) or 1.0
        reactors = in_conv.get(conv, ())
        block = out[offsets[g]: offsets[g + 1]]
        for i, person in enumerate(data.people[g]):
            block[i] = (decayed.get(("c", channel, person), at) / total,
                        math.log1p(decayed.get(("a", person), at)),
                        math.log1p(to_author[(person, starter[conv])]),
                        math.log1p(to_author[(person, user)]),
                        float(person in reactors),
                        reacts_channel[(channel, person)] / (writes_channel[(channel, person)] + 1.0))
    return out


# -- the person's attention across the channel's conversations -----------------------------------

#: How the ranker's score of a person for this conversation compares with their scores for the other
#: conversations going on in the channel (:func:`attention_features`).
ATTENTION_FEATURES = ("conversation_share_of_person", "log_other_score", "log_active_conversations",
                      "log_minutes_since_other_conversation", "engaged_elsewhere")
#: A conversation is going on when its last message is at most this old.
ACTIVE_SECONDS = 1800.0
#: A person is engaged in another conversation when they wrote in it at most this long ago.
ENGAGED_SECONDS = 600.0


def attention_features(stream_rows: Sequence[tuple[str, int, float, str, str, tuple[str, ...]]],
                       rankings: Mapping[str, Sequence[tuple[str, float]]], data: HeadData,
                       active_seconds: float = ACTIVE_SECONDS) -> np.ndarray:
    """(data.n_rows, len(ATTENTION_FEATURES)) float32 in ``data``'s row order. In a busy channel a
    regular is likely to write *somewhere* soon, and the ranker scores them high for every conversation
    going on there, but an alert is about one. Per (moment, person): the ranker's score for this
    conversation over the sum of their latest scores for every conversation of the channel with a
    message in the last ``active_seconds`` (this one included); the sum for the others (log1p of x100);
    how many conversations go on there; minutes since the person last wrote in another conversation
    (log1p; 15 when never), and in how many other conversations they wrote in the last ENGAGED_SECONDS
    (a helper busy with someone else). Only rankings and messages up to the moment count."""
    group_of = {key: i for i, key in enumerate(data.keys)}
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in data.people])]).astype(np.int64)
    out = np.zeros((data.n_rows, len(ATTENTION_FEATURES)), np.float32)
    active: dict[str, dict[str, tuple[float, dict[str, float]]]] = {}  # channel -> conv -> (last at, scores)
    wrote: dict[str, dict[str, float]] = {}  # person -> their newest conversations -> when they last wrote there
    for conv, pos, at, user, channel, _m in stream_rows:
        key = f"{conv}#{pos}"
        theirs = wrote.setdefault(user, {})
        theirs.pop(conv, None)
        theirs[conv] = at
        if len(theirs) > 8:
            del theirs[next(iter(theirs))]
        convs = active.setdefault(channel, {})
        ranking = rankings.get(key)
        previous = convs.get(conv)
        convs[conv] = (at, dict(ranking) if ranking is not None else (previous[1] if previous else {}))
        if len(convs) > 8:
            for old in [c for c, (t, _) in convs.items() if t < at - active_seconds]:
                del convs[old]
        g = group_of.get(key)
        if g is None:
            continue
        going = [(c, scores) for c, (t, scores) in convs.items() if t >= at - active_seconds]
        mine = convs[conv][1]
        block = out[offsets[g]: offsets[g + 1]]
        for j, person in enumerate(data.people[g]):
            own = mine.get(person, 0.0)
            others = sum(scores.get(person, 0.0) for c, scores in going if c != conv)
            block[j, 0] = own / (own + others) if own + others > 0 else 0.0
            block[j, 1] = math.log1p(100.0 * others)
            elsewhere = [at - t for c, t in wrote.get(person, {}).items() if c != conv]
            block[j, 3] = math.log1p(min(elsewhere) / 60.0) if elsewhere else 15.0
            block[j, 4] = sum(1 for d in elsewhere if d <= ENGAGED_SECONDS)
        block[:, 2] = math.log1p(len(going))
    return out


# -- measuring signals on dev data ---------------------------------------------------------------

#: The ranker's own per-person features the decision model may read beside the head's (the ones that
#: describe the person against this conversation; beep.ranker.features.FEATURES names them).
RANKER_COLUMNS = ("similarity", "similarity_rank", "log_answered_last_author", "log_answered_by_last_author",
                  "share_hour", "share_day", "share_month", "log_seconds_since_any", "log_seconds_since_channel",
                  "log_messages_channel", "log_replies_channel", "from_similar", "from_partner", "from_recent",
                  "from_top", "addressed_last_author", "mentioned_context", "log_messages_total", "last_question",
                  "conv_length", "conv_participants")
#: The head's features by signal, added in this order (indices into FEATURES).
SIGNAL_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ranker probability and rank", ("ranker_probability", "ranker_rank")),
    ("+ presence (minutes since last message anywhere / here, activity here today, hour of week)",
     ("log_minutes_since_any", "log_minutes_since_channel", "channel_activity_day", "hour_of_week_share")),
    ("+ role (shares of messages, join rates here and anywhere)",
     ("channel_share", "workspace_share", "join_rate_channel", "join_rate_any", "log_messages")),
    ("+ the conversation (messages, people, age, mentions)",
     ("conversation_messages", "conversation_people", "log_minutes_since_start", "mentions_in_window")),
)


@dataclass
class SignalRow:
    """One decision model measured on the newer half of the tune period."""

    name: str
    auc: float | None
    top_precision: dict[int, float]  # n -> precision of the n highest-scored (moment, person) pairs
    #: target precision -> the best recall of the app's policy at a threshold reaching it (>= 5 alerts)
    recall_at: dict[float, float] = field(default_factory=dict)
    #: the same over the grid and thresholds at the model's own score quantiles (None: not measured)
    recall_at_fine: dict[float, float] | None = None


#: Thresholds at the score of a model's n-th best (moment, person) pair, for these n (besides the grid).
QUANTILE_PAIRS = (5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000)


def best_recall_at(curve: Sequence[Any], targets: Sequence[float], min_alerts: int = 5) -> dict[float, float]:
    """For each target precision, the highest recall among the curve's points (alert_replay.CurvePoint)
    that reach it with at least ``min_alerts`` alerts (0 where none does)."""
    out = {}
    for target in targets:
        ok = [c.recall or 0.0 for c in curve if c.alerts >= min_alerts and (c.precision or 0.0) >= target]
        out[target] = max(ok, default=0.0)
    return out


def channel_thresholds(sent: Sequence[Any], target: float, min_alerts: int = 5) -> dict[str, float]:
    """Per channel, the lowest threshold whose alerts there reached ``target`` precision with at least
    ``min_alerts`` alerts; ``sent``: the alerts (alert_replay.SentAlert) of the policy replayed at every
    threshold of a grid. Channels where no threshold does are left out (never alerted)."""
    tally: dict[tuple[str, float], list[int]] = {}
    for a in sent:
        counts = tally.setdefault((a.channel, a.min_probability), [0, 0])
        counts[0] += 1
        counts[1] += a.outcome != "nothing"
    out: dict[str, float] = {}
    for (channel, threshold), (n, useful) in sorted(tally.items(), key=lambda kv: kv[0][1]):
        if channel not in out and n >= min_alerts and useful / n >= target:
            out[channel] = threshold
    return out


def per_channel_scores(rankings: Mapping[str, Sequence[tuple[str, float]]], channel_of: Mapping[str, str],
                       thresholds: Mapping[str, float], at: float = 0.5) -> dict[str, tuple[tuple[str, float], ...]]:
    """Rankings rescaled so that one threshold ``at`` lets through exactly the scores at or above each
    channel's own threshold (``p * at / t``, below 1; channels without one: no ranking). The order within a
    moment is unchanged (one channel, one factor), so the policy decides the same way."""
    out: dict[str, tuple[tuple[str, float], ...]] = {}
    for key, ranking in rankings.items():
        t = thresholds.get(channel_of.get(key, ""))
        if t is not None:
            out[key] = tuple((u, min(0.999, p * at / t)) for u, p in ranking)
    return out


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def measure_signals(con: Any, export_id: str, model: Any, *, targets: Sequence[float] = (0.2, 0.3, 0.5),
                    say: Callable[[str], None] = lambda _m: None) -> list[SignalRow]:
    """Dev data only (docs/evaluation.md, "What limits recall"): the tune period (the newest part of the
    train split) cut in two by time; each decision model learns "joins within the window" on the
    older half and is measured on the newer half: AUC and precision of its highest-scored (moment,
    person) pairs, and the app's policy replayed with it (best recall at each target precision).
    The rows: the ranker's probability, the answer profile (:func:`answer_features`) and two scores
    from :func:`attention_features` untrained; heads adding signal groups one by one (the reactions of
    :func:`reaction_features` where the export has any); a threshold per
    channel chosen on the older half (:func:`channel_thresholds`); the policy's ceiling (an oracle).
    It also says what the ranker's alerts that were not useful were (:func:`_what_missed`).
    The evaluated period is never read."""
    import time

    import lightgbm as lgb

    from beep.evaluate import alert_replay as ar
    from beep.ranker.features import FEATURES as RANKER_FEATURES

    settings = ar.ReplaySettings()
    periods = ar.periods_of_export(con, export_id, "valid", settings.tune_fraction)
    if "tune" not in periods:
        raise ValueError(f"export {export_id} has no train split before its valid split: nothing to measure on")
    lo, hi = periods["tune"]
    mid = (lo + hi) / 2
    stream = ar._load_stream(con, hi)
    older: dict[str, ar.Moment] = {}
    newer: dict[str, ar.Moment] = {}
    for conv, pos, at, user, channel, _m in stream.rows:
        key = f"{conv}#{pos}"
        if lo <= at < mid:
            older[key] = ar.Moment(key, conv, pos, at, channel, user, "older")
        elif mid <= at <= hi:
            newer[key] = ar.Moment(key, conv, pos, at, channel, user, "newer")
    say(f"tune period: {len(older):,} moments to learn on, {len(newer):,} to measure on")
    ranker = ar.ranker_rankings(con, model, with_features=True)
    rankings = ranker([*older.values(), *newer.values()])
    ranker_features = ranker.features or {}
    seen = ar._seen_at_moments(stream, {**older, **newer}, settings.context_messages)
    window = settings.alert_window_minutes * 60.0

    def excluded(key: str) -> tuple[frozenset[str], frozenset[str]]:
        return seen[key].participants, seen[key].notified

    def label(conv: str, person: str, at: float) -> int:
        return int(stream.acted(conv, person, at, window))

    learn = collect(stream.rows, older, rankings, excluded, label)
    test = collect(stream.rows, newer, rankings, excluded, label)
    columns = [RANKER_FEATURES.index(c) for c in RANKER_COLUMNS]

    def ranker_block(data: HeadData) -> np.ndarray:
        rows = []
        for key, people in zip(data.keys, data.people):
            ranked = dict(zip((u for u, _ in rankings.get(key, ())), ranker_features.get(key, ())))
            for person in people:
                row = ranked.get(person)
                rows.append(row[columns] if row is not None else np.full(len(columns), np.nan, np.float32))
        return np.vstack(rows) if rows else np.zeros((0, len(columns)), np.float32)

    xa, xb = learn.matrix(), test.matrix()
    ya, yb = np.asarray(learn.labels, np.int32), np.asarray(test.labels, np.int32)
    say(f"pairs: {len(ya):,} to learn on ({ya.mean():.3f} joined), {len(yb):,} to measure on ({yb.mean():.3f})")
    started = time.monotonic()
    texts = load_texts(con, stream.rows)
    aa = answer_features(stream.rows, texts, mid, learn)  # TF-IDF fitted before the measured half
    ab = answer_features(stream.rows, texts, mid, test)
    say(f"answer profiles: {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    ta, tb = attention_features(stream.rows, rankings, learn), attention_features(stream.rows, rankings, test)
    say(f"attention across the channel's conversations: {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    reactions = load_reactions(con, hi)
    ra, rb = reaction_features(stream.rows, reactions, learn), reaction_features(stream.rows, reactions, test)
    say(f"reactions ({len(reactions):,} known by the end of the tune period): {time.monotonic() - started:.1f} s")
    wide: tuple[HeadData, HeadData] | None = None
    if reactions:  # the channel's frequent reactors as candidates too (people who react but rarely write)
        wide = (collect(stream.rows, older, rankings, excluded, label, reactions, REACTORS),
                collect(stream.rows, newer, rankings, excluded, label, reactions, REACTORS))
        say(f"with the channel's {REACTORS} most frequent reactors as candidates too: {wide[0].n_rows:,} / "
            f"{wide[1].n_rows:,} pairs ({np.mean(wide[1].labels):.3f} joined)")
    variants: list[tuple[str, np.ndarray | None, np.ndarray]] = [
        ("the ranker's probability alone", None, xb[:, [0]]),
        ("the answer profile's best cosine alone", None, ab[:, [0]]),
        ("the ranker's probability x this conversation's share of the person's scores in the channel", None,
         (xb[:, 0] * tb[:, 0])[:, None]),
        ("the ranker's probability, people who wrote in another conversation in the last 10 minutes left out", None,
         (xb[:, 0] * (tb[:, 4] == 0))[:, None]),
    ]
    cols: list[int] = []
    for name, group in SIGNAL_GROUPS:
        cols = cols + [FEATURES.index(c) for c in group]
        variants.append((f"head: {name}", xa[:, cols], xb[:, cols]))
        if len(cols) == 2:
            variants.append(("head: ranker probability and rank + the answer profile",
                             np.hstack([xa[:, cols], aa]), np.hstack([xb[:, cols], ab])))
            variants.append(("head: ranker probability and rank + attention across the channel's conversations",
                             np.hstack([xa[:, cols], ta]), np.hstack([xb[:, cols], tb])))
    variants.append(("head: + the answer profile (similarity to their past answers and answered questions, "
                     "answers here)", np.hstack([xa[:, cols], aa]), np.hstack([xb[:, cols], ab])))
    variants.append(("head: + attention across the channel's conversations", np.hstack([xa[:, cols], aa, ta]),
                     np.hstack([xb[:, cols], ab, tb])))
    if reactions:  # (an export without reactions: the features are all 0)
        variants.append(("head: ranker probability and rank + reactions", np.hstack([xa[:, :2], ra]),
                         np.hstack([xb[:, :2], rb])))
        variants.append(("head: + reactions (who reacts here, to whom, to this conversation)",
                         np.hstack([xa[:, cols], aa, ta, ra]), np.hstack([xb[:, cols], ab, tb, rb])))
    variants.append(("head: all of the above + the ranker's person features",
                     np.hstack([xa, aa, ta, ra, ranker_block(learn)]), np.hstack([xb, ab, tb, rb, ranker_block(test)])))
    groups: dict[str, tuple[list[str], list[list[str]], np.ndarray, np.ndarray]] = {}  # variant -> its own pairs
    if wide is not None:
        wa, wb = wide
        name = (f"head: ranker, presence, role, the conversation and reactions, the channel's {REACTORS} most "
                "frequent reactors as candidates too")
        variants.append((name, np.hstack([wa.matrix()[:, cols], reaction_features(stream.rows, reactions, wa)]),
                         np.hstack([wb.matrix()[:, cols], reaction_features(stream.rows, reactions, wb)])))
        groups[name] = (wb.keys, wb.people, np.asarray(wb.labels, np.int32), np.asarray(wa.labels, np.int32))
    out: list[SignalRow] = []
    for name, train_x, test_x in variants:
        keys, people_of, y_test, y_train = groups.get(name, (test.keys, test.people, yb, ya))
        if train_x is None:
            p = test_x[:, 0].astype(np.float64)
        else:
            clf = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=40,
                                     subsample=0.8, subsample_freq=1, colsample_bytree=0.9, random_state=0, n_jobs=1,
                                     verbose=-1)
            p = clf.fit(train_x, y_train).predict_proba(test_x)[:, 1]
        order = np.argsort(-p, kind="stable")
        row = SignalRow(name, _auc(y_test, p), {n: float(y_test[order[:n]].mean()) for n in (100, 500) if len(y_test) >= n})
        table: dict[str, tuple[tuple[str, float], ...]] = {}
        start = 0
        for key, people in zip(keys, people_of):
            part = p[start: start + len(people)]
            start += len(people)
            best = np.argsort(-part, kind="stable")[:20]
            table[key] = tuple((people[i], float(part[i])) for i in best)
        # the grid the app's operating point is chosen on, and thresholds at this model's own score
        # quantiles (a head's probabilities may crowd between two of the grid's thresholds)
        own = sorted({float(p[order[n - 1]]) for n in QUANTILE_PAIRS if n <= len(p)} - set(settings.thresholds))
        fine = replace(settings, thresholds=tuple(sorted({*settings.thresholds, *own})))
        result = ar.replay_alerts(con, {"evaluated": (mid, hi)}, lambda ms, t=table: {m.key: t.get(m.key, ()) for m in ms},
                                  "decision", fine, with_head=False)
        curve = [c for c in result.curve if c.model == "decision"]
        row.recall_at = best_recall_at([c for c in curve if c.min_probability in settings.thresholds], targets)
        row.recall_at_fine = best_recall_at(curve, targets)
        say(f"{name}: AUC {row.auc and round(row.auc, 3)}, top-100 pairs {row.top_precision.get(100, 0):.3f}, "
            + ", ".join(f"recall at precision {t:g}: {r:.3f}" for t, r in row.recall_at.items())
            + f" (finer thresholds: {', '.join(f'{r:.3f}' for r in row.recall_at_fine.values())})")
        out.append(row)
    # per-channel thresholds: chosen on the older half (the ranker's probability), measured on the newer
    out.append(_per_channel_row(con, stream, older, newer, rankings, seen, settings, lo, mid, hi, targets, say))
    for threshold in (0.1, 0.2, 0.3):
        say(f"the ranker's alerts at {threshold:g} on the newer half: " + _what_missed(con, stream, newer, rankings, seen,
                                                                                  settings, threshold, mid, hi))
    # the policy's ceiling: a ranking that knows who joins within the window ranks exactly them
    joins_at: dict[str, list[tuple[str, float]]] = {}
    for conv, person, at in ar._joins(stream, mid, hi):
        joins_at.setdefault(conv, []).append((person, at))
    oracle = {m.key: tuple((u, 0.99) for u, t in joins_at.get(m.conversation_id, ()) if m.at < t <= m.at + window)
              for m in newer.values()}
    result = ar.replay_alerts(con, {"evaluated": (mid, hi)}, lambda ms: {m.key: oracle.get(m.key, ()) for m in ms},
                              "decision", settings, with_head=False)
    out.append(SignalRow("the policy's ceiling: an oracle ranking exactly the people who join within the window",
                         None, {}, best_recall_at([c for c in result.curve if c.model == "decision"], targets)))
    return out


def _per_channel_row(con: Any, stream: Any, older: Mapping[str, Any], newer: Mapping[str, Any],
                     rankings: Mapping[str, Sequence[tuple[str, float]]], seen: Mapping[str, Any], settings: Any,
                     lo: float, mid: float, hi: float, targets: Sequence[float],
                     say: Callable[[str], None]) -> SignalRow:
    """The ranker's probability with a threshold per channel, each chosen on the older half for the
    highest target (the policy replayed there at every threshold, its alerts counted per channel); on
    the newer half the rescaled scores (:func:`per_channel_scores`) replayed as the other rows are."""
    from beep.evaluate import alert_replay as ar

    window = settings.alert_window_minutes * 60.0
    target = max(targets)
    moments = list(older.values())
    ranking = ar._candidates({"m": {k: tuple(v) for k, v in rankings.items() if k in older}}, seen,
                             min(settings.thresholds))["m"]
    people = ar._people(con)
    joins = ar._joins(stream, lo, mid)
    sent: list[Any] = []
    for threshold in settings.thresholds:
        ar._score(stream, moments, ranking, seen, people, settings.policy, threshold, window, joins, "m", "older",
                  0, 0.0, keep=sent)
    chosen = channel_thresholds(sent, target, ar.MIN_ALERTS)
    channel_of = {k: m.channel for k, m in newer.items()}
    table = per_channel_scores({k: v for k, v in rankings.items() if k in newer}, channel_of, chosen)
    result = ar.replay_alerts(con, {"evaluated": (mid, hi)}, lambda ms: {m.key: table.get(m.key, ()) for m in ms},
                              "decision", settings, with_head=False)
    curve = [c for c in result.curve if c.model == "decision"]
    honest = next((c for c in curve if c.min_probability == 0.5), None)
    say(f"per-channel thresholds (older half, target {target:g}): {len(chosen)} channels of "
        f"{len({m.channel for m in moments})} get one; on the newer half at them: "
        + (f"precision {honest.precision if honest.precision is None else round(honest.precision, 3)}, recall "
           f"{(honest.recall or 0):.3f}, {honest.alerts} alerts" if honest else "no alert"))
    return SignalRow(f"the ranker's probability, a threshold per channel chosen on the older half (target {target:g})",
                     None, {}, best_recall_at(curve, targets))


def _what_missed(con: Any, stream: Any, moments: Mapping[str, Any], rankings: Mapping[str, Sequence[tuple[str, float]]],
                 seen: Mapping[str, Any], settings: Any, threshold: float, lo: float, hi: float) -> str:
    """What the people of the alerts that were not useful did: wrote in another conversation of the same
    channel within the window (the right person, the wrong conversation), wrote elsewhere, or nothing."""
    from beep.evaluate import alert_replay as ar

    window = settings.alert_window_minutes * 60.0
    ranking = ar._candidates({"m": {k: tuple(v) for k, v in rankings.items() if k in moments}}, seen,
                             min(settings.thresholds))["m"]
    sent: list[Any] = []
    ar._score(stream, list(moments.values()), ranking, seen, ar._people(con), settings.policy, threshold, window,
              ar._joins(stream, lo, hi), "m", "newer", 0, 0.0, keep=sent)
    wrote: dict[tuple[str, str], list[float]] = {}
    anywhere: dict[str, list[float]] = {}
    for _conv, _pos, at, user, channel, _m in stream.rows:
        wrote.setdefault((channel, user), []).append(at)
        anywhere.setdefault(user, []).append(at)

    def soon(times: Sequence[float], at: float) -> bool:
        i = bisect.bisect_right(times, at)
        return i < len(times) and times[i] <= at + window

    tally: Counter[str] = Counter()
    for a in sent:
        if a.outcome != "nothing":
            tally["useful"] += 1
        elif soon(wrote.get((a.channel, a.person_id), ()), a.at):
            tally["wrote in another conversation of the channel"] += 1
        elif soon(anywhere.get(a.person_id, ()), a.at):
            tally["wrote in another channel"] += 1
        else:
            tally["wrote nothing"] += 1
    return f"{len(sent)} alerts: " + ", ".join(f"{k} {v}" for k, v in tally.most_common())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m beep.evaluate.alert_head --db PATH``: measure_signals for the DuckDB file's latest
    local ranker (dev data only: its export's tune period)."""
    import argparse
    from pathlib import Path

    from beep.db import connect
    from beep.predictors.models import latest_model, resolve_model, verified_artifact
    from beep.ranker.model import ResponderRanker

    parser = argparse.ArgumentParser(prog="python -m beep.evaluate.alert_head", description=main.__doc__)
    parser.add_argument("--db", type=Path, required=True, help="a DuckDB file with a built dataset and a local ranker")
    args = parser.parse_args(argv)
    with connect(args.db, read_only=True) as con:
        ref = resolve_model(con, latest_model(con))
        if ref.provider != "local" or not ref.export_id:
            print(f"{ref.name} is not a local ranker: train one with `beep finetune --provider local`")
            return 2
        rows = measure_signals(con, ref.export_id, ResponderRanker.load(verified_artifact(ref)), say=print)
    print("| decision model | AUC | precision of the top 100 pairs | " +
          " | ".join(f"recall at precision ≥ {t:g}" for t in rows[0].recall_at) +
          f" | same, finer thresholds, at ≥ {max(rows[0].recall_at):g} |")
    for r in rows:
        top = r.top_precision.get(100)
        fine = '–' if r.recall_at_fine is None else f"{r.recall_at_fine[max(r.recall_at_fine)]:.3f}"
        print(f"| {r.name} | {'–' if r.auc is None else f'{r.auc:.3f}'} | {'–' if top is None else f'{top:.3f}'} | "
              + " | ".join(f"{v:.3f}" for v in r.recall_at.values()) + f" | {fine} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
