"""The `sample` profile's channels: the bundled 10-person team's conversations (simulator.py runs them).

How people behave (the signal a model can learn):
- a conversation starts with someone raising a topic of the channel (often a question in one field
  of expertise, sometimes small talk), sometimes @-mentioning the expert;
- the next author is drawn with weights: people already in the conversation weigh most, an
  @-mentioned person weighs even more, experts of the topic's field weigh more than bystanders,
  and the last author rarely writes twice in a row;
- replies use the topic's vocabulary or are small talk ("thx!", "lol"), so some examples are strong
  and some carry almost nothing; reactions are drawn at random (the profile's `random_reaction_rate`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from beep.sample import vocabulary as V
from beep.sample.profiles import SAMPLE, Profile
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
from beep.sample.workspace import Workspace

#: Days are written this many days after they end (a thread reaches at most 40 hours).
FLUSH_LAG_DAYS = 3


class SampleChannelSimulator(ChannelSimulator):
    """Generates and writes one channel of the sample workspace."""

    default_profile = SAMPLE

    def __init__(self, ws: Workspace, index: int, seed: int, budget: int, out_dir: Path,
                 truth_dir: Path | None = None, progress: Callable[[int], None] | None = None,
                 profile: Profile | None = None) -> None:
        super().__init__(ws, index, seed, budget, out_dir, truth_dir, progress, profile)
        self.ws: Workspace = ws
        ch = self.ch
        self.present: set[str] = set()
        self.profiles = {p.user_id: self._user_profile(p.user_id) for p in ws.people}
        self.field_of = {p.user_id: p.field for p in ws.people}
        self.experts: dict[str, list[str]] = {}
        for uid in ch.members:
            self.experts.setdefault(ws.person(uid).field, []).append(uid)
        self.topic_keys: list[str] = [k for k, _ in ws.channels[index].topics]
        self.topic_weights: list[float] = [w for _, w in ws.channels[index].topics]
        self.bot_rate = 0.3 if ch.name == "deploys" else (0.04 if self.bots else 0.0)

    # ------------------------------------------------------------------ the timeline
    def _plan_days(self) -> list[float]:
        """Every day carries traffic: weekdays most, slowly growing."""
        return [self._weekday_weight(d) for d in range(self.ws.days)]

    def _membership_events(self, day_weights: list[float]) -> list[Membership]:
        """Everyone joins on day one, one late joiner, one leave and rejoin."""
        rng = self.rng
        start_us = self.start_us
        members = list(self.ch.members)
        t = self.ch.created * US
        late = rng.choice(members[1:]) if len(members) >= 3 else None
        events: list[Membership] = []
        for uid in members:
            if uid == late:
                continue
            t += rng.randint(20, 900) * US
            events.append((t, "channel_join", uid))
        for bot in self.ch.bots:
            t += rng.randint(20, 900) * US
            events.append((t, "channel_join", bot))
        days = self.ws.days
        if late is not None:
            day = rng.randint(min(10, days - 1), max(min(40, days - 1), 0))
            events.append((start_us + day * DAY_US + self._time_of_day(), "channel_join", late))
            leaver = rng.choice([m for m in members if m != late])
            if days > 90 and len(members) >= 4:
                d1 = rng.randint(60, min(120, days - 1))
                d2 = min(d1 + rng.randint(5, 30), days - 1)
                events.append((start_us + d1 * DAY_US + self._time_of_day(), "channel_leave", leaver))
                events.append((start_us + d2 * DAY_US + self._time_of_day() + 1, "channel_join", leaver))
        events.sort()
        return events

    def _on_membership(self, kind: str, uid: str) -> None:
        if kind == "channel_join":
            self.present.add(uid)
        else:
            self.present.discard(uid)

    def _end_of_day(self, day: int, membership: list[Membership]) -> None:
        self._flush(before_day=day - FLUSH_LAG_DAYS)

    # ------------------------------------------------------------------ who writes
    def _speakers(self) -> list[str]:
        people = [u for u in self.ch.members if u in self.present]
        return people if len(people) >= 2 else list(self.ch.members)

    def _someone(self, at: int) -> str | None:
        return self.rng.choice(self._speakers())

    def _next_author(self, speakers: list[str], base: list[float], index: dict[str, int], authors: list[str],
                     mentioned: set[str], topic: str) -> str:
        """Draw the next author. `base` holds each speaker's weight as a bystander (see _base_weights);
        only the few people with a role in the conversation get their weight recomputed."""
        last = authors[-1] if authors else None
        starter = authors[0] if authors else None
        spoke = set(authors)
        weights = base.copy()
        for u in spoke.union(mentioned):
            i = index.get(u)
            if i is None:
                continue  # mentioned but not in the channel (any more)
            w = 0.12 * self.weight_of.get(u, 0.5)
            if u in spoke:
                w += 2.6
            if u == starter:
                w += 1.0
            if u in mentioned:
                w += 7.0
            if self.field_of[u] == topic:
                w += 1.6
            if u == last:
                w *= 0.2
            weights[i] = w
        return self.rng.choices(speakers, weights)[0]

    def _base_weights(self, speakers: list[str], topic: str) -> tuple[list[float], dict[str, int]]:
        """Each speaker's weight as a bystander: a little for being in the channel, more for expertise."""
        base = []
        for u in speakers:
            w = 0.12 * self.weight_of.get(u, 0.5)
            if self.field_of[u] == topic:
                w += 1.6
            base.append(w)
        return base, {u: i for i, u in enumerate(speakers)}

    # ------------------------------------------------------------------ episodes
    def _conversation(self, at: int, topic: str | None = None, parent: Item | None = None) -> tuple[int, int]:
        rng = self.rng
        speakers = self._speakers()
        if topic is None:
            topic = rng.choices(self.topic_keys, self.topic_weights)[0]
        as_thread, replies_wanted = self._conversation_shape(topic == "smalltalk", parent)
        authors: list[str] = []
        mentioned_last: set[str] = set()
        items: list[Item] = []
        t = at
        if parent is None:
            weights = [self.weight_of[u] * (0.7 if self.field_of[u] == topic else 1.0) for u in speakers]
            starter = rng.choices(speakers, weights)[0]
            text, mentioned_last = self._opener(starter, topic, speakers)
            root_us = self._take_ts(t)
            items.append((root_us, self._user_message(starter, text, root_us)))
            authors.append(starter)
        else:
            root_us = parent[0]
            t = root_us
        base, index = self._base_weights(speakers, topic)
        free_at = root_us + (MINUTE_US if as_thread else 0)
        span_end = root_us + MAX_THREAD_SPAN_US
        for _ in range(replies_wanted):
            t = self._next_reply_time(t, as_thread)
            if as_thread and t > span_end:
                break
            author = self._next_author(speakers, base, index, authors, mentioned_last, topic)
            us = self._take_ts(t)
            if rng.random() < self.profile.file_share_rate:
                msg = self._file_share(author, us)
                mentioned_last = set()
            else:
                text, mentioned_last = self._reply_text(author, topic, authors)
                msg = self._user_message(author, text, us)
            items.append((us, msg))
            authors.append(author)
        return self._publish(self._within_budget(items, parent), parent, as_thread, free_at)

    def _bot_event(self, at: int) -> tuple[int, int]:
        rng = self.rng
        bot = rng.choice(self.bots)
        us = self._take_ts(at)
        self.stats.bot_messages += 1
        if bot.style == "webhook":
            service, version, ok, attachment = self._deploy(V.DEPLOY_SERVICES)
            text = (f"Deploy of *{service}* `{version}` to prod "
                    f"{'succeeded :white_check_mark:' if ok else 'FAILED :x:'}")
            msg = {"type": "message", "subtype": "bot_message", "text": text, "ts": ts_text(us),
                   "bot_id": bot.bot_id, "username": bot.name, "icons": {"emoji": ":rocket:"},
                   "attachments": [attachment]}
            topic = "infra" if service in ("api", "worker", "billing") else (
                "mobile" if service in ("ios", "android") else ("ml" if service == "ranker" else "frontend"))
            follow = 0.15 if ok else 0.8
        else:
            text = rng.choice(V.ALERTS)
            msg = self._app_post(bot, us, text)
            topic = "infra" if "FIRING" in text else "smalltalk"
            follow = 0.5 if "FIRING" in text else 0.05
        if topic not in self.topic_keys and topic != "smalltalk":
            topic = self.topic_keys[0]
        if self.remaining > 1 and rng.random() < follow and topic != "smalltalk":
            return self._conversation(at, topic=topic, parent=(us, msg))
        self._emit([(us, msg)])
        return 1, us

    # ------------------------------------------------------------------ text
    def _fill(self, template: str, fld: V.Field) -> str:
        rng = self.rng
        return template.format(t=rng.choice(fld.things), p=rng.choice(fld.problems), f=rng.choice(fld.fixes))

    def _opener(self, starter: str, topic: str, speakers: list[str]) -> tuple[str, set[str]]:
        rng = self.rng
        mentioned: set[str] = set()
        if topic == "smalltalk":
            text = rng.choice(V.SOCIAL) if rng.random() < 0.6 else rng.choice(V.SMALL_TALK)
            if "{u}" in text:
                target = rng.choice([u for u in speakers if u != starter] or speakers)
                text = text.format(u=target)
                mentioned.add(target)
            return self._decorate(text, None, strong=False, opener=True), mentioned
        fld = V.FIELD_BY_KEY[topic]
        text = self._fill(rng.choice(V.OPENERS), fld) if rng.random() < 0.9 else rng.choice(V.SMALL_TALK)
        if rng.random() < 0.3:
            experts = [u for u in self.experts.get(topic, []) if u != starter]
            pool = experts if experts and rng.random() < 0.8 else [u for u in self.ch.members if u != starter]
            if pool:
                target = rng.choice(pool)
                mentioned.add(target)
                text = self._with_mention(text, target)
        return self._decorate(text, fld, strong=True, opener=True), mentioned

    def _reply_text(self, author: str, topic: str, authors: list[str]) -> tuple[str, set[str]]:
        rng = self.rng
        mentioned: set[str] = set()
        fld = V.FIELD_BY_KEY.get(topic)
        strong_p = 0.0 if fld is None else (0.65 if self.field_of[author] == topic else 0.4)
        strong = rng.random() < strong_p
        if strong and fld is not None:
            text = self._fill(rng.choice(V.ANSWERS), fld)
        else:
            text = rng.choice(V.SMALL_TALK)
        if rng.random() < 0.08:
            spoke = set(authors)
            newcomers = [u for u in self.experts.get(topic, []) if u not in spoke and u != author]
            others = [u for u in self.ch.members if u != author]
            pool = newcomers if newcomers and rng.random() < 0.6 else others
            if pool:
                target = rng.choice(pool)
                mentioned.add(target)
                text = self._with_mention(text, target)
        return self._decorate(text, fld, strong=strong, opener=False), mentioned
