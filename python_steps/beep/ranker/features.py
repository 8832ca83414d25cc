"""Candidates for a conversation in progress, and one feature vector per candidate.

Everything is read from a :class:`~beep.ranker.state.WorkspaceState` as of the conversation's
last message (``at``): times are measured from ``at``, never from the answer's time, so the
response delay cannot leak into a feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from beep.ranker.state import ChannelState, ConversationState, WorkspaceState

#: The feature columns, in order.
FEATURES: tuple[str, ...] = (
    "in_conversation", "participant_rank", "messages_in_conversation", "messages_since_spoke",
    "mentioned_last", "mentioned_context", "addressed_last_author",
    "messages_since_mentioned", "mentioned_unanswered",
    "log_seconds_since_channel", "log_seconds_since_any",
    "share_hour", "share_day", "share_month",
    "log_messages_total", "log_messages_channel", "log_replies_channel",
    "log_answered_last_author", "log_answered_by_last_author",
    "similarity", "similarity_rank",
    "from_recent", "from_top", "from_similar", "from_partner",
    "conv_participants", "conv_length", "log_gap", "log_last_chars", "last_question",
    "n_candidates", "log_last_author_messages",
)
_COL = {name: i for i, name in enumerate(FEATURES)}
#: The columns computed per candidate in one Python loop (the rest are numpy gathers).
_LOCAL_COLS = [_COL[c] for c in (
    "in_conversation", "participant_rank", "messages_in_conversation", "messages_since_spoke",
    "mentioned_last", "mentioned_context", "addressed_last_author",
    "messages_since_mentioned", "mentioned_unanswered",
    "log_answered_last_author", "log_answered_by_last_author", "similarity_rank",
    "from_recent", "from_top", "from_similar", "from_partner")]
#: "Never" for a time feature: log1p of ~30 years.
_NEVER = math.log1p(1e9)
#: Source bits (which generators named a candidate).
_RECENT, _TOP, _SIMILAR, _PARTNER = 1, 2, 4, 8
_FLAG_COLS = [_COL[c] for c in ("from_recent", "from_top", "from_similar", "from_partner")]
#: How many of the conversation's most recent participants are candidates.
PARTICIPANTS = 20
#: How many people by text similarity, and in all, a conversation gets as candidates.
SIMILAR = 10
MAX_CANDIDATES = 60
#: Weights of the context's messages (the latest first) in the context's text vector.
_CONTEXT_WEIGHTS = (1.0, 0.7, 0.5, 0.35, 0.25)


@dataclass(frozen=True)
class Candidates:
    """The candidates of one conversation (global person indices) and their features."""

    people: np.ndarray  # (n,) int64
    features: np.ndarray  # (n, len(FEATURES)) float32
    channel_name: str | None = None  # for the reasons (see :func:`reason`)


def context_vector(conv: ConversationState) -> np.ndarray | None:
    vectors = list(conv.vectors)[::-1]
    if not vectors:
        return None
    total = np.zeros_like(vectors[0])
    for weight, vector in zip(_CONTEXT_WEIGHTS, vectors):
        total += weight * vector
    norm = float(np.linalg.norm(total))
    return total / norm if norm > 0 else None


def _log_since(at: float, then: np.ndarray) -> np.ndarray:
    out = np.full(then.shape, _NEVER, dtype=np.float64)
    seen = np.isfinite(then)
    out[seen] = np.log1p(np.maximum(0.0, at - then[seen]))
    return out


def candidates(state: WorkspaceState, conv: ConversationState, at: float, *, channel_name: str | None = None) -> Candidates:
    """The candidates of ``conv`` as of ``at`` (its last message) and their features.

    The author of the last message is never a candidate: a reply is by someone else.
    """
    channel: ChannelState | None = state.channels.get(conv.channel)
    last_author = conv.authors[-1] if conv.authors else None
    participants = conv.participants()
    context_mentions: list[int] = []
    for mentions in reversed(conv.mentions):
        for user in mentions:
            if user not in context_mentions:
                context_mentions.append(user)
    last_mentions = set(conv.mentions[-1]) if conv.mentions else set()

    order: dict[int, int] = {}  # candidate -> bit mask of the sources that named them

    def add(users, bit: int = 0) -> None:
        for user in users:
            if user == last_author:
                continue
            if user in order:
                order[user] |= bit
            elif len(order) < MAX_CANDIDATES:
                order[user] = bit

    add(participants[:PARTICIPANTS])
    add(context_mentions)
    if channel is not None:
        add(channel.recent_speakers(), _RECENT)
        add(channel.top, _TOP)
    query = context_vector(conv)
    similar_rank: dict[int, int] = {}
    pool, pool_profiles = state.similarity_pool(channel, at) if query is not None else (np.zeros(0, np.int64), None)
    if query is not None and len(pool):
        sims = pool_profiles @ query
        k = min(SIMILAR, len(pool))
        best = np.argpartition(-sims, k - 1)[:k] if k < len(pool) else np.arange(len(pool))
        best = best[np.lexsort((pool[best], -sims[best]))]
        ranked = [int(pool[i]) for i in best if sims[i] > 0]
        similar_rank = {u: r for r, u in enumerate(ranked, start=1)}
        add(ranked, _SIMILAR)
    if last_author is not None:
        add(state.top_partners(last_author), _PARTNER)

    people = np.fromiter(order, dtype=np.int64, count=len(order))
    n = len(people)
    x = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if n == 0:
        return Candidates(people, x, channel_name)
    rank_of = {u: r for r, u in enumerate((p for p in participants if p != last_author), start=1)}
    count_by_user, last_index, mentioned_by = conv.count_by_user, conv.last_index_by_user, conv.mentioned_by_user
    mention_index = conv.last_mention_index
    context_set = set(context_mentions)
    pairs = state.pairs
    last_n = conv.n_messages - 1
    log1p = math.log1p
    local_rows = []
    for u, bits in order.items():
        count = count_by_user.get(u, 0)
        spoke = last_index.get(u)
        mentioned_at = mention_index.get(u)
        local_rows.append((
            count > 0, rank_of.get(u, 99), count, last_n - spoke if spoke is not None else 99,
            u in last_mentions, u in context_set,
            last_author in mentioned_by.get(u, ()),
            last_n - mentioned_at if mentioned_at is not None else 99,
            mentioned_at is not None and (spoke is None or spoke < mentioned_at),
            log1p(pairs.get((u, last_author), 0)), log1p(pairs.get((last_author, u), 0)),
            similar_rank.get(u, 99),
            bits & _RECENT, bits & _TOP, bits & _SIMILAR, bits & _PARTNER,
        ))
    x[:, _LOCAL_COLS] = np.array(local_rows, dtype=np.float32)
    x[:, _FLAG_COLS] = x[:, _FLAG_COLS] > 0
    x[:, _COL["log_seconds_since_any"]] = _log_since(at, state.last_any[people])
    x[:, _COL["log_messages_total"]] = np.log1p(state.n_messages[people])
    if channel is not None:
        locals_ = np.array([channel.index.get(int(u), -1) for u in people], dtype=np.int64)
        has = locals_ >= 0
        idx = locals_[has]
        last_in = np.full(n, -math.inf)
        last_in[has] = channel.last_at[idx]
        x[:, _COL["log_seconds_since_channel"]] = _log_since(at, last_in)
        shares = np.zeros((n, 3))
        total = channel.total_at_time(at)
        shares[has] = channel.activity_at(idx, at) / np.maximum(total, 1e-9)[None, :]
        x[:, _COL["share_hour"]] = shares[:, 0]
        x[:, _COL["share_day"]] = shares[:, 1]
        x[:, _COL["share_month"]] = shares[:, 2]
        counts = np.zeros(n)
        counts[has] = channel.count[idx]
        replies = np.zeros(n)
        replies[has] = channel.replies[idx]
        x[:, _COL["log_messages_channel"]] = np.log1p(counts)
        x[:, _COL["log_replies_channel"]] = np.log1p(replies)
    else:
        x[:, _COL["log_seconds_since_channel"]] = _NEVER
    if last_author is not None and last_author >= 0:
        x[:, _COL["log_last_author_messages"]] = math.log1p(state.n_messages[last_author])
    if query is not None:
        profiles = state.profiles[people]
        norms = np.linalg.norm(profiles, axis=1)
        x[:, _COL["similarity"]] = np.divide(profiles @ query, norms, out=np.zeros(n, dtype=np.float32), where=norms > 0)
    x[:, _COL["conv_participants"]] = len(participants)
    x[:, _COL["conv_length"]] = conv.n_messages
    ats = list(conv.ats)
    x[:, _COL["log_gap"]] = math.log1p(max(0.0, ats[-1] - ats[-2])) if len(ats) == 2 else _NEVER
    x[:, _COL["log_last_chars"]] = math.log1p(conv.last_chars)
    x[:, _COL["last_question"]] = float(conv.last_question)
    x[:, _COL["n_candidates"]] = n
    return Candidates(people, x, channel_name)


def reason(row: np.ndarray, channel_name: str | None) -> str:
    """One line a person can read: the strongest plain reason this candidate is suggested, with the
    number behind it (how often, how recently, how much), so that two candidates rarely read alike.
    Without a channel (text given alone) nothing is said about "this channel"."""
    where = f"#{channel_name}" if channel_name else None
    if row[_COL["mentioned_unanswered"]] or row[_COL["mentioned_last"]] or row[_COL["mentioned_context"]]:
        return "mentioned in the conversation"
    if row[_COL["addressed_last_author"]]:
        return "asked the last speaker here"
    if row[_COL["in_conversation"]]:
        return "already in this conversation"
    similar = bool(row[_COL["from_similar"]]) and row[_COL["similarity_rank"]] <= 3
    in_channel = where is not None and row[_COL["log_messages_channel"]] > 0
    if similar and row[_COL["similarity_rank"]] == 1:
        return f"wrote the messages most like this one in {where}" if in_channel else "wrote the messages most like this one"
    answered = round(math.expm1(float(row[_COL["log_answered_last_author"]])))
    if answered >= 2:
        return f"answered the last speaker {answered:,} times"
    if similar:
        return f"wrote about similar things in {where}" if in_channel else "wrote about similar things"
    if where is not None:
        if row[_COL["log_seconds_since_channel"]] <= math.log1p(86400):
            return f"active in {where} today ({_ago(float(row[_COL['log_seconds_since_channel']]))})"
        if row[_COL["share_month"]] >= 0.02:
            return f"wrote {row[_COL['share_month']]:.0%} of {where}'s messages this month"
        if in_channel:
            return f"wrote {round(math.expm1(float(row[_COL['log_messages_channel']]))):,} messages in {where}"
    if row[_COL["log_seconds_since_any"]] <= math.log1p(86400):
        return f"active in the workspace today ({_ago(float(row[_COL['log_seconds_since_any']]))})"
    return f"wrote {round(math.expm1(float(row[_COL['log_messages_total']]))):,} messages in the workspace"


def _ago(log_seconds: float) -> str:
    """'12 min ago' / '5 h ago' from a log1p(seconds) feature."""
    seconds = math.expm1(log_seconds)
    return f"{max(1, round(seconds / 60))} min ago" if seconds < 3600 else f"{round(seconds / 3600)} h ago"