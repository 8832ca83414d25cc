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

Which messages count, their cleaned text and mentions are the dataset's own SQL
(macros/message_rules.sql, clean_slack_text.sql), run live by :class:`beep.rules.messages.MessageRules`.
The vars come only from dbt_project.yml and the build's overrides (:mod:`beep.rules.project_vars`);
tests/python/test_rules_parity.py replays exports through this tracker and compares it with
``int_conversations`` and ``training_examples`` row for row (docs/rules.md).

Live, the past is never rewritten: where the dataset, rebuilt later, would move a thread's parent
out of its channel run (and so change the links of later channel messages), the live state keeps
the links it made. Everything here is plain data that :class:`ConversationTracker` rebuilds exactly
by replaying the stored messages in order (a restart loses nothing).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beep.rules.blocks import event_text
from beep.rules.dbt_macros import MacroRenderer
from beep.rules.messages import CheckedMessage, MessageRules
from beep.rules.project_vars import ProjectVars, load_project_vars
from beep.rules.prompts import PromptSettings


@dataclass(frozen=True)
class SplitSettings:
    """The dbt vars that shape conversations (no defaults here: dbt_project.yml's, see from_project)."""

    conversation_split: str
    conversation_gap_minutes: float
    conversation_quiet_messages: int
    #: messages of a conversation kept (int_conversations reads prior participants this far back)
    kept_messages: int

    @classmethod
    def from_vars(cls, variables: ProjectVars, project_dir: Path) -> SplitSettings:
        kept = MacroRenderer(project_dir, variables.values).call("prior_participant_messages")
        return cls(
            conversation_split=variables.conversation_split,
            conversation_gap_minutes=variables.conversation_gap_minutes,
            conversation_quiet_messages=variables.conversation_quiet_messages,
            kept_messages=int(kept),
        )

    @classmethod
    def from_project(cls, project_dir: Path, overrides: Mapping[str, object] | None = None) -> SplitSettings:
        """The project's vars (dbt_project.yml), with ``overrides`` (the vars the dataset was built with) on top."""
        return cls.from_vars(load_project_vars(project_dir, overrides), project_dir)

    @property
    def gap_seconds(self) -> float:
        return self.conversation_gap_minutes * 60.0


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
    """A conversation's recent messages (at most ``kept`` of them), oldest first."""

    conversation_id: str
    channel_id: str
    kept: int
    messages: deque = field(init=False)
    participants: set = field(default_factory=set)  # everyone who wrote in it (not only the kept messages)

    def __post_init__(self) -> None:
        self.messages = deque(maxlen=self.kept)

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
                conv = self.conversations[cid] = Conversation(cid, message.channel_id, self.settings.kept_messages)
                parent = self._channel_message.get((message.channel_id, str(message.thread_ts)))
                if parent is not None:  # the parent leaves its channel conversation for the thread
                    conv.add(parent[1])
        else:
            cid = self._channel_conversation(message)
            conv = self.conversations.get(cid)
            if conv is None:
                conv = self.conversations[cid] = Conversation(cid, message.channel_id, self.settings.kept_messages)
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


def model_row(conv: Conversation, prompts: PromptSettings, channel_name: str | None = None) -> dict[str, Any]:
    """What the model is asked about ``conv`` as of its last message, as a `beep predict` row: the
    prompt of its last ``context_messages`` messages (as training_examples builds the prompt of the
    reply that follows), the participants (most recent first, as prior_participant_ids), the users
    the prompt's messages mention (most recent first) and the kept messages."""
    messages = list(conv.messages)
    context = messages[-prompts.context_messages:]
    participants: list[str] = []
    for m in reversed(messages):
        if m.user_id not in participants:
            participants.append(m.user_id)
    mentioned: list[str] = []
    for m in reversed(context):
        for uid in m.mentioned_user_ids:
            if uid not in mentioned:
                mentioned.append(uid)
    return {
        "prompt": prompts.prompt([m.clean_text for m in context]),
        "channel_id": conv.channel_id,
        "channel_name": channel_name,
        "prior_participant_ids": participants,
        "mentioned_user_ids": mentioned,
        "messages": [(m.user_id, m.clean_text, m.mentioned_user_ids, m.at) for m in messages],
    }


def check_event(rules: MessageRules, event: Mapping[str, Any], bot_user_ids: set[str] | frozenset[str],
                user_names: Mapping[str, str | None]) -> CheckedMessage:
    """A Slack message event through the dataset's rules: an author among ``bot_user_ids`` (users.info
    says is_bot, or Beep's own bot user) is a bot, as users.json's is_bot is to the dataset."""
    user = event.get("user")
    return rules.check(ts=event.get("ts"), subtype=event.get("subtype"), user_id=user, bot_id=event.get("bot_id"),
                       is_bot=bool(user and user in bot_user_ids), text=event_text(event), user_names=user_names)


def place_event(tracker: ConversationTracker, event: Mapping[str, Any],
                checked: CheckedMessage) -> tuple[str | None, LiveMessage | None, Conversation | None]:
    """The Slack app's next step after :func:`check_event`: (why skipped, None, None), or (None, the
    message, its conversation) once the tracker placed it. A message seen before (Slack redelivered
    it) is skipped as ``seen_before``."""
    channel = event.get("channel")
    if checked.exclusion_reason is not None:
        return checked.exclusion_reason, None, None
    if not channel:
        return "no_channel", None, None
    ts = str(event["ts"])
    if tracker.conversation_of(str(channel), ts) is not None:
        return "seen_before", None, None
    message = LiveMessage(channel_id=str(channel), ts=ts, thread_ts=event.get("thread_ts"), user_id=str(event["user"]),
                          clean_text=str(checked.clean_text), mentioned_user_ids=checked.mentioned_user_ids,
                          at=float(ts))
    return None, message, tracker.add(message)
