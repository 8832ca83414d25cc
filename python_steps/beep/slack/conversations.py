"""Live conversations: each incoming Slack message placed in a conversation by the dataset's rules.

The rules are those of ``models/intermediate/int_conversation_links.sql`` (keep the two in step):

- a message in a thread (``thread_ts`` set and not its own ``ts``) belongs to the conversation
  ``<channel>:thread:<thread_ts>``; the thread's parent joins it when the first reply arrives;
- outside threads, ``conversation_split`` decides:
  - ``reply``: a message links to the earlier message it most likely answers, looked for within
    ``conversation_gap_minutes``: the latest message of someone it @-mentions; else the latest of a
    message by someone else that addressed its author and its author's own previous message; else,
    in a quiet channel (at most ``conversation_quiet_messages`` messages in that time), the previous
    message. It joins that message's conversation, or starts ``<channel>:reply:<ts>``;
  - ``gap``: a new conversation ``<channel>:run:<ts>`` after a gap over ``conversation_gap_minutes``.

Which messages count is the dataset's rule too (``int_slack__messages_cleaned``): bots, edits, joins,
channel events and other subtypes are left out; text is cleaned by :mod:`beep.evaluate.clean`.

Live, the past is never rewritten: where the dataset, rebuilt later, would move a thread's parent
out of its channel run (and so change the links of later channel messages), the live state keeps
the links it made. Everything here is plain data that :class:`ConversationTracker` rebuilds exactly
by replaying the stored messages in order (a restart loses nothing).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from beep.evaluate.clean import project_vars

#: Subtypes whose messages are content (the dataset's ``content_subtypes``); every other subtype is not.
CONTENT_SUBTYPES = frozenset({"thread_broadcast", "file_share", "me_message"})
#: How many messages of a conversation are kept (the ranker reads at most 50, a prompt ``context_messages``).
KEPT_MESSAGES = 50
_RAW_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


@dataclass(frozen=True)
class SplitSettings:
    """The dbt vars that shape conversations and prompts."""

    conversation_split: str = "reply"
    conversation_gap_minutes: float = 10.0
    conversation_quiet_messages: int = 15
    context_messages: int = 5

    @classmethod
    def from_project(cls, project_dir: Path, overrides: dict[str, object] | None = None) -> "SplitSettings":
        variables = project_vars(project_dir, overrides)
        split = str(variables.get("conversation_split", cls.conversation_split))
        if split not in ("reply", "gap"):
            raise ValueError(f"conversation_split is {split!r}: Beep knows 'reply' and 'gap' (dbt_project.yml vars)")
        return cls(
            conversation_split=split,
            conversation_gap_minutes=float(variables.get("conversation_gap_minutes", cls.conversation_gap_minutes)),
            conversation_quiet_messages=int(variables.get("conversation_quiet_messages", cls.conversation_quiet_messages)),
            context_messages=int(variables.get("context_messages", cls.context_messages)),
        )

    @property
    def gap_seconds(self) -> float:
        return self.conversation_gap_minutes * 60.0


def exclusion_reason(event: dict, bot_user_ids: frozenset[str] | set[str] = frozenset()) -> str | None:
    """Why a Slack message event is not a usable message (the dataset's reasons), or None."""
    subtype = event.get("subtype")
    if not event.get("ts"):
        return "missing_ts"
    if subtype in ("message_changed", "message_deleted", "message_replied"):
        return "edit_event"
    if subtype in ("channel_join", "channel_leave", "group_join", "group_leave"):
        return "join_leave"
    if subtype == "tombstone":
        return "tombstone"
    user = event.get("user")
    if subtype == "bot_message" or (user is None and event.get("bot_id")) or (user and user in bot_user_ids):
        return "bot"
    if not user:
        return "no_user"
    if subtype is not None and subtype not in CONTENT_SUBTYPES:
        return "other_subtype" if not str(subtype).startswith(("channel_", "group_")) else "channel_event"
    if not (event.get("text") or "").strip():
        return "empty_text"
    return None


def mentioned_ids(raw_text: str, author: str | None = None) -> tuple[str, ...]:
    """The users a raw Slack text @-mentions (``<@U123>``), in order, each once."""
    out: list[str] = []
    for uid in _RAW_MENTION.findall(raw_text or ""):
        if uid not in out:
            out.append(uid)
    return tuple(out)


@dataclass(frozen=True)
class LiveMessage:
    """One usable message, cleaned, as stored and as the tracker places it."""

    channel_id: str
    ts: str
    thread_ts: str | None
    user_id: str
    clean_text: str
    mentioned_user_ids: tuple[str, ...]
    at: float  # epoch seconds (the ts)

    @property
    def in_thread(self) -> bool:
        return bool(self.thread_ts) and self.thread_ts != self.ts


@dataclass
class Conversation:
    """A conversation's recent messages, oldest first."""

    conversation_id: str
    channel_id: str
    messages: deque = field(default_factory=lambda: deque(maxlen=KEPT_MESSAGES))
    participants: set = field(default_factory=set)  # everyone who wrote in it (not only the kept messages)

    def add(self, message: LiveMessage) -> None:
        self.messages.append(message)
        self.participants.add(message.user_id)

    @property
    def last(self) -> LiveMessage:
        return self.messages[-1]


@dataclass
class _ChannelMessage:
    seq: int
    ts: str
    at: float
    user: str
    mentions: tuple[str, ...]
    conversation_id: str


class ConversationTracker:
    """Places messages (in time order per channel) in conversations; see the module docstring."""

    def __init__(self, settings: SplitSettings) -> None:
        self.settings = settings
        self.conversations: dict[str, Conversation] = {}
        self._recent: dict[str, deque[_ChannelMessage]] = {}  # channel -> its channel messages within the gap
        self._seq: dict[str, int] = {}
        self._channel_message: dict[tuple[str, str], tuple[str, LiveMessage]] = {}  # (channel, ts) -> (conv id, msg)
        self._placed: dict[tuple[str, str], str] = {}  # (channel, ts) -> conversation id

    def conversation_of(self, channel_id: str, ts: str) -> str | None:
        return self._placed.get((channel_id, ts))

    def add(self, message: LiveMessage) -> Conversation:
        """Place ``message``; return its conversation (with the message as its last)."""
        key = (message.channel_id, message.ts)
        if key in self._placed:  # a message seen before (a redelivered event): already placed
            return self.conversations[self._placed[key]]
        if message.in_thread:
            cid = f"{message.channel_id}:thread:{message.thread_ts}"
            conv = self.conversations.get(cid)
            if conv is None:
                conv = self.conversations[cid] = Conversation(cid, message.channel_id)
                parent = self._channel_message.get((message.channel_id, str(message.thread_ts)))
                if parent is not None:  # the parent leaves its channel conversation for the thread
                    conv.add(parent[1])
        else:
            cid = self._channel_conversation(message)
            conv = self.conversations.get(cid)
            if conv is None:
                conv = self.conversations[cid] = Conversation(cid, message.channel_id)
            self._channel_message[key] = (cid, message)
            if len(self._channel_message) > 50_000:  # bounded: forget the oldest channel messages
                for old in list(self._channel_message)[:10_000]:
                    del self._channel_message[old]
        conv.add(message)
        self._placed[key] = cid
        if len(self._placed) > 200_000:
            for old in list(self._placed)[:50_000]:
                del self._placed[old]
        return conv

    def _channel_conversation(self, message: LiveMessage) -> str:
        s = self.settings
        recent = self._recent.setdefault(message.channel_id, deque())
        while recent and recent[0].at < message.at - s.gap_seconds:
            recent.popleft()
        seq = self._seq.get(message.channel_id, 0) + 1
        self._seq[message.channel_id] = seq
        if s.conversation_split == "gap":
            previous = recent[-1] if recent else None
            cid = previous.conversation_id if previous is not None else f"{message.channel_id}:run:{message.ts}"
        else:
            parent = self._reply_parent(message, recent)
            cid = parent.conversation_id if parent is not None else f"{message.channel_id}:reply:{message.ts}"
        recent.append(_ChannelMessage(seq, message.ts, message.at, message.user_id, message.mentioned_user_ids, cid))
        if s.conversation_split == "gap" and len(recent) > 1:
            # only the previous message matters to the gap split
            while len(recent) > 1:
                recent.popleft()
        return cid

    def _reply_parent(self, message: LiveMessage, recent: deque[_ChannelMessage]) -> _ChannelMessage | None:
        """The earlier channel message ``message`` answers (all of ``recent`` is within the gap)."""
        author = message.user_id
        others = {u for u in message.mentioned_user_ids if u != author}
        mention = next((m for m in reversed(recent) if m.user in others), None) if others else None
        if mention is not None:
            return mention
        # the latest message addressing the author (kept only when by someone else) and the author's own previous
        addressing = next((m for m in reversed(recent) if author in m.mentions), None)
        addressed = addressing if addressing is not None and addressing.user != author else None
        own = next((m for m in reversed(recent) if m.user == author), None)
        found = [m for m in (addressed, own) if m is not None]
        if found:
            return max(found, key=lambda m: m.seq)
        if recent and len(recent) <= self.settings.conversation_quiet_messages:
            return recent[-1]
        return None
