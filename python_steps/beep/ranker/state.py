"""What is known about a workspace at one moment, updated message by message.

:class:`WorkspaceState` is fed the workspace's usable messages in time order (``observe``). At any
point it answers, for a conversation in progress and a set of people, what a ranker may know
*then*: nothing in it depends on a later message. Memory: per person a handful of numbers and a
``dims``-float text profile; per channel the people who wrote there; per open conversation its
last few messages (conversations idle for ``conversation_ttl_days`` are forgotten).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np

#: Half-lives of the time-decayed activity counts: an hour, a day, a month (seconds).
HALF_LIVES: tuple[float, ...] = (3600.0, 86400.0, 30 * 86400.0)
_RATE_LIST = tuple(math.log(2) / h for h in HALF_LIVES)
_RATES = np.array(_RATE_LIST)
#: How many of a channel's most recent distinct speakers are candidates.
RECENT_SPEAKERS = 20
#: How many of a channel's most active people (month half-life) are candidates.
TOP_ACTIVE = 20
#: How many people a channel's text-similarity pool holds (most active first), and the global one.
CHANNEL_POOL = 300
GLOBAL_POOL = 200
#: How many of a person's most frequent partners (who answered them) are kept, as candidates.
PARTNERS = 3
#: A channel's active lists are recomputed after this many of its messages or this many seconds.
REFRESH_MESSAGES = 50
REFRESH_SECONDS = 6 * 3600.0


def _grow(array: np.ndarray, size: int, fill: float = 0.0) -> np.ndarray:
    if size <= array.shape[0]:
        return array
    capacity = max(size, 2 * array.shape[0], 16)
    grown = np.full((capacity, *array.shape[1:]), fill, dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


@dataclass
class Message:
    """One usable message as the state sees it (ids already interned)."""

    conversation_id: str
    position: int
    at: float  # epoch seconds
    user: int
    channel: str
    vector: np.ndarray  # (dims,) float32, norm 1 or 0
    mentions: tuple[int, ...] = ()
    text_chars: int = 0
    has_question: bool = False


@dataclass
class ConversationState:
    """The recent messages of one conversation."""

    channel: str
    authors: deque = field(default_factory=lambda: deque(maxlen=50))  # user per message, oldest first
    ats: deque = field(default_factory=lambda: deque(maxlen=2))
    vectors: deque = field(default_factory=lambda: deque(maxlen=5))
    mentions: deque = field(default_factory=lambda: deque(maxlen=5))  # mentions per recent message
    count_by_user: dict = field(default_factory=dict)
    last_index_by_user: dict = field(default_factory=dict)
    mentioned_by_user: dict = field(default_factory=dict)  # user -> set of people they mentioned here
    last_mention_index: dict = field(default_factory=dict)  # user -> index of the last message mentioning them
    n_messages: int = 0
    last_at: float = 0.0
    last_chars: int = 0
    last_question: bool = False

    def participants(self) -> list[int]:
        """Distinct authors, most recent first."""
        seen: dict[int, None] = {}
        for user in reversed(self.authors):
            seen.setdefault(user, None)
        return list(seen)


class ChannelState:
    """Who wrote in one channel, when, and how much (time-decayed)."""

    def __init__(self) -> None:
        self.index: dict[int, int] = {}
        self.users = np.zeros(0, dtype=np.int64)
        self.last_at = np.zeros(0, dtype=np.float64)
        self.activity = np.zeros((0, len(HALF_LIVES)), dtype=np.float64)  # as of updated_at
        self.updated_at = np.zeros(0, dtype=np.float64)
        self.count = np.zeros(0, dtype=np.float64)
        self.replies = np.zeros(0, dtype=np.float64)
        self.total = np.zeros(len(HALF_LIVES), dtype=np.float64)
        self.total_at = 0.0
        self.recent: OrderedDict[int, None] = OrderedDict()
        self.top: list[int] = []
        self.pool = np.zeros(0, dtype=np.int64)
        #: (pool people, their L2-normalised text profiles) as of the last refresh
        self.similarity_pool: tuple[np.ndarray, np.ndarray] | None = None
        self._since_refresh = REFRESH_MESSAGES
        self._refreshed_at = -math.inf

    def local(self, user: int) -> int:
        i = self.index.get(user)
        if i is None:
            i = len(self.index)
            self.index[user] = i
            n = i + 1
            self.users = _grow(self.users, n)
            self.last_at = _grow(self.last_at, n, -math.inf)
            self.activity = _grow(self.activity, n)
            self.updated_at = _grow(self.updated_at, n)
            self.count = _grow(self.count, n)
            self.replies = _grow(self.replies, n)
            self.users[i] = user
        return i

    def observe(self, user: int, at: float, is_reply: bool) -> None:
        i = self.local(user)
        dt = max(0.0, at - self.updated_at[i])
        row = self.activity[i]
        for j, rate in enumerate(_RATE_LIST):
            row[j] = row[j] * math.exp(-rate * dt) + 1.0
        self.updated_at[i] = at
        self.last_at[i] = at
        self.count[i] += 1
        if is_reply:
            self.replies[i] += 1
        dt = max(0.0, at - self.total_at)
        for j, rate in enumerate(_RATE_LIST):
            self.total[j] = self.total[j] * math.exp(-rate * dt) + 1.0
        self.total_at = at
        self.recent[user] = None
        self.recent.move_to_end(user)
        while len(self.recent) > RECENT_SPEAKERS + 1:
            self.recent.popitem(last=False)
        self._since_refresh += 1

    def due(self, at: float) -> bool:
        return self._since_refresh >= REFRESH_MESSAGES or at - self._refreshed_at >= REFRESH_SECONDS

    def refresh(self, at: float) -> None:
        """Recompute the most active people (month half-life); called by the workspace state as
        messages arrive (never by a query, so what a query sees depends on the messages only)."""
        n = len(self.index)
        if n:
            month = self.activity[:n, -1] * np.exp(-_RATES[-1] * np.maximum(0.0, at - self.updated_at[:n]))
            k = min(CHANNEL_POOL, n)
            part = np.argpartition(-month, k - 1)[:k] if k < n else np.arange(n)
            order = part[np.lexsort((part, -month[part]))]
            self.pool = self.users[order]
            self.top = [int(u) for u in self.pool[:TOP_ACTIVE]]
        self._since_refresh = 0
        self._refreshed_at = at

    def recent_speakers(self) -> list[int]:
        """The channel's latest distinct speakers, most recent first."""
        return list(reversed(self.recent))

    def activity_at(self, locals_: np.ndarray, at: float) -> np.ndarray:
        """(len(locals_), len(HALF_LIVES)) decayed activity of channel-local people as of ``at``."""
        dt = np.maximum(0.0, at - self.updated_at[locals_])[:, None]
        return self.activity[locals_] * np.exp(-_RATES[None, :] * dt)

    def total_at_time(self, at: float) -> np.ndarray:
        return self.total * np.exp(-_RATES * max(0.0, at - self.total_at))


class WorkspaceState:
    """Everything the ranker knows, as of the last message observed."""

    def __init__(self, dims: int, *, conversation_ttl_days: float = 14.0) -> None:
        self.dims = dims
        self.user_ids: list[str] = []
        self.user_index: dict[str, int] = {}
        self.last_any = np.zeros(0, dtype=np.float64)
        self.n_messages = np.zeros(0, dtype=np.float64)
        self.profiles = np.zeros((0, dims), dtype=np.float32)
        self.global_activity = np.zeros(0, dtype=np.float64)  # month half-life, as of global_updated
        self.global_updated = np.zeros(0, dtype=np.float64)
        self.channels: dict[str, ChannelState] = {}
        self.conversations: dict[str, ConversationState] = {}
        self.pairs: dict[tuple[int, int], int] = {}  # (responder, previous author) -> times
        self.partners: dict[int, dict[int, int]] = {}  # previous author -> responders -> times
        self._partner_top: dict[int, list[tuple[int, int]]] = {}  # author -> [(-count, responder)], best 3
        self.global_pool = np.zeros(0, dtype=np.int64)
        self._global_similarity: tuple[np.ndarray, np.ndarray] | None = None
        self._global_refresh = 0
        self.now = -math.inf
        self.conversation_ttl = conversation_ttl_days * 86400.0
        self._last_sweep = -math.inf

    # -- people ------------------------------------------------------------------------------
    def intern(self, user_id: str) -> int:
        i = self.user_index.get(user_id)
        if i is None:
            i = len(self.user_ids)
            self.user_ids.append(user_id)
            self.user_index[user_id] = i
            n = i + 1
            self.last_any = _grow(self.last_any, n, -math.inf)
            self.n_messages = _grow(self.n_messages, n)
            self.profiles = _grow(self.profiles, n)
            self.global_activity = _grow(self.global_activity, n)
            self.global_updated = _grow(self.global_updated, n)
        return i

    def known(self, user_id: str | None) -> int | None:
        return None if user_id is None else self.user_index.get(user_id)

    # -- updates -----------------------------------------------------------------------------
    def observe(self, message: Message) -> None:
        """Take one message (messages must come in time order)."""
        at, user = message.at, message.user
        self.now = max(self.now, at)
        conv = self.conversations.get(message.conversation_id)
        if conv is None:
            conv = ConversationState(channel=message.channel)
            self.conversations[message.conversation_id] = conv
        previous = conv.authors[-1] if conv.authors else None
        is_reply = previous is not None and previous != user
        if is_reply:
            key = (user, previous)
            self.pairs[key] = self.pairs.get(key, 0) + 1
            partners = self.partners.setdefault(previous, {})
            count = partners[user] = partners.get(user, 0) + 1
            top = [entry for entry in self._partner_top.get(previous, []) if entry[1] != user]
            top.append((-count, user))
            top.sort()
            self._partner_top[previous] = top[:PARTNERS]
        # the conversation
        conv.authors.append(user)
        conv.ats.append(at)
        conv.vectors.append(message.vector)
        conv.mentions.append(message.mentions)
        conv.count_by_user[user] = conv.count_by_user.get(user, 0) + 1
        conv.last_index_by_user[user] = conv.n_messages
        if message.mentions:
            conv.mentioned_by_user.setdefault(user, set()).update(message.mentions)
            for mentioned in message.mentions:
                conv.last_mention_index[mentioned] = conv.n_messages
        conv.n_messages += 1
        conv.last_at = at
        conv.last_chars = message.text_chars
        conv.last_question = message.has_question
        # the channel
        channel = self.channels.get(message.channel)
        if channel is None:
            channel = self.channels[message.channel] = ChannelState()
        channel.observe(user, at, is_reply)
        # the person
        self.last_any[user] = at
        self.n_messages[user] += 1
        self.profiles[user] += message.vector
        rate = math.log(2) / HALF_LIVES[-1]
        self.global_activity[user] = self.global_activity[user] * math.exp(-rate * max(0.0, at - self.global_updated[user])) + 1
        self.global_updated[user] = at
        self._global_refresh += 1
        if self._global_refresh >= 500 or len(self.global_pool) == 0:
            self._refresh_global(at)
        if channel.due(at):
            channel.refresh(at)
            channel.similarity_pool = self._normalised_pool(self._pool_people(channel))
        if at - self._last_sweep > 86400.0:
            self._sweep(at)

    def _sweep(self, at: float) -> None:
        """Forget conversations idle for longer than the ttl (bounded memory on long histories)."""
        stale = [cid for cid, conv in self.conversations.items() if at - conv.last_at > self.conversation_ttl]
        for cid in stale:
            del self.conversations[cid]
        self._last_sweep = at

    # -- reading -----------------------------------------------------------------------------
    def top_partners(self, user: int) -> list[int]:
        """The people who most often answered ``user`` (at most PARTNERS; ties: lowest index first)."""
        return [u for _, u in self._partner_top.get(user, ())]

    def similarity_pool(self, channel: ChannelState | None, at: float) -> tuple[np.ndarray, np.ndarray]:
        """The pool (people, L2-normalised text profiles) a conversation's text is compared with: the
        channel's as of its last refresh, or (no such channel) the workspace's most active."""
        if channel is not None and channel.similarity_pool is not None:
            return channel.similarity_pool
        if self._global_similarity is None:
            self._global_similarity = self._normalised_pool(self.global_pool)
        return self._global_similarity

    def _normalised_pool(self, people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        profiles = self.profiles[people]
        norms = np.linalg.norm(profiles, axis=1, keepdims=True)
        return people, np.divide(profiles, norms, out=np.zeros_like(profiles), where=norms > 0)

    def _refresh_global(self, at: float) -> None:
        n = len(self.user_ids)
        rate = math.log(2) / HALF_LIVES[-1]
        month = self.global_activity[:n] * np.exp(-rate * np.maximum(0.0, at - self.global_updated[:n]))
        k = min(GLOBAL_POOL, n)
        part = np.argpartition(-month, k - 1)[:k] if k < n else np.arange(n)
        self.global_pool = part[np.lexsort((part, -month[part]))].astype(np.int64)
        self._global_similarity = None
        self._global_refresh = 0

    def _pool_people(self, channel: ChannelState) -> np.ndarray:
        """The channel's most active people, then the workspace's most active."""
        if len(channel.pool) == 0:
            return self.global_pool
        return np.unique(np.concatenate([channel.pool, self.global_pool]))
