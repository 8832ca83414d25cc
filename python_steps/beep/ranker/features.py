"""Candidates for a conversation in progress, and one feature vector per candidate.

Everything is read from a :class:`~beep.ranker.state.WorkspaceState` as of the conversation's
last message (``at``): times are measured from ``at``, never from the answer's time, so the
response delay cannot leak into a feature.

Each feature is declared once, in :data:`FEATURE_DEFINITIONS`: its name, what it means and how its
column is computed from a :class:`CandidateContext`. The feature matrix's columns, their order (the
order a saved booster reads) and :data:`FEATURES` all come from that one list; code reads a column
by name (:func:`column`, :meth:`Candidates.feature`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from beep.ranker.state import ChannelState, ConversationState, WorkspaceState

#: "Never" for a time feature: log1p of ~30 years.
_NEVER = math.log1p(1e9)
#: A rank or distance for "not there" (not a participant, never spoke here, not in the similar list).
_ABSENT = 99
#: Source bits (which generators named a candidate).
_RECENT, _TOP, _SIMILAR, _PARTNER = 1, 2, 4, 8
#: How many of the conversation's most recent participants are candidates.
PARTICIPANTS = 20
#: How many people by text similarity, and in all, a conversation gets as candidates.
SIMILAR = 10
MAX_CANDIDATES = 60
#: Weights of the context's messages (the latest first) in the context's text vector.
_CONTEXT_WEIGHTS = (1.0, 0.7, 0.5, 0.35, 0.25)


# -- candidate sources ------------------------------------------------------------------------
class _Pool:
    """The candidates in the order the sources name them (at most MAX_CANDIDATES), each with the
    bit mask of the sources that named them; ``exclude`` (the last message's author) never enters."""

    def __init__(self, exclude: int | None) -> None:
        self.exclude = exclude
        self.sources: dict[int, int] = {}

    def add(self, users: Iterable[int], bit: int = 0) -> None:
        for user in users:
            if user == self.exclude:
                continue
            if user in self.sources:
                self.sources[user] |= bit
            elif len(self.sources) < MAX_CANDIDATES:
                self.sources[user] = bit


def _context_mentions(conv: ConversationState) -> list[int]:
    """The people @-mentioned in the conversation's window, the latest mention first."""
    out: list[int] = []
    for mentions in reversed(conv.mentions):
        for user in mentions:
            if user not in out:
                out.append(user)
    return out


def _channel_recent(channel: ChannelState | None) -> list[int]:
    """The channel's most recent distinct speakers (state.RECENT_SPEAKERS)."""
    return channel.recent_speakers() if channel is not None else []


def _channel_top(channel: ChannelState | None) -> list[int]:
    """The channel's most active people this month (state.TOP_ACTIVE)."""
    return list(channel.top) if channel is not None else []


def _similar_people(state: WorkspaceState, channel: ChannelState | None, at: float,
                    query: np.ndarray | None) -> list[int]:
    """The SIMILAR people of the similarity pool whose text profiles are most like the context (cosine
    above 0), most similar first (ties: lower person index first)."""
    if query is None:
        return []
    pool, pool_profiles = state.similarity_pool(channel, at)
    if not len(pool):
        return []
    sims = pool_profiles @ query
    k = min(SIMILAR, len(pool))
    best = np.argpartition(-sims, k - 1)[:k] if k < len(pool) else np.arange(len(pool))
    best = best[np.lexsort((pool[best], -sims[best]))]
    return [int(pool[i]) for i in best if sims[i] > 0]


def _partners(state: WorkspaceState, last_author: int | None) -> list[int]:
    """The people who most often answered the last message's author (state.PARTNERS)."""
    return state.top_partners(last_author) if last_author is not None else []


def context_vector(conv: ConversationState) -> np.ndarray | None:
    vectors = list(conv.vectors)[::-1]
    if not vectors:
        return None
    total = np.zeros_like(vectors[0])
    for weight, vector in zip(_CONTEXT_WEIGHTS, vectors):
        total += weight * vector
    norm = float(np.linalg.norm(total))
    return total / norm if norm > 0 else None


# -- what the features read -------------------------------------------------------------------
class CandidateContext:
    """One conversation as of ``at`` and its candidates: what every feature's ``compute`` reads."""

    def __init__(self, state: WorkspaceState, conv: ConversationState, at: float, channel: ChannelState | None,
                 sources: dict[int, int], participants: list[int], context_mentions: list[int],
                 similar: list[int], query: np.ndarray | None) -> None:
        self.state = state
        self.conv = conv
        self.at = at
        self.channel = channel
        self.sources = sources  # candidate -> bit mask of the sources that named them (insertion order)
        self.people = np.fromiter(sources, dtype=np.int64, count=len(sources))
        self.n = len(self.people)
        self.last_author = conv.authors[-1] if conv.authors else None
        self.participants = participants
        self.context_mentions = set(context_mentions)
        self.last_mentions = set(conv.mentions[-1]) if conv.mentions else set()
        self.similar_rank = {u: r for r, u in enumerate(similar, start=1)}
        self.query = query
        self.last_n = conv.n_messages - 1

    def lookup(self, table: Mapping[int, float | int], missing: float) -> np.ndarray:
        """``table[candidate]`` (``missing`` when absent) per candidate, in the matrix's row order."""
        get = table.get
        return np.array([get(u, missing) for u in self.sources], dtype=np.float32)

    def from_source(self, bit: int) -> np.ndarray:
        """Whether the source with this bit named each candidate."""
        return (self.source_bits & bit) > 0

    @cached_property
    def source_bits(self) -> np.ndarray:
        """The bit mask of the sources that named each candidate."""
        return np.fromiter(self.sources.values(), dtype=np.int64, count=self.n)

    @cached_property
    def conversation_facts(self) -> np.ndarray:
        """(n, 5) int64 per candidate, read in one pass: messages written in the conversation, index of
        the last one (-1: none), index of the last message that @-mentioned them (-1: none), whether
        the last message / the window @-mentions them."""
        conv = self.conv
        count, spoke, mentioned = conv.count_by_user.get, conv.last_index_by_user.get, conv.last_mention_index.get
        last, window = self.last_mentions, self.context_mentions
        rows = [(count(u, 0), spoke(u, -1), mentioned(u, -1), u in last, u in window) for u in self.sources]
        return np.array(rows, dtype=np.int64).reshape(-1, 5)

    @property
    def messages_written(self) -> np.ndarray:
        """Messages each candidate wrote in the conversation."""
        return self.conversation_facts[:, 0]

    @property
    def spoke_index(self) -> np.ndarray:
        """Index of each candidate's last message in the conversation (-1: none)."""
        return self.conversation_facts[:, 1]

    @property
    def mention_index(self) -> np.ndarray:
        """Index of the conversation's last message that @-mentioned each candidate (-1: none)."""
        return self.conversation_facts[:, 2]

    @cached_property
    def participant_rank(self) -> dict[int, int]:
        """Rank among the conversation's participants, the most recent first (the last author left out)."""
        return {u: r for r, u in enumerate((p for p in self.participants if p != self.last_author), start=1)}

    @cached_property
    def channel_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(has: which candidates wrote in the channel, their rows in the channel's arrays)."""
        assert self.channel is not None
        locals_ = np.array([self.channel.index.get(int(u), -1) for u in self.people], dtype=np.int64)
        has = locals_ >= 0
        return has, locals_[has]

    def channel_gather(self, values: np.ndarray, missing: float = 0.0) -> np.ndarray:
        """A channel array's value per candidate (``missing`` for those who never wrote there)."""
        has, idx = self.channel_rows
        out = np.full(self.n, missing)
        out[has] = values[idx]
        return out

    @cached_property
    def shares(self) -> np.ndarray:
        """(n, 3) the candidates' time-decayed shares of the channel's activity (hour, day, month)."""
        shares = np.zeros((self.n, 3))
        if self.channel is not None:
            has, idx = self.channel_rows
            total = self.channel.total_at_time(self.at)
            shares[has] = self.channel.activity_at(idx, self.at) / np.maximum(total, 1e-9)[None, :]
        return shares


#: How a feature's column is computed: an array (a value per candidate) or one value for all.
Column = Callable[[CandidateContext], "np.ndarray | float"]


def _log_since(at: float, then: np.ndarray) -> np.ndarray:
    out = np.full(then.shape, _NEVER, dtype=np.float64)
    seen = np.isfinite(then)
    out[seen] = np.log1p(np.maximum(0.0, at - then[seen]))
    return out


def _since_channel(c: CandidateContext) -> np.ndarray | float:
    if c.channel is None:
        return _NEVER
    return _log_since(c.at, c.channel_gather(c.channel.last_at, -math.inf))


def _channel_log_count(values: Callable[[ChannelState], np.ndarray]) -> Column:
    def compute(c: CandidateContext) -> np.ndarray | float:
        return np.log1p(c.channel_gather(values(c.channel))) if c.channel is not None else 0.0
    return compute


def _share(period: int) -> Column:
    return lambda c: c.shares[:, period]


def _messages_since(c: CandidateContext, index: np.ndarray) -> np.ndarray:
    """Messages in the conversation since the one at ``index`` (_ABSENT where -1: none)."""
    return np.where(index >= 0, c.last_n - index, _ABSENT)


def _mentioned_unanswered(c: CandidateContext) -> np.ndarray:
    mentioned_at, spoke = c.mention_index, c.spoke_index
    return (mentioned_at >= 0) & (spoke < mentioned_at)  # spoke -1: never wrote here


def _addressed_last_author(c: CandidateContext) -> np.ndarray:
    author, get = c.last_author, c.conv.mentioned_by_user.get
    return np.array([author in get(u, ()) for u in c.sources], dtype=np.float32)


def _log_answered(c: CandidateContext, *, by_candidate: bool) -> np.ndarray:
    """log1p(how often the candidate answered the last author), or (not ``by_candidate``) the reverse."""
    author, get, log1p = c.last_author, c.state.pairs.get, math.log1p
    if by_candidate:
        return np.array([log1p(get((u, author), 0)) for u in c.sources], dtype=np.float32)
    return np.array([log1p(get((author, u), 0)) for u in c.sources], dtype=np.float32)


def _similarity(c: CandidateContext) -> np.ndarray | float:
    if c.query is None:
        return 0.0
    profiles = c.state.profiles[c.people]
    norms = np.linalg.norm(profiles, axis=1)
    return np.divide(profiles @ c.query, norms, out=np.zeros(c.n, dtype=np.float32), where=norms > 0)


def _log_gap(c: CandidateContext) -> float:
    ats = list(c.conv.ats)
    return math.log1p(max(0.0, ats[-1] - ats[-2])) if len(ats) == 2 else _NEVER


def _last_author_messages(c: CandidateContext) -> float:
    author = c.last_author
    return math.log1p(c.state.n_messages[author]) if author is not None and author >= 0 else 0.0


@dataclass(frozen=True)
class Feature:
    """One column of the feature matrix."""

    name: str
    description: str
    #: the column: one value per candidate, in the order of ``CandidateContext.people``, or one value
    #: for all of them (a property of the conversation)
    compute: Column
    #: the ranker's score may only increase with it (a LightGBM monotone constraint; see model.py)
    monotone_up: bool = False


#: Every feature, in the matrix's column order (a saved booster reads its columns in this order:
#: append new features at the end, and a changed list makes old artifacts ask to be retrained).
FEATURE_DEFINITIONS: tuple[Feature, ...] = (
    Feature("in_conversation", "wrote in this conversation",
            lambda c: c.messages_written > 0),
    Feature("participant_rank", "rank among the conversation's participants, the most recent first (99: not one)",
            lambda c: c.lookup(c.participant_rank, _ABSENT)),
    Feature("messages_in_conversation", "messages they wrote in this conversation",
            lambda c: c.messages_written),
    Feature("messages_since_spoke", "messages in the conversation since they last wrote in it (99: never)",
            lambda c: _messages_since(c, c.spoke_index)),
    Feature("mentioned_last", "@-mentioned in the conversation's last message",
            lambda c: c.conversation_facts[:, 3], monotone_up=True),
    Feature("mentioned_context", "@-mentioned in the conversation's window (its last 5 messages)",
            lambda c: c.conversation_facts[:, 4], monotone_up=True),
    Feature("addressed_last_author", "they @-mentioned the last message's author in this conversation",
            _addressed_last_author, monotone_up=True),
    Feature("messages_since_mentioned", "messages since they were last @-mentioned here (99: never)",
            lambda c: _messages_since(c, c.mention_index)),
    Feature("mentioned_unanswered", "@-mentioned here and not written since",
            _mentioned_unanswered, monotone_up=True),
    Feature("log_seconds_since_channel", "log1p(seconds since they last wrote in this channel); never: log1p(1e9)",
            _since_channel),
    Feature("log_seconds_since_any", "log1p(seconds since they last wrote anywhere); never: log1p(1e9)",
            lambda c: _log_since(c.at, c.state.last_any[c.people])),
    Feature("share_hour", "their share of the channel's activity, decayed with a half-life of an hour", _share(0)),
    Feature("share_day", "their share of the channel's activity, half-life a day", _share(1)),
    Feature("share_month", "their share of the channel's activity, half-life 30 days", _share(2)),
    Feature("log_messages_total", "log1p(their messages in the workspace)",
            lambda c: np.log1p(c.state.n_messages[c.people])),
    Feature("log_messages_channel", "log1p(their messages in this channel)", _channel_log_count(lambda ch: ch.count)),
    Feature("log_replies_channel", "log1p(their replies in this channel)", _channel_log_count(lambda ch: ch.replies)),
    Feature("log_answered_last_author", "log1p(how often they answered the last message's author)",
            lambda c: _log_answered(c, by_candidate=True)),
    Feature("log_answered_by_last_author", "log1p(how often the last message's author answered them)",
            lambda c: _log_answered(c, by_candidate=False)),
    Feature("similarity", "cosine of their text profile and the context's text vector", _similarity),
    Feature("similarity_rank", "their rank among the people most similar to the context (99: not among them)",
            lambda c: c.lookup(c.similar_rank, _ABSENT)),
    Feature("from_recent", "named by the channel's recent speakers", lambda c: c.from_source(_RECENT)),
    Feature("from_top", "named by the channel's most active people", lambda c: c.from_source(_TOP)),
    Feature("from_similar", "named by text similarity", lambda c: c.from_source(_SIMILAR)),
    Feature("from_partner", "named as one of the last author's usual partners", lambda c: c.from_source(_PARTNER)),
    Feature("conv_participants", "the conversation's distinct participants", lambda c: len(c.participants)),
    Feature("conv_length", "the conversation's messages so far", lambda c: c.conv.n_messages),
    Feature("log_gap", "log1p(seconds between the conversation's last two messages); one message: log1p(1e9)",
            _log_gap),
    Feature("log_last_chars", "log1p(characters of the last message)", lambda c: math.log1p(c.conv.last_chars)),
    Feature("last_question", "the last message has a question mark", lambda c: float(c.conv.last_question)),
    Feature("n_candidates", "how many candidates the conversation has", lambda c: c.n),
    Feature("log_last_author_messages", "log1p(the last message's author's messages in the workspace)",
            _last_author_messages),
)
#: The feature columns, in order (names of FEATURE_DEFINITIONS).
FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURE_DEFINITIONS)
_COLUMN = {name: i for i, name in enumerate(FEATURES)}
if len(_COLUMN) != len(FEATURES):
    raise ValueError("two ranker features have the same name")


def column(name: str) -> int:
    """The matrix column of a feature, by name."""
    try:
        return _COLUMN[name]
    except KeyError:
        raise KeyError(f"no ranker feature named {name!r} (known: {', '.join(FEATURES)})") from None


def columns(names: Sequence[str]) -> list[int]:
    return [column(n) for n in names]


@dataclass(frozen=True)
class Candidates:
    """The candidates of one conversation (global person indices) and their features."""

    people: np.ndarray  # (n,) int64
    features: np.ndarray  # (n, len(FEATURES)) float32
    channel_name: str | None = None  # for the reasons (see :func:`reason`)

    def feature(self, name: str) -> np.ndarray:
        """One feature's column (a value per candidate)."""
        return self.features[:, column(name)]


def feature_matrix(context: CandidateContext) -> np.ndarray:
    """(candidates, features) float32: every declared feature's column, in FEATURES order."""
    if context.n == 0:
        return np.zeros((0, len(FEATURE_DEFINITIONS)), dtype=np.float32)
    by_feature = np.empty((len(FEATURE_DEFINITIONS), context.n), dtype=np.float32)
    for i, feature in enumerate(FEATURE_DEFINITIONS):
        by_feature[i] = feature.compute(context)
    return np.ascontiguousarray(by_feature.T)


def candidates(state: WorkspaceState, conv: ConversationState, at: float, *, channel_name: str | None = None) -> Candidates:
    """The candidates of ``conv`` as of ``at`` (its last message) and their features.

    The sources, in the order they fill the pool (at most MAX_CANDIDATES): the conversation's recent
    participants, the people @-mentioned in it, the channel's recent speakers and most active people,
    the people whose texts are most like the context, the last author's usual partners. The author of
    the last message is never a candidate: a reply is by someone else.
    """
    channel: ChannelState | None = state.channels.get(conv.channel)
    last_author = conv.authors[-1] if conv.authors else None
    participants = conv.participants()
    mentions = _context_mentions(conv)
    pool = _Pool(exclude=last_author)
    pool.add(participants[:PARTICIPANTS])
    pool.add(mentions)
    pool.add(_channel_recent(channel), _RECENT)
    pool.add(_channel_top(channel), _TOP)
    query = context_vector(conv)
    similar = _similar_people(state, channel, at, query)
    pool.add(similar, _SIMILAR)
    pool.add(_partners(state, last_author), _PARTNER)
    context = CandidateContext(state, conv, at, channel, pool.sources, participants, mentions, similar, query)
    return Candidates(context.people, feature_matrix(context), channel_name)


def reason(row: np.ndarray, channel_name: str | None) -> str:
    """One line a person can read: the strongest plain reason this candidate is suggested, with the
    number behind it (how often, how recently, how much), so that two candidates rarely read alike.
    Without a channel (text given alone) nothing is said about "this channel"."""
    def f(name: str) -> np.floating:
        return row[column(name)]

    where = f"#{channel_name}" if channel_name else None
    if f("mentioned_unanswered") or f("mentioned_last") or f("mentioned_context"):
        return "mentioned in the conversation"
    if f("addressed_last_author"):
        return "asked the last speaker here"
    if f("in_conversation"):
        return "already in this conversation"
    similar = bool(f("from_similar")) and f("similarity_rank") <= 3
    in_channel = where is not None and f("log_messages_channel") > 0
    if similar and f("similarity_rank") == 1:
        return f"wrote the messages most like this one in {where}" if in_channel else "wrote the messages most like this one"
    answered = round(math.expm1(float(f("log_answered_last_author"))))
    if answered >= 2:
        return f"answered the last speaker {answered:,} times"
    if similar:
        return f"wrote about similar things in {where}" if in_channel else "wrote about similar things"
    if where is not None:
        if f("log_seconds_since_channel") <= math.log1p(86400):
            return f"active in {where} today ({_ago(float(f('log_seconds_since_channel')))})"
        if f("share_month") >= 0.02:
            return f"wrote {f('share_month'):.0%} of {where}'s messages this month"
        if in_channel:
            return f"wrote {round(math.expm1(float(f('log_messages_channel')))):,} messages in {where}"
    if f("log_seconds_since_any") <= math.log1p(86400):
        return f"active in the workspace today ({_ago(float(f('log_seconds_since_any')))})"
    return f"wrote {round(math.expm1(float(f('log_messages_total')))):,} messages in the workspace"


def _ago(log_seconds: float) -> str:
    """'12 min ago' / '5 h ago' from a log1p(seconds) feature."""
    seconds = math.expm1(log_seconds)
    return f"{max(1, round(seconds / 60))} min ago" if seconds < 3600 else f"{round(seconds / 3600)} h ago"
