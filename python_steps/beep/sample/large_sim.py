"""The `large` profile's channels: a company workspace's conversations (simulator.py runs them).

The timeline, the episodes, threads, message objects and the streaming of day files (with their
truth.csv rows) are the shared ChannelSimulator's; this module decides who writes and when.

Who answers (the structure a responder model can learn): the next author is drawn from a mixture —
people already in the conversation (the starter most), anyone @-mentioned (strongly), experts of the
topic (the team owning the component named in the text, then people of the field), people who wrote
in the channel recently, and the channel's members by how active they are here. The last author
rarely writes twice in a row. Roughly a third of replies come from people new to the conversation;
those who join unasked (experts, recent authors, bystanders) do so when they are around: each person
has an hour-of-week presence profile in their own time zone (working hours, some evenings, rarely
weekends), and a newcomer is drawn only while present.

What Slack shows besides words: reactions come from the conversation (people react to the message
they answer, the asker thanks an answer with :pray:, an @-mentioned person acknowledges with :eyes:,
present experts of the topic react without writing, company-wide news collects dozens of :tada:,
deploys and alerts get theirs), with a skin tone per person where the emoji has one, and `users`
truncated past 50 names while `count` keeps everyone; in channel runs, a reply often @-mentions the
person it answers.
Busy channels interleave conversations; quiet channels are bursty (a few busy days, then silence),
which keeps day files at tens of messages on average, as in real exports.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from beep.sample import vocabulary as V
from beep.sample.large_workspace import TIMEZONES, LargeWorkspace, LChannel, Topic
from beep.sample.profiles import LARGE, Profile
from beep.sample.simulator import (
    DAY_US,
    MAX_THREAD_SPAN_US,
    MINUTE_US,
    US,
    ChannelSimulator,
    Item,
    Membership,
    ts_text,
)

#: Total weight of each kind of newcomer in the next-author mixture (participants weigh 2.6 to 3.6 each).
W_EXPERT = 0.6
W_RECENT = 0.25
W_BYSTANDER = 0.2
W_MENTIONED = 7.0
RECENT_AUTHORS = 30

#: Slack lists at most this many users of one reaction in an export here; `count` keeps everyone.
LISTED_REACTORS_MAX = 50
QUESTION_EMOJI = ("eyes", "+1", "eyes", "thinking_face", "raised_hands")
ANSWER_EMOJI = ("+1", "white_check_mark", "pray", "100", "raised_hands", "+1", "heart")
THANKS_EMOJI = ("pray", "+1", "heart", "white_check_mark", "raised_hands")
FUN_EMOJI = ("joy", "laughing", "heart", "+1", "sweat_smile")
CELEBRATE_EMOJI = ("tada", "heart", "raised_hands", "clap", "partying_face", "wave")
DEPLOY_OK_EMOJI = ("tada", "rocket", "white_check_mark")
ALERT_EMOJI = ("eyes", "eyes", "rotating_light", "fire", "male-detective")
#: Emoji that take a skin tone (`+1::skin-tone-3`).
SKIN_TONED = frozenset(("+1", "raised_hands", "pray", "clap", "wave"))
#: Mean messages on a day a channel is active (times the channel's own `day_density`); with threads that
#: spill into the next day this gives tens of messages per day file.
MESSAGES_PER_ACTIVE_DAY = 60.0

GITHUB_ACTIONS = ("opened", "merged", "requested your review on", "closed", "commented on")
JIRA_STATES = ("To Do", "In Progress", "In Review", "Done", "Blocked")
STANDUP_PROMPTS = ("Good morning! What did you do yesterday, what's next, any blockers?",
                   "Reminder: retro notes due today :memo:", "Weekly check-in: how was your week? :thinking_face:")


class _Cum:
    """Members with weights, drawn in O(log n) by bisecting the cumulative weights."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, items: list[str], weights: list[float]) -> None:
        self.items = items
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1] if self.cum else 0.0

    def draw(self, rng: random.Random) -> str:
        return self.items[min(bisect.bisect_right(self.cum, rng.random() * self.total), len(self.items) - 1)]


@dataclass
class _Conversation:
    """A conversation being drawn: message k is `items[k]` (its ts `ts[k]`), by `authors[k]` ("" for a bot's
    post), mentioning `mentions[k]`, answering `reply_to[k]` (for truth.csv)."""

    id: str
    topic: Topic
    as_thread: bool
    items: list[Item] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    mentions: list[set[str]] = field(default_factory=list)
    ts: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)


class LargeChannelSimulator(ChannelSimulator):
    """Generates and writes one channel of the large workspace (day files + ground-truth rows)."""

    default_profile = LARGE

    def __init__(self, ws: LargeWorkspace, index: int, seed: int, budget: int, out_dir: Path,
                 truth_dir: Path | None = None, progress: Callable[[int], None] | None = None,
                 profile: Profile | None = None) -> None:
        super().__init__(ws, index, seed, budget, out_dir, truth_dir, progress, profile)
        ch = ws.channels[index]
        self.ws: LargeWorkspace = ws
        self.ch: LChannel = ch
        self.presence: dict[str, tuple[float, ...]] = {}
        self.tone: dict[str, str] = {}
        self.n_conversations = 0
        self.join_us = {u: self.start_us + d * DAY_US for u, d in zip(ch.members, ch.join_day)}
        self.leave_us = {u: self.start_us + d * DAY_US for u, d in zip(ch.members, ch.leave_day)}
        self.members = _Cum(list(ch.members), list(ch.member_weights))
        self.member_set = set(ch.members)
        self.profiles = {u: self._user_profile(u) for u in ch.members}
        self.field_of = {u: ws.person(u).field for u in ch.members}
        self.team_of = {u: ws.person(u).team for u in ch.members}
        self.second_of = {u: ws.person(u).second_field for u in ch.members}
        self.topic_keys: list[Topic] = [t for t, _ in ch.topics]
        self.topic_weights: list[float] = [w for _, w in ch.topics]
        self.experts: dict[Topic, _Cum | None] = {}
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.bot_rate = ch.bot_rate
        self.interleave = ch.interleave

    # ------------------------------------------------------------------ timeline

    def _end_of_day(self, day: int, membership: list[Membership]) -> None:
        """The rest of the day's joins and leaves, then write every day up to this one: each conversation is
        generated whole when it starts, so nothing later can land on a day that has begun; only the replies
        that spill into the next days stay in memory."""
        next_day = self.start_us + (day + 1) * DAY_US
        while membership and membership[0][0] < next_day and self.remaining > 0:
            self._membership(*membership.pop(0))
        self._flush(before_day=day + 1)

    def _plan_days(self) -> list[float]:
        """Each day's share of the channel's traffic. A channel is active on about budget / (messages per
        active day) days between its creation and its archiving, picked with weekdays, slow growth and the
        channel's own seasons favoured; the rest stay silent (no day file), as in real exports where most
        channels are quiet most days."""
        rng, ws = self.rng, self.ws
        days = ws.days
        first_day, end_day = max(self.ch.created_day, 0), min(self.ch.archived_day, days)
        avail = list(range(first_day, end_day)) or [min(first_day, days - 1)]
        per_day = MESSAGES_PER_ACTIVE_DAY * self.ch.day_density
        n_active = max(1, min(len(avail), round(self.remaining / per_day)))
        busy = n_active >= len(avail)  # active every day: steadier than a channel that flares up now and then
        period = rng.uniform(40, 200)
        phase = rng.uniform(0, 6.283)
        base = {}
        for d in avail:
            season = 1.0 + (0.35 if busy else 0.7) * math.sin(6.283 * d / period + phase)
            base[d] = self._weekday_weight(d) * season
        if busy:
            active = avail
        else:
            keyed = sorted(((rng.random() ** (1.0 / base[d]), d) for d in avail), reverse=True)
            active = sorted(d for _, d in keyed[:n_active])
        weights = [0.0] * days
        for d in active:
            weights[d] = base[d] * (rng.gammavariate(4.0, 0.25) if busy else rng.gammavariate(2.0, 0.5))
        return weights

    def _membership_events(self, day_weights: list[float]) -> list[Membership]:
        """Joins during the timeline (new hires, people who join later, a new channel's founders), a few leaves.

        Outside the company-wide channels people join (and leave) a channel on a day it is active: the
        day they first take part, rather than a day of their own that would be the channel's only file."""
        rng = self.rng
        ch, ws = self.ch, self.ws
        active_days = [d for d, w in enumerate(day_weights) if w > 0]
        events: list[Membership] = []
        snap = ch.kind != "company" and ch.name != "random"

        def on_active_day(day: int) -> int:
            if not snap or day <= max(ch.created_day, 0):
                return day
            k = bisect.bisect_left(active_days, day)
            return active_days[k] if k < len(active_days) else day

        for uid, join, leave in zip(ch.members, ch.join_day, ch.leave_day):
            join = on_active_day(join) if join >= 0 else join
            leave = on_active_day(leave) if leave < ws.days else leave
            if 0 <= join < ws.days:
                at = self.start_us + join * DAY_US + self._time_of_day()
                events.append((at, "channel_join", uid))
                self.join_us[uid] = at
            if leave < ws.days and leave < ws.person(uid).end_day:
                at = self.start_us + leave * DAY_US + self._time_of_day()
                if at > self.join_us[uid]:
                    events.append((at, "channel_leave", uid))
                    self.leave_us[uid] = at
        for bot in ch.bots:
            if ch.created_day >= 0:
                events.append((ch.created * US + rng.randint(20, 900) * US, "channel_join", bot))
        events.sort()
        return events

    # ------------------------------------------------------------------ who can write
    def _can_write(self, uid: str, t: int) -> bool:
        return self.join_us.get(uid, 0) <= t < self.leave_us.get(uid, 0)

    def _draw_member(self, t: int, exclude: str | None = None) -> str | None:
        for _ in range(12):
            u = self.members.draw(self.rng)
            if u != exclude and self._can_write(u, t):
                return u
        for u in self.ch.members:  # a nearly deserted channel: anyone still here
            if u != exclude and self._can_write(u, t):
                return u
        for u in self.ch.members:  # nobody is: the budget must still be met, so anyone still at the company
            if u != exclude and not (self.ws.person(u).deleted and t >= self.start_us + self.ws.person(u).end_day * DAY_US):
                return u
        for u in self.ch.members:
            if u != exclude:
                return u
        return None

    def _experts(self, topic: Topic) -> _Cum | None:
        """Members who know `topic`: the owning team most, then people of the field."""
        if topic in self.experts:
            return self.experts[topic]
        fld, team = topic
        items, weights = [], []
        if fld != "smalltalk":
            for u in self.ch.members:
                w = 0.0
                if team >= 0 and self.team_of[u] == team:
                    w = 3.0
                elif self.field_of[u] == fld or self.second_of[u] == fld:
                    w = 1.0 if team < 0 else 0.35
                if w:
                    items.append(u)
                    weights.append(w * (self.weight_of[u] ** 0.8))
        cum = _Cum(items, weights) if items else None
        self.experts[topic] = cum
        return cum

    def _is_expert(self, uid: str, topic: Topic) -> bool:
        fld, team = topic
        return (team >= 0 and self.team_of.get(uid) == team) or self.field_of.get(uid) == fld

    def _next_author(self, t: int, topic: Topic, authors: list[str], mentioned: set[str]) -> str | None:
        rng = self.rng
        last = authors[-1] if authors else None
        starter = authors[0] if authors else None
        cands: dict[str, float] = {}
        for u in authors:
            if u not in cands:
                cands[u] = 2.6 + (1.0 if u == starter else 0.0) + (0.8 if self._is_expert(u, topic) else 0.0)
        for u in mentioned:
            cands[u] = cands.get(u, 0.0) + W_MENTIONED
        if last in cands:
            cands[last] *= 0.15
        cands = {u: w for u, w in cands.items() if u in self.member_set and self._can_write(u, t)}
        experts = self._experts(topic)
        p_total = sum(cands.values())
        e_total = W_EXPERT if experts is not None else 0.0
        r_total = W_RECENT if self.recent else 0.0
        r = rng.random() * (p_total + e_total + r_total + W_BYSTANDER)
        if r < p_total:
            return rng.choices(list(cands), list(cands.values()))[0]
        r -= p_total
        # a newcomer joins unasked: only someone who is around now (their hour-of-week presence)
        if r < e_total and experts is not None:
            for _ in range(self.profile.presence_tries):
                u = experts.draw(rng)
                if u != last and self._can_write(u, t) and rng.random() < self._presence(u, t):
                    return u
        elif r < e_total + r_total:
            recent = list(self.recent)
            for _ in range(self.profile.presence_tries):
                # the most recent authors likeliest
                u = recent[-1 - min(int(rng.expovariate(1 / 8.0)), len(recent) - 1)]
                if u != last and self._can_write(u, t) and rng.random() < self._presence(u, t):
                    return u
        return self._draw_present_member(t, exclude=last)

    def _draw_present_member(self, t: int, exclude: str | None = None) -> str | None:
        """A member by activity who is around at `t` (any member when nobody is found in a few tries)."""
        for _ in range(self.profile.presence_tries):
            u = self.members.draw(self.rng)
            if u != exclude and self._can_write(u, t) and self.rng.random() < self._presence(u, t):
                return u
        return self._draw_member(t, exclude=exclude)

    def _presence(self, uid: str, t: int) -> float:
        """How likely `uid` is around at `t` (microseconds): their hour-of-week profile in their own time zone.

        Each person has working hours (a start between 7 and 10, eight to ten hours long), evenings that
        are quiet (or busy, for a night owl), nights that are nearly silent and weekends that are quiet
        (busier for a few). The profile comes from the person alone, so it is the same in every channel."""
        profile = self.presence.get(uid)
        if profile is None:
            profile = self.presence[uid] = self._presence_profile(uid)
        offset = TIMEZONES[self.ws.person(uid).tz][2]
        hour = (t // US + offset) // 3600
        weekday = (hour // 24 + 3) % 7  # 1970-01-01 was a Thursday
        return profile[weekday * 24 + hour % 24]

    def _presence_profile(self, uid: str) -> tuple[float, ...]:
        r = random.Random(f"beep-large:{self.seed}:presence:{uid}")
        start = r.uniform(7.0, 10.0)
        end = start + r.uniform(8.0, 10.0)
        evening = 0.55 if r.random() < 0.12 else 0.12
        weekend = 0.45 if r.random() < 0.1 else 0.06
        out = []
        for weekday in range(7):
            for hour in range(24):
                h = hour + 0.5
                if start <= h <= end:
                    p = 1.0
                elif start - 1.0 <= h <= end + 1.0:
                    p = 0.5
                elif end < h or h < 1.0:
                    p = evening
                else:
                    p = 0.03
                if weekday >= 5:
                    p = weekend if p >= 0.5 else min(p, weekend)
                out.append(p)
        return tuple(out)

    def _spoke(self, uid: str) -> None:
        recent = self.recent
        if uid in recent:
            recent.move_to_end(uid)
        else:
            recent[uid] = None
            if len(recent) > RECENT_AUTHORS:
                recent.popitem(last=False)

    # ------------------------------------------------------------------ episodes
    def _conversation(self, at: int, topic: Topic | None = None, parent: Item | None = None) -> tuple[int, int]:
        """A conversation about `topic` (drawn when None) starting at `at`, or the replies to a bot's post
        `parent`: open it, draw its replies, cut it to the budget, add reactions and truth rows, publish it."""
        rng = self.rng
        if topic is None:
            topic = rng.choices(self.topic_keys, self.topic_weights)[0]
        as_thread, replies_wanted = self._conversation_shape(topic[0] == "smalltalk", parent)
        self.n_conversations += 1
        conv = _Conversation(f"{self.ch.name}#{self.n_conversations}", topic, as_thread)
        if parent is None:
            starter = self._draw_member(at)
            if starter is None:
                return self._me_message(at) if self.ch.members else (0, at)
            root_us = self._open(conv, starter, at)
        else:
            root_us = parent[0]
            conv.authors.append("")  # the bot: not a person who can answer
            conv.mentions.append(set())
        conv.ts.append(ts_text(root_us))
        free_at = root_us + (MINUTE_US if as_thread else 0)
        self._draw_replies(conv, at, root_us + MAX_THREAD_SPAN_US, replies_wanted)
        items = self._within_budget(conv.items, parent)
        self._react(items, 0 if parent is None else 1, conv.authors, conv.mentions, conv.ts, conv.reply_to, topic)
        if parent is not None:
            self.truth[root_us] = (conv.id, "")
        for (us, _), answers in zip(items, conv.reply_to):
            self.truth[us] = (conv.id, answers)
        return self._publish(items, parent, as_thread, free_at)

    def _open(self, conv: _Conversation, starter: str, at: int) -> int:
        """The starter's opening message; its time."""
        text, mentioned = self._opener(starter, conv.topic, at)
        self._spoke(starter)
        root_us = self._take_ts(at)
        conv.items.append((root_us, self._user_message(starter, text, root_us)))
        conv.authors.append(starter)
        conv.mentions.append(mentioned)
        conv.reply_to.append("")
        return root_us

    def _draw_replies(self, conv: _Conversation, t: int, span_end: int, replies_wanted: int) -> None:
        """Up to `replies_wanted` replies, each by the next author drawn from the mixture, answering an earlier one."""
        rng = self.rng
        for _ in range(replies_wanted):
            t = self._next_reply_time(t, conv.as_thread)
            if conv.as_thread and t > span_end:
                break
            people = [a for a in conv.authors if a]
            author = self._next_author(t, conv.topic, people, conv.mentions[-1])
            if author is None:
                break
            us = self._take_ts(t)
            answers = self._pick_reply_to(author, conv.authors, conv.mentions, conv.ts)
            if rng.random() < self.profile.file_share_rate:
                msg = self._file_share(author, us)
                mentioned: set[str] = set()
            else:
                text, mentioned = self._reply(author, conv.topic, people, self._addressee(conv, author, answers))
                msg = self._user_message(author, text, us)
            conv.reply_to.append(answers)
            conv.items.append((us, msg))
            conv.authors.append(author)
            conv.mentions.append(mentioned)
            conv.ts.append(msg["ts"])
            self._spoke(author)

    def _addressee(self, conv: _Conversation, author: str, answers: str) -> str:
        """In a channel run (no thread to say who is answered), often @-mention whom this reply answers."""
        address = conv.authors[conv.ts.index(answers)] if answers in conv.ts else ""
        if conv.as_thread or not address or address == author or self.rng.random() >= self.profile.address_rate:
            return ""
        return address

    def _pick_reply_to(self, author: str, authors: list[str], mentions: list[set[str]], conv_ts: list[str]) -> str:
        """Which earlier message of the conversation this one answers (for truth.csv)."""
        rng = self.rng
        for k in range(len(authors) - 1, -1, -1):
            if author in mentions[k] and rng.random() < 0.85:
                return conv_ts[k]
        others = [k for k, a in enumerate(authors) if a != author]
        if not others:
            return conv_ts[-1]
        r = rng.random()
        if r < 0.65:
            return conv_ts[others[-1]]
        if r < 0.85:
            return conv_ts[0]
        return conv_ts[rng.choice(others)]

    # ------------------------------------------------------------------ text
    def _fill_topic(self, template: str, topic: Topic, p_component: float) -> str:
        rng = self.rng
        fld = V.FIELD_BY_KEY[topic[0]]
        thing = rng.choice(fld.things)
        if topic[1] >= 0 and rng.random() < p_component:
            thing = f"{self.ws.teams[topic[1]].name} {thing}"
        return template.format(t=thing, p=rng.choice(fld.problems), f=rng.choice(fld.fixes))

    def _opener(self, starter: str, topic: Topic, t: int) -> tuple[str, set[str]]:
        rng = self.rng
        mentioned: set[str] = set()
        if topic[0] == "smalltalk":
            text = rng.choice(V.SOCIAL) if rng.random() < 0.6 else rng.choice(V.SMALL_TALK)
            if "{u}" in text:
                target = self._draw_member(t, exclude=starter) or starter
                text = text.format(u=target)
                mentioned.add(target)
            return self._decorate(text, None, strong=False, opener=True), mentioned
        fld = V.FIELD_BY_KEY[topic[0]]
        text = self._fill_topic(rng.choice(V.OPENERS), topic, 0.8) if rng.random() < 0.9 else rng.choice(V.SMALL_TALK)
        if rng.random() < 0.3:
            experts = self._experts(topic)
            target = experts.draw(rng) if experts is not None and rng.random() < 0.8 else self.members.draw(rng)
            if target != starter:
                mentioned.add(target)
                text = self._with_mention(text, target)
        return self._decorate(text, fld, strong=True, opener=True), mentioned

    def _reply(self, author: str, topic: Topic, authors: list[str], address: str = "") -> tuple[str, set[str]]:
        rng = self.rng
        mentioned: set[str] = set()
        fld = V.FIELD_BY_KEY.get(topic[0])
        strong = fld is not None and rng.random() < (0.65 if self._is_expert(author, topic) else 0.4)
        text = self._fill_topic(rng.choice(V.ANSWERS), topic, 0.35) if strong else rng.choice(V.SMALL_TALK)
        if address:
            text = f"<@{address}> {text}"
            mentioned.add(address)
        if rng.random() < 0.08:
            experts = self._experts(topic)
            target = experts.draw(rng) if experts is not None and rng.random() < 0.6 else self.members.draw(rng)
            if target != author and target not in authors:
                mentioned.add(target)
                text = self._with_mention(text, target)
        return self._decorate(text, fld, strong=strong, opener=False), mentioned

    # ------------------------------------------------------------------ reactions
    def _react(self, items: list[Item], offset: int, authors: list[str], mentions: list[set[str]],
               conv_ts: list[str], reply_to: list[str], topic: Topic) -> None:
        """Reactions on a conversation's messages, from the conversation itself: `items[i]` is message
        `i + offset` of `authors`, `mentions` and `conv_ts` (offset 1 when a bot's post is the root);
        `reply_to[i]` is the ts message `i` answers."""
        rng = self.rng
        small = topic[0] == "smalltalk"
        starter = authors[0] if authors else ""
        answered_by: dict[str, list[str]] = {}
        for i in range(len(items)):
            if reply_to[i]:
                answered_by.setdefault(reply_to[i], []).append(authors[i + offset])
        for i, (us, msg) in enumerate(items):
            k = i + offset
            author = authors[k]
            reacts: dict[str, list[str]] = {}
            opener = k == 0
            palette = FUN_EMOJI if small else (QUESTION_EMOJI if opener else ANSWER_EMOJI)
            # whoever answers a message sometimes reacts to it too
            for u in answered_by.get(conv_ts[k], ()):
                if rng.random() < 0.12:
                    self._add_reaction(reacts, u, author, us, rng.choice(palette))
            # the asker thanks an answer
            if not small and not opener and starter and author != starter and rng.random() < 0.12:
                self._add_reaction(reacts, starter, author, us, rng.choice(THANKS_EMOJI))
            # someone @-mentioned acknowledges
            for u in sorted(mentions[k]):
                if rng.random() < 0.2:
                    self._add_reaction(reacts, u, author, us, rng.choice(("eyes", "+1", "eyes")))
            # experts of the topic who are around react without writing (interest without a word)
            experts = None if small else self._experts(topic)
            if experts is not None and rng.random() < (0.2 if opener else 0.05):
                self._experts_react(reacts, experts, authors, author, us, palette)
            # company-wide news and small talk (welcomes, birthdays, launches) collect many reactions
            if opener and small and self.ch.kind == "company" and rng.random() < 0.35:
                self._celebrate(reacts, author, us)
            self._set_reactions(msg, reacts)

    def _experts_react(self, reacts: dict[str, list[str]], experts: _Cum, authors: list[str], author: str, us: int,
                       palette: tuple[str, ...]) -> None:
        """A few experts of the topic who are present and not in the conversation react to a message."""
        rng = self.rng
        for _ in range(1 + int(rng.expovariate(1.2))):
            for _ in range(self.profile.presence_tries):
                u = experts.draw(rng)
                if u not in authors and rng.random() < self._presence(u, us):
                    self._add_reaction(reacts, u, author, us, rng.choice(palette))
                    break

    def _celebrate(self, reacts: dict[str, list[str]], author: str, us: int) -> None:
        """Lognormal-many reactions from anyone around: members drawn evenly (not by activity), kept while present."""
        rng = self.rng
        main, other = rng.sample(CELEBRATE_EMOJI, 2)
        wanted = min(int(rng.lognormvariate(3.0, 1.1)), len(self.ch.members) // 2)
        for _ in range(3 * wanted):
            u = rng.choice(self.ch.members)
            if rng.random() < self._presence(u, us):
                self._add_reaction(reacts, u, author, us, main if rng.random() < 0.85 else other)
                wanted -= 1
                if wanted <= 0:
                    break

    def _add_reaction(self, reacts: dict[str, list[str]], uid: str, author: str, us: int, emoji: str) -> None:
        if not uid or uid == author or uid not in self.member_set or not self._can_write(uid, us):
            return
        if emoji in SKIN_TONED:
            tone = self.tone.get(uid)
            if tone is None:
                r = random.Random(f"beep-large:{self.seed}:tone:{uid}")
                tone = self.tone[uid] = f"::skin-tone-{r.randint(2, 6)}" if r.random() < 0.35 else ""
            emoji += tone
        users = reacts.setdefault(emoji, [])
        if uid not in users:
            users.append(uid)

    @staticmethod
    def _set_reactions(msg: dict[str, Any], reacts: dict[str, list[str]]) -> None:
        """`reactions` as Slack writes it: in the order first used, `users` cut at LISTED_REACTORS_MAX names."""
        if reacts:
            msg["reactions"] = [{"name": e, "users": users[:LISTED_REACTORS_MAX], "count": len(users)}
                                for e, users in reacts.items()]

    def _react_to_bot(self, msg: dict[str, Any], us: int, p: float, palette: tuple[str, ...]) -> None:
        """A bot's post: a few present experts of the channel's work (or recent authors) react."""
        rng = self.rng
        if rng.random() >= p:
            return
        work = [t for t in self.topic_keys if t[0] != "smalltalk"]
        experts = self._experts(work[0]) if work else None
        reacts: dict[str, list[str]] = {}
        for _ in range(1 + int(rng.expovariate(1.0))):
            for _ in range(self.profile.presence_tries):
                u = experts.draw(rng) if experts is not None and rng.random() < 0.7 else self._draw_member(us)
                if u is not None and rng.random() < self._presence(u, us):
                    self._add_reaction(reacts, u, "", us, rng.choice(palette))
                    break
        self._set_reactions(msg, reacts)

    # ------------------------------------------------------------------ bots and small events
    def _bot_event(self, at: int) -> tuple[int, int]:
        """A bot's post (a deploy, an alert, a PR, a ticket, a standup prompt), its reactions, perhaps a conversation."""
        rng = self.rng
        bot = rng.choice(self.bots)
        us = self._take_ts(at)
        self.stats.bot_messages += 1
        topic = self.topic_keys[0]
        msg: dict[str, Any]
        if bot.style == "webhook":
            teams = self.ws.teams
            service, version, ok, attachment = self._deploy(
                V.DEPLOY_SERVICES + tuple(teams[i].name for i in range(min(8, len(teams)))))
            msg = {"type": "message", "subtype": "bot_message", "ts": ts_text(us), "bot_id": bot.bot_id,
                   "text": f"Deploy of *{service}* `{version}` to prod "
                           f"{'succeeded :white_check_mark:' if ok else 'FAILED :x:'}",
                   "username": bot.name, "icons": {"emoji": ":rocket:"}, "attachments": [attachment]}
            follow = 0.1 if ok else 0.7
            self._react_to_bot(msg, us, 0.15 if ok else 0.6, DEPLOY_OK_EMOJI if ok else ALERT_EMOJI)
        else:
            text, follow = self._app_text(bot.style)
            msg = self._app_post(bot, us, text)
            if bot.style == "alert":
                self._react_to_bot(msg, us, 0.5 if "FIRING" in text else 0.1, ALERT_EMOJI)
        work = [t for t in self.topic_keys if t[0] != "smalltalk"]
        if work:
            topic = rng.choice(work)
        if self.remaining > 1 and work and rng.random() < follow:
            return self._conversation(at, topic=topic, parent=(us, msg))
        self._emit([(us, msg)])
        return 1, us

    def _app_text(self, style: str) -> tuple[str, float]:
        """What an app posts, and how likely people take it up in a thread."""
        rng = self.rng
        if style == "alert":
            text = rng.choice(V.ALERTS)
            return text, 0.5 if "FIRING" in text else 0.03
        if style == "github":
            who = self.members.draw(rng)
            return (f"<@{who}> {rng.choice(GITHUB_ACTIONS)} <https://github.com/acme/{self.ch.name}/pull/"
                    f"{rng.randint(100, 9999)}|PR #{rng.randint(100, 9999)}>"), 0.08
        if style == "jira":
            return (f"*ACME-{rng.randint(100, 20000)}* moved to _{rng.choice(JIRA_STATES)}_ "
                    f"<https://acme.atlassian.net/browse/ACME-{rng.randint(100, 20000)}|view>"), 0.05
        return rng.choice(STANDUP_PROMPTS), 0.3

    def _someone(self, at: int) -> str | None:
        return self._draw_member(at)
