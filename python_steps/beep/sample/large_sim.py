"""One channel of the large workspace, simulated over the timeline and streamed to its day files.

Like the sample's ChannelSimulator (whose message-object helpers it reuses: `_user_message`,
`_decorate`, `_file_share`, `_thread`, `_tombstone`, `_uuid`), each channel runs on its own random
stream, so channels can be written in parallel processes with byte-identical output; only the few
days a thread can still reach are held in memory, then written with their ground-truth rows.

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
import datetime as dt
import io
import json
import math
import random
from collections import OrderedDict
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

from beep.sample import vocabulary as V
from beep.sample.channel_sim import (
    DAY_US,
    MAX_THREAD_SPAN_US,
    MINUTE_US,
    US,
    ChannelSimulator,
    ChannelStats,
    ts_text,
)
from beep.sample.large_workspace import TIMEZONES, LargeWorkspace, Topic

BUSY_DELAY_US = 90 * MINUTE_US
#: Total weight of each kind of newcomer in the next-author mixture (participants weigh 2.6 to 3.6 each).
W_EXPERT = 0.6
W_RECENT = 0.25
W_BYSTANDER = 0.2
W_MENTIONED = 7.0
RECENT_AUTHORS = 30
#: Newcomers (experts, recent authors, bystanders) are drawn only while present: tries per draw.
PRESENT_TRIES = 10
#: A channel-run reply @-mentions the author of the message it answers this often.
P_ADDRESS = 0.2
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

    __slots__ = ("items", "cum", "total")

    def __init__(self, items: list[str], weights: list[float]) -> None:
        self.items = items
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1] if self.cum else 0.0

    def draw(self, rng: random.Random) -> str:
        return self.items[min(bisect.bisect_right(self.cum, rng.random() * self.total), len(self.items) - 1)]


class LargeChannelSimulator(ChannelSimulator):
    """Generates and writes one channel of the large workspace (day files + ground-truth rows)."""

    def __init__(self, ws: LargeWorkspace, index: int, seed: int, budget: int, out_dir: Path,
                 truth_dir: Path | None, progress: Callable[[int], None] | None = None) -> None:
        # deliberately not calling ChannelSimulator.__init__: it plans the small sample's world.
        ch = ws.channels[index]
        self.ws = ws  # type: ignore[assignment]
        self.ch = ch  # type: ignore[assignment]
        self.rng = random.Random(f"beep-large:{seed}:channel:{index}")
        self.seed = seed
        self.presence: dict[str, tuple[float, ...]] = {}
        self.tone: dict[str, str] = {}
        self.remaining = budget
        self.folder = out_dir / ch.name
        self.progress = progress
        self.stats = ChannelStats(channel=ch.name)
        # day -> [(us, the message as JSON text, its truth.csv row or "")]
        self.buffer: dict[int, list[tuple[int, str, str]]] = {}  # type: ignore[assignment]
        self.truth: dict[int, tuple[str, str]] = {}  # us -> (conversation id, reply_to ts), until emitted
        self.truth_out: io.TextIOWrapper | None = None
        self.truth_path = truth_dir / f"{index:05d}.csv" if truth_dir is not None else None
        self.flushed_through = -1
        self.used_ts: set[int] = set()
        self.n_conversations = 0
        start_us = ws.start_epoch * US
        self.start_us = start_us
        self.weight_of = dict(zip(ch.members, ch.member_weights))
        self.join_us = {u: start_us + d * DAY_US for u, d in zip(ch.members, ch.join_day)}
        self.leave_us = {u: start_us + d * DAY_US for u, d in zip(ch.members, ch.leave_day)}
        self.members = _Cum(list(ch.members), list(ch.member_weights))
        self.member_set = set(ch.members)
        self.profiles = {u: self._profile(u) for u in ch.members}
        self.field_of = {u: ws.person(u).field for u in ch.members}
        self.team_of = {u: ws.person(u).team for u in ch.members}
        self.second_of = {u: ws.person(u).second_field for u in ch.members}
        self.topic_keys = [t for t, _ in ch.topics]
        self.topic_weights = [w for _, w in ch.topics]
        self.experts: dict[Topic, _Cum | None] = {}
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.other_channels = [c for c in ws.channels if c.index != index and not c.is_private]  # type: ignore[assignment]
        self.bots = [b for b in ws.bots if b.user_id in ch.bots]  # type: ignore[assignment]
        self.bot_user_of = {b.bot_id: b.user_id for b in ws.bots}
        self.bot_rate = ch.bot_rate

    #: Reactions come from the conversation (_react), not at random (ChannelSimulator's sample).
    random_reactions = False
    # ------------------------------------------------------------------ timeline
    def run(self) -> ChannelStats:
        rng = self.rng
        ws, ch = self.ws, self.ch
        start_us = self.start_us
        days = ws.days
        first_day = max(ch.created_day, 0)
        end_day = min(ch.archived_day, days)
        day_weights = self._plan_days(first_day, end_day)
        membership = self._membership_events([d for d, w in enumerate(day_weights) if w > 0])
        last_active = max(d for d, w in enumerate(day_weights) if w > 0)
        weight_left = sum(day_weights)
        avg_size, n_episodes, sizes = 5.0, 0, 0
        cursor = ch.created * US + 60 * US
        for day in range(days):
            if self.remaining <= 0:
                break
            day_start = start_us + day * DAY_US
            while membership and membership[0][0] < day_start and self.remaining > 0:
                cursor = max(cursor, self._membership(*membership.pop(0)))
            weight = day_weights[day]
            if weight <= 0 and day != last_active:
                self._end_of_day(day, membership)
                continue
            per_weight = self.remaining / max(weight_left, 1e-9) / avg_size
            weight_left -= weight
            n = int(per_weight * weight * rng.uniform(0.6, 1.4) + rng.random())
            starts = sorted(day_start + self._time_of_day() for _ in range(n))
            i = 0
            while self.remaining > 0:
                if i == len(starts):
                    if day != last_active:
                        break
                    more = max(1, int(self.remaining / avg_size))  # the channel's last day takes what is left
                    starts += sorted(day_start + self._time_of_day() for _ in range(more))
                planned = starts[i]
                i += 1
                if rng.random() < ch.interleave:
                    at = planned  # a busy channel: the next conversation starts while the last one goes on
                else:
                    gap = rng.uniform(10.5, 45) * MINUTE_US if rng.random() < 0.93 else rng.uniform(1, 9) * MINUTE_US
                    at = max(planned, cursor + int(gap))
                    if at > planned + BUSY_DELAY_US:
                        at = planned
                while membership and membership[0][0] <= at and self.remaining > 0:
                    cursor = max(cursor, self._membership(*membership.pop(0)))
                if self.remaining <= 0:
                    break
                size, end = self._episode(at)
                cursor = max(cursor, end)
                n_episodes += 1
                sizes += size
                avg_size = max(1.5, sizes / n_episodes)
            self._end_of_day(day, membership)
        while membership and self.remaining > 0:
            self._membership(*membership.pop(0))
        self._flush(before_day=None)
        if self.truth_out is not None:
            self.truth_out.close()
        return self.stats

    def _end_of_day(self, day: int, membership: list[tuple[int, str, str]]) -> None:
        """The rest of the day's joins and leaves, then write every day up to this one: each conversation is
        generated whole when it starts, so nothing later can land on a day that has begun; only the replies
        that spill into the next days stay in memory."""
        next_day = self.start_us + (day + 1) * DAY_US
        while membership and membership[0][0] < next_day and self.remaining > 0:
            self._membership(*membership.pop(0))
        self._flush(before_day=day + 1)

    def _plan_days(self, first_day: int, end_day: int) -> list[float]:
        """Each day's share of the channel's traffic. A channel is active on about budget / (messages per
        active day) days, picked with weekdays, slow growth and the channel's own seasons favoured; the rest
        stay silent (no day file), as in real exports where most channels are quiet most days."""
        rng, ws = self.rng, self.ws
        days = ws.days
        avail = list(range(first_day, end_day)) or [min(first_day, days - 1)]
        per_day = MESSAGES_PER_ACTIVE_DAY * self.ch.day_density
        n_active = max(1, min(len(avail), round(self.remaining / per_day)))
        busy = n_active >= len(avail)  # active every day: steadier than a channel that flares up now and then
        period = rng.uniform(40, 200)
        phase = rng.uniform(0, 6.283)
        base = {}
        for d in avail:
            weekday = (dt.date(1970, 1, 1) + dt.timedelta(days=ws.start_epoch // 86400 + d)).weekday()
            season = 1.0 + (0.35 if busy else 0.7) * math.sin(6.283 * d / period + phase)
            base[d] = (1.0 if weekday < 5 else 0.07) * (0.8 + 0.4 * d / days) * season
        if busy:
            active = avail
        else:
            keyed = sorted(((rng.random() ** (1.0 / base[d]), d) for d in avail), reverse=True)
            active = sorted(d for _, d in keyed[:n_active])
        weights = [0.0] * days
        for d in active:
            weights[d] = base[d] * (rng.gammavariate(4.0, 0.25) if busy else rng.gammavariate(2.0, 0.5))
        return weights

    def _membership_events(self, active_days: list[int]) -> list[tuple[int, str, str]]:
        """Joins during the timeline (new hires, people who join later, a new channel's founders), a few leaves.

        Outside the company-wide channels people join (and leave) a channel on a day it is active: the
        day they first take part, rather than a day of their own that would be the channel's only file."""
        rng = self.rng
        ch, ws = self.ch, self.ws
        events: list[tuple[int, str, str]] = []
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

    def _membership(self, at: int, kind: str, uid: str) -> int:
        us = self._take_ts(at)
        verb = "joined" if kind == "channel_join" else "left"
        self._emit([(us, {"type": "message", "subtype": kind, "ts": ts_text(us), "user": uid,
                          "text": f"<@{uid}> has {verb} the channel"})])
        return us

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

    def _next_author(self, t: int, topic: Topic, authors: list[str], mentioned: set[str]) -> str | None:  # type: ignore[override]
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
            for _ in range(PRESENT_TRIES):
                u = experts.draw(rng)
                if u != last and self._can_write(u, t) and rng.random() < self._presence(u, t):
                    return u
        elif r < e_total + r_total:
            recent = list(self.recent)
            for _ in range(PRESENT_TRIES):
                # the most recent authors likeliest
                u = recent[-1 - min(int(rng.expovariate(1 / 8.0)), len(recent) - 1)]
                if u != last and self._can_write(u, t) and rng.random() < self._presence(u, t):
                    return u
        return self._draw_present_member(t, exclude=last)

    def _draw_present_member(self, t: int, exclude: str | None = None) -> str | None:
        """A member by activity who is around at `t` (any member when nobody is found in a few tries)."""
        for _ in range(PRESENT_TRIES):
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
    def _episode(self, at: int) -> tuple[int, int]:
        rng = self.rng
        r = rng.random()
        if self.bots and r < self.bot_rate:
            return self._bot_event(at)
        if r < self.bot_rate + 0.004:
            return self._topic_change(at)
        if r < self.bot_rate + 0.007:
            return self._me_message(at)
        return self._conversation(at)  # type: ignore[call-arg]

    def _conversation(self, at: int, topic: Topic | None = None,  # type: ignore[override]
                      parent: tuple[int, dict] | None = None) -> tuple[int, int]:
        rng = self.rng
        if topic is None:
            topic = rng.choices(self.topic_keys, self.topic_weights)[0]
        small = topic[0] == "smalltalk"
        as_thread = parent is not None or rng.random() < (0.3 if small else 0.55)
        replies_wanted = 0 if rng.random() < 0.12 and parent is None else 1 + min(int(rng.expovariate(1 / 4.0)), 24)
        self.n_conversations += 1
        conv_id = f"{self.ch.name}#{self.n_conversations}"
        authors: list[str] = []
        mentions: list[set[str]] = []
        items: list[tuple[int, dict]] = []
        reply_to: list[str] = []
        t = at
        if parent is None:
            starter = self._draw_member(t)
            if starter is None:
                return self._me_message(at) if self.ch.members else (0, at)
            text, mentioned = self._opener(starter, topic, t)
            self._spoke(starter)
            root_us = self._take_ts(t)
            items.append((root_us, self._user_message(starter, text, root_us)))
            authors.append(starter)
            mentions.append(mentioned)
            reply_to.append("")
        else:
            root_us = parent[0]
            authors.append("")  # the bot: not a person who can answer
            mentions.append(set())
        free_at = root_us + (MINUTE_US if as_thread else 0)
        span_end = root_us + MAX_THREAD_SPAN_US
        root_ts = ts_text(root_us)
        conv_ts = [root_ts]
        for _ in range(replies_wanted):
            if as_thread:
                gap = rng.expovariate(1 / 240.0) * US
                if rng.random() < 0.06:
                    gap = rng.uniform(1, 20) * 3600 * US
            else:
                gap = min(max(rng.expovariate(1 / 80.0), 4.0), 540.0) * US
                if rng.random() < 0.03:
                    gap = rng.uniform(540, 595) * US
            t = t + int(gap) + rng.randrange(US)
            if as_thread and t > span_end:
                break
            people = [a for a in authors if a]
            author = self._next_author(t, topic, people, mentions[-1])
            if author is None:
                break
            us = self._take_ts(t)
            answers = self._pick_reply_to(author, authors, mentions, conv_ts)
            if rng.random() < 0.025:
                msg = self._file_share(author, us)
                mentioned: set[str] = set()
            else:
                # in a channel run (no thread to say who is answered), often @-mention whom this answers
                address = authors[conv_ts.index(answers)] if answers in conv_ts else ""
                if as_thread or not address or address == author or rng.random() >= P_ADDRESS:
                    address = ""
                text, mentioned = self._reply(author, topic, people, address)
                msg = self._user_message(author, text, us)
            reply_to.append(answers)
            items.append((us, msg))
            authors.append(author)
            mentions.append(mentioned)
            conv_ts.append(msg["ts"])
            self._spoke(author)
        limit = self.remaining if parent is None else self.remaining - 1
        items = items[:max(limit, 0)]
        self._react(items, 0 if parent is None else 1, authors, mentions, conv_ts, reply_to, topic)
        if parent is not None:
            self.truth[root_us] = (conv_id, "")
        for (us, _), answers in zip(items, reply_to):
            self.truth[us] = (conv_id, answers)
        if parent is not None and not items:
            self._emit([parent])
            return 1, free_at
        if not as_thread:
            self._emit(items)
            return len(items), max(us for us, _ in items)
        if parent is None:
            root, replies = items[0], items[1:]
        else:
            root, replies = parent, items
        self._thread(root, replies)
        return len(replies) + 1, free_at

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

    def _opener(self, starter: str, topic: Topic, t: int) -> tuple[str, set[str]]:  # type: ignore[override]
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
    def _react(self, items: list[tuple[int, dict]], offset: int, authors: list[str], mentions: list[set[str]],
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
                for _ in range(1 + int(rng.expovariate(1.2))):
                    for _ in range(PRESENT_TRIES):
                        u = experts.draw(rng)
                        if u not in authors and rng.random() < self._presence(u, us):
                            self._add_reaction(reacts, u, author, us, rng.choice(palette))
                            break
            # company-wide news and small talk (welcomes, birthdays, launches) collect many reactions
            if opener and small and self.ch.kind == "company" and rng.random() < 0.35:
                # anyone around reacts, not only the talkative: members drawn evenly, kept while present
                main, other = rng.sample(CELEBRATE_EMOJI, 2)
                wanted = min(int(rng.lognormvariate(3.0, 1.1)), len(self.ch.members) // 2)
                for _ in range(3 * wanted):
                    u = rng.choice(self.ch.members)
                    if rng.random() < self._presence(u, us):
                        self._add_reaction(reacts, u, author, us, main if rng.random() < 0.85 else other)
                        wanted -= 1
                        if wanted <= 0:
                            break
            self._set_reactions(msg, reacts)

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
    def _set_reactions(msg: dict, reacts: dict[str, list[str]]) -> None:
        """`reactions` as Slack writes it: in the order first used, `users` cut at LISTED_REACTORS_MAX names."""
        if reacts:
            msg["reactions"] = [{"name": e, "users": users[:LISTED_REACTORS_MAX], "count": len(users)}
                                for e, users in reacts.items()]

    def _react_to_bot(self, msg: dict, us: int, p: float, palette: tuple[str, ...]) -> None:
        """A bot's post: a few present experts of the channel's work (or recent authors) react."""
        rng = self.rng
        if rng.random() >= p:
            return
        work = [t for t in self.topic_keys if t[0] != "smalltalk"]
        experts = self._experts(work[0]) if work else None
        reacts: dict[str, list[str]] = {}
        for _ in range(1 + int(rng.expovariate(1.0))):
            for _ in range(PRESENT_TRIES):
                u = experts.draw(rng) if experts is not None and rng.random() < 0.7 else self._draw_member(us)
                if u is not None and rng.random() < self._presence(u, us):
                    self._add_reaction(reacts, u, "", us, rng.choice(palette))
                    break
        self._set_reactions(msg, reacts)

    # ------------------------------------------------------------------ bots and small events
    def _bot_event(self, at: int) -> tuple[int, int]:
        rng = self.rng
        bot = rng.choice(self.bots)
        us = self._take_ts(at)
        self.stats.bot_messages += 1
        team = self.ws.team_id
        follow, topic = 0.0, self.topic_keys[0]
        if bot.style == "webhook":
            service = rng.choice(V.DEPLOY_SERVICES + tuple(self.ws.teams[i].name for i in range(min(8, len(self.ws.teams)))))
            version = f"v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
            ok = rng.random() < 0.85
            msg: dict = {"type": "message", "subtype": "bot_message", "ts": ts_text(us), "bot_id": bot.bot_id,
                         "text": f"Deploy of *{service}* `{version}` to prod "
                                 f"{'succeeded :white_check_mark:' if ok else 'FAILED :x:'}",
                         "username": bot.name, "icons": {"emoji": ":rocket:"},
                         "attachments": [{"id": 1, "color": "36a64f" if ok else "d00000",
                                          "fallback": f"{service} {version}", "text": f"commit {rng.getrandbits(28):07x}"}]}
            follow = 0.1 if ok else 0.7
            self._react_to_bot(msg, us, 0.15 if ok else 0.6, DEPLOY_OK_EMOJI if ok else ALERT_EMOJI)
        else:
            if bot.style == "alert":
                text = rng.choice(V.ALERTS)
                follow = 0.5 if "FIRING" in text else 0.03
            elif bot.style == "github":
                who = self.members.draw(rng)
                text = (f"<@{who}> {rng.choice(GITHUB_ACTIONS)} <https://github.com/acme/{self.ch.name}/pull/"
                        f"{rng.randint(100, 9999)}|PR #{rng.randint(100, 9999)}>")
                follow = 0.08
            elif bot.style == "jira":
                text = (f"*ACME-{rng.randint(100, 20000)}* moved to _{rng.choice(JIRA_STATES)}_ "
                        f"<https://acme.atlassian.net/browse/ACME-{rng.randint(100, 20000)}|view>")
                follow = 0.05
            else:
                text = rng.choice(STANDUP_PROMPTS)
                follow = 0.3
            msg = {"type": "message", "text": text, "user": bot.user_id, "ts": ts_text(us), "bot_id": bot.bot_id,
                   "app_id": "A0" + bot.bot_id[2:], "team": team,
                   "bot_profile": {"id": bot.bot_id, "name": bot.name, "app_id": "A0" + bot.bot_id[2:],
                                   "team_id": team, "deleted": False, "updated": self.ws.start_epoch}}
            if bot.style == "alert":
                self._react_to_bot(msg, us, 0.5 if "FIRING" in text else 0.1, ALERT_EMOJI)
        work = [t for t in self.topic_keys if t[0] != "smalltalk"]
        if work:
            topic = rng.choice(work)
        if self.remaining > 1 and work and rng.random() < follow:
            return self._conversation(at, topic=topic, parent=(us, msg))
        self._emit([(us, msg)])
        return 1, us

    def _topic_change(self, at: int) -> tuple[int, int]:
        uid = self._draw_member(at)
        if uid is None:
            return 0, at
        us = self._take_ts(at)
        topic = self.rng.choice(("On call: " + self.ws.person(uid).name, "Release train every Tuesday",
                                 "Q3 focus: reliability", "Please use threads 🙏"))
        self._emit([(us, {"type": "message", "subtype": "channel_topic", "ts": ts_text(us), "user": uid,
                          "text": f"<@{uid}> set the channel topic: {topic}", "topic": topic})])
        return 1, us

    def _me_message(self, at: int) -> tuple[int, int]:
        uid = self._draw_member(at)
        if uid is None:
            return 0, at
        us = self._take_ts(at)
        text = self.rng.choice(("_is out sick today_", "_is working from the train_", "_waves_"))
        self._emit([(us, {"type": "message", "subtype": "me_message", "text": text, "user": uid,
                          "ts": ts_text(us), "user_profile": self.profiles[uid]})])
        return 1, us

    # ------------------------------------------------------------------ output
    def _emit(self, items: list[tuple[int, dict]]) -> None:
        """Buffer finished messages by day, already as JSON text (with their truth.csv row): a busy day of a
        big channel then costs its bytes, not its dicts."""
        start, name = self.start_us, self.ch.name
        for us, msg in items:
            row = self.truth.pop(us, None)
            truth = f"{msg['ts']},{name},{row[0]},{row[1]}\n" if row is not None else ""
            self.buffer.setdefault((us - start) // DAY_US, []).append((us, json.dumps(msg, ensure_ascii=False), truth))
        self.remaining -= len(items)
        self.stats.messages += len(items)

    def _flush(self, before_day: int | None) -> None:
        days = sorted(self.buffer) if before_day is None else sorted(d for d in self.buffer if d < before_day)
        written = 0
        for day in days:
            if day <= self.flushed_through:
                raise RuntimeError(f"{self.ch.name}: day {day} was already written")  # a bug, never the input
            for empty_day in range(self.flushed_through + 1, day):
                if self.rng.random() < 0.002:
                    self._write_lines(empty_day, [])
            items = self.buffer.pop(day)
            items.sort(key=lambda item: item[0])
            self._write_lines(day, [text for _, text, _ in items])
            truth = "".join(row for _, _, row in items)
            if truth and self.truth_path is not None:
                if self.truth_out is None:
                    self.truth_out = open(self.truth_path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
                self.truth_out.write(truth)
            self.flushed_through = day
            written += len(items)
        if days:
            horizon = self.start_us + (days[-1] + 1) * DAY_US
            self.used_ts = {us for us in self.used_ts if us >= horizon}
        if written and self.progress is not None:
            self.progress(written)

    def _write_lines(self, day: int, lines: list[str]) -> None:
        date = (dt.datetime.fromtimestamp(self.ws.start_epoch, dt.timezone.utc) + dt.timedelta(days=day)).date()
        self.folder.mkdir(parents=True, exist_ok=True)
        body = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
        (self.folder / f"{date.isoformat()}.json").write_text(body, encoding="utf-8", newline="\n")
        self.stats.day_files += 1
