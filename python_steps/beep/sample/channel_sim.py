"""One channel's life over the timeline: conversations, threads, bots, joins — written day by day.

A channel is simulated on its own random stream (seed + channel index), so channels can be written
in parallel and the output is still byte-identical for the same seed. Messages are buffered only for
the few days a thread can still receive replies, then each day file is written and forgotten.

How people behave (the signal a model can learn):
- a conversation starts with someone raising a topic of the channel (often a question in one field
  of expertise, sometimes small talk), sometimes @-mentioning the expert;
- the next author is drawn with weights: people already in the conversation weigh most, an
  @-mentioned person weighs even more, experts of the topic's field weigh more than bystanders,
  and the last author rarely writes twice in a row;
- replies use the topic's vocabulary or are small talk ("thx!", "lol"), so some examples are strong
  and some carry almost nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from beep.sample import vocabulary as V
from beep.sample.workspace import Channel, Workspace

US = 1_000_000
DAY_US = 86_400 * US
MINUTE_US = 60 * US
#: Threads stop receiving replies after this long, so days older than this can be written.
MAX_THREAD_SPAN_US = 40 * 3600 * US
FLUSH_LAG_DAYS = 3
#: A conversation waits at most this long for a quiet gap in its channel before it overlaps the last one.
BUSY_DELAY_US = 90 * MINUTE_US


@dataclass
class ChannelStats:
    """What one channel wrote."""

    channel: str
    messages: int = 0
    threads: int = 0
    replies: int = 0
    day_files: int = 0
    bot_messages: int = 0


def ts_text(us: int) -> str:
    """Slack's ts: seconds with exactly 6 decimals."""
    return f"{us // US}.{us % US:06d}"


class ChannelSimulator:
    """Generates and writes one channel's day files."""

    #: Reactions drawn at random on 12% of user messages (the bundled sample's); the large profile draws
    #: them from the conversation instead (large_sim.py), and turns this off.
    random_reactions = True

    def __init__(self, ws: Workspace, channel: Channel, seed: int, budget: int, out_dir: Path,
                 progress: Callable[[int], None] | None = None) -> None:
        self.ws = ws
        self.ch = channel
        self.rng = random.Random(f"beep-sample:{seed}:channel:{channel.index}")
        self.remaining = budget
        self.folder = out_dir / channel.name
        self.progress = progress
        self.stats = ChannelStats(channel=channel.name)
        self.buffer: dict[int, list[tuple[int, dict]]] = {}
        self.flushed_through = -1  # last day offset written (or skipped)
        self.used_ts: set[int] = set()
        self.present: set[str] = set()
        self.weight_of = dict(zip(channel.members, channel.member_weights))
        self.profiles = {p.user_id: self._profile(p.user_id) for p in ws.people}
        self.field_of = {p.user_id: p.field for p in ws.people}
        self.experts: dict[str, list[str]] = {}
        for uid in channel.members:
            self.experts.setdefault(ws.person(uid).field, []).append(uid)
        self.topic_keys = [k for k, _ in channel.topics]
        self.topic_weights = [w for _, w in channel.topics]
        self.all_user_ids = [p.user_id for p in ws.people]
        self.other_channels = [c for c in ws.channels if c.channel_id != channel.channel_id and not c.is_private]
        self.bots = [b for b in ws.bots if b.user_id in channel.bots]
        self.bot_user_of = {b.bot_id: b.user_id for b in ws.bots}
        self.bot_rate = 0.3 if channel.name == "deploys" else (0.04 if self.bots else 0.0)

    # ------------------------------------------------------------------ driving the timeline
    def run(self) -> ChannelStats:
        rng = self.rng
        start_us = self.ws.start_epoch * US
        membership = self._membership_events(start_us)
        day_weights = [self._day_weight(d) for d in range(self.ws.days)]
        weight_left = sum(day_weights)
        avg_size = 5.0
        n_episodes = 0
        sizes = 0
        cursor = self.ch.created * US + 60 * US
        for day in range(self.ws.days):
            if self.remaining <= 0:
                break
            day_start = start_us + day * DAY_US
            while membership and membership[0][0] < day_start and self.remaining > 0:
                cursor = max(cursor, self._membership(*membership.pop(0)))
            weight = day_weights[day]
            per_weight = self.remaining / max(weight_left, 1e-9) / avg_size
            weight_left -= weight
            expected = per_weight * weight
            last_day = day == self.ws.days - 1
            n = int(expected * rng.uniform(0.6, 1.4) + rng.random())
            starts = sorted(start_us + day * DAY_US + self._time_of_day() for _ in range(n))
            i = 0
            while self.remaining > 0:
                if i == len(starts):
                    if not last_day:
                        break
                    # the timeline ends today: whatever the budget still holds happens today too
                    more = max(1, int(self.remaining / avg_size))
                    starts += sorted(day_start + self._time_of_day() for _ in range(more))
                planned = starts[i]
                i += 1
                gap = rng.uniform(10.5, 45) * MINUTE_US if rng.random() < 0.93 else rng.uniform(1, 9) * MINUTE_US
                at = max(planned, cursor + int(gap))
                if at > planned + BUSY_DELAY_US:
                    at = planned  # a busy channel: conversations overlap instead of queueing for a quiet gap
                while membership and membership[0][0] <= at and self.remaining > 0:
                    cursor = max(cursor, self._membership(*membership.pop(0)))
                if self.remaining <= 0:
                    break
                size, end = self._episode(at)
                cursor = max(cursor, end)
                n_episodes += 1
                sizes += size
                avg_size = max(1.5, sizes / n_episodes)
            self._flush(before_day=day - FLUSH_LAG_DAYS)
        while membership and self.remaining > 0:
            self._membership(*membership.pop(0))
        self._flush(before_day=None)
        return self.stats

    def _day_weight(self, day: int) -> float:
        weekday = (dt.date(1970, 1, 1) + dt.timedelta(days=self.ws.start_epoch // 86400 + day)).weekday()
        base = 1.0 if weekday < 5 else 0.07
        return base * (0.8 + 0.4 * day / max(self.ws.days, 1))

    def _time_of_day(self) -> int:
        rng = self.rng
        r = rng.random()
        if r < 0.08:  # late evening / night owls
            hours = rng.uniform(19.0, 23.9)
        else:
            hours = min(max(rng.gauss(10.5 if r < 0.55 else 15.0, 1.6), 7.0), 19.5)
        return int(hours * 3600 * US) + rng.randrange(US)

    # ------------------------------------------------------------------ membership
    def _membership_events(self, start_us: int) -> list[tuple[int, str, str]]:
        """(time, kind, user) joins and leaves: everyone joins on day one, one late joiner, one leave+rejoin."""
        rng = self.rng
        members = list(self.ch.members)
        t = self.ch.created * US
        late = rng.choice(members[1:]) if len(members) >= 3 else None
        events: list[tuple[int, str, str]] = []
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

    def _membership(self, at: int, kind: str, uid: str) -> int:
        us = self._take_ts(at)
        verb = "joined" if kind == "channel_join" else "left"
        msg = {"type": "message", "subtype": kind, "ts": ts_text(us), "user": uid,
               "text": f"<@{uid}> has {verb} the channel"}
        if kind == "channel_join":
            self.present.add(uid)
        else:
            self.present.discard(uid)
        self._emit([(us, msg)])
        return us

    # ------------------------------------------------------------------ episodes
    def _episode(self, at: int) -> tuple[int, int]:
        """One event starting at `at`; returns (messages written, when the channel is free again)."""
        rng = self.rng
        r = rng.random()
        if self.bots and r < self.bot_rate:
            return self._bot_event(at)
        if r < self.bot_rate + 0.008:
            return self._topic_change(at)
        if r < self.bot_rate + 0.012:
            return self._me_message(at)
        return self._conversation(at)

    def _speakers(self) -> list[str]:
        people = [u for u in self.ch.members if u in self.present]
        return people if len(people) >= 2 else list(self.ch.members)

    def _conversation(self, at: int, topic: str | None = None, parent: tuple[int, dict] | None = None) -> tuple[int, int]:
        rng = self.rng
        speakers = self._speakers()
        if topic is None:
            topic = rng.choices(self.topic_keys, self.topic_weights)[0]
        as_thread = parent is not None or rng.random() < (0.3 if topic == "smalltalk" else 0.55)
        replies_wanted = 0 if rng.random() < 0.12 and parent is None else 1 + min(int(rng.expovariate(1 / 4.0)), 24)
        authors: list[str] = []
        mentioned_last: set[str] = set()
        items: list[tuple[int, dict]] = []
        t = at
        if parent is None:
            weights = [self.weight_of[u] * (0.7 if self._field(u) == topic else 1.0) for u in speakers]
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
            author = self._next_author(speakers, base, index, authors, mentioned_last, topic)
            us = self._take_ts(t)
            if rng.random() < 0.03:
                msg = self._file_share(author, us)
                mentioned_last = set()
            else:
                text, mentioned_last = self._reply_text(author, topic, speakers, authors)
                msg = self._user_message(author, text, us)
            items.append((us, msg))
            authors.append(author)
        # budget: keep what fits
        limit = self.remaining if parent is None else self.remaining - 1
        items = items[:max(limit, 0)]
        if parent is not None and not items:
            self._emit([parent])
            return 1, free_at
        if not as_thread:
            self._emit(items)
            return len(items), max(us for us, _ in items)
        if parent is None:
            root = items[0]
            replies = items[1:]
        else:
            root = parent
            replies = items
        self._thread(root, replies)
        return len(replies) + 1, free_at

    def _thread(self, root: tuple[int, dict], replies: list[tuple[int, dict]]) -> None:
        rng = self.rng
        root_us, root_msg = root
        root_ts = root_msg["ts"]
        if replies:
            reply_users: list[str] = []
            for _, m in replies:
                m["thread_ts"] = root_ts
                m["parent_user_id"] = root_msg.get("user") or self.bot_user_of.get(root_msg.get("bot_id", ""), "")
                uid = m["user"]
                if uid not in reply_users:
                    reply_users.append(uid)
                if rng.random() < 0.03 and "subtype" not in m:
                    m["subtype"] = "thread_broadcast"
                    m["root"] = {"text": root_msg.get("text", ""), "user": root_msg.get("user", ""),
                                 "ts": root_ts, "thread_ts": root_ts}
            root_msg["thread_ts"] = root_ts
            root_msg["reply_count"] = len(replies)
            root_msg["reply_users_count"] = len(reply_users)
            root_msg["latest_reply"] = replies[-1][1]["ts"]
            root_msg["reply_users"] = reply_users
            root_msg["is_locked"] = False
            root_msg["subscribed"] = False
            if rng.random() < 0.02:
                root_msg = self._tombstone(root_msg)
            self.stats.threads += 1
            self.stats.replies += len(replies)
        self._emit([(root_us, root_msg)] + replies)

    def _tombstone(self, root: dict) -> dict:
        keep = {k: root[k] for k in ("thread_ts", "reply_count", "reply_users_count", "latest_reply",
                                     "reply_users", "is_locked", "subscribed")}
        return {"type": "message", "subtype": "tombstone", "text": "This message was deleted.",
                "user": self.ws.slackbot_id, "hidden": True, "ts": root["ts"], **keep}

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

    def _field(self, uid: str) -> str:
        return self.field_of[uid]

    # ------------------------------------------------------------------ text
    def _words(self, topic: str) -> V.Field:
        return V.FIELD_BY_KEY.get(topic) or V.FIELDS[self.rng.randrange(len(V.FIELDS))]

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

    def _reply_text(self, author: str, topic: str, speakers: list[str], authors: list[str]) -> tuple[str, set[str]]:
        rng = self.rng
        mentioned: set[str] = set()
        fld = V.FIELD_BY_KEY.get(topic)
        strong_p = 0.0 if fld is None else (0.65 if self._field(author) == topic else 0.4)
        strong = rng.random() < strong_p
        if strong:
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

    def _with_mention(self, text: str, uid: str) -> str:
        rng = self.rng
        tag = f"<@{uid}>" if rng.random() < 0.9 else f"<@{uid}|{self.ws.person(uid).name}>"
        r = rng.random()
        if r < 0.5:
            return f"{tag} {text}"
        if r < 0.8:
            return f"{text} cc {tag}"
        return f"{text} — {tag} can you take a look?"

    def _decorate(self, text: str, fld: V.Field | None, strong: bool, opener: bool) -> str:
        rng = self.rng
        if fld is not None and strong:
            if rng.random() < 0.08:
                url, label = rng.choice(fld.links)
                n = rng.randint(100, 9999)
                url, label = url.format(n=n), label.format(n=n)
                text += f" <{url}|{label}>" if label else f" <{url}>"
            if rng.random() < 0.06:
                text += f" `{rng.choice(fld.commands)}`"
            if rng.random() < 0.03:
                text += f"\n```{rng.choice(fld.snippets)}```"
        if opener and rng.random() < 0.025:
            text = rng.choice(("<!here> ", "<!channel> ", "<!subteam^S0ACMEENG|@eng> ")) + text
        if rng.random() < 0.02 and self.other_channels:
            c = rng.choice(self.other_channels)
            text += f" (see <#{c.channel_id}|{c.name}>)"
        if rng.random() < 0.02:
            template = rng.choice(V.PII)
            first = rng.choice(V.FIRST_NAMES).lower()
            text += " " + template.format(email=f"{first}.{rng.randint(1, 99)}@{rng.choice(V.EMAIL_DOMAINS)}",
                                          phone=rng.choice(V.PHONES))
        if rng.random() < 0.012:
            text += " " + rng.choice(V.ODD_UNICODE)
        r = rng.random()
        if r < 0.03:
            text = f"*{text}*"
        elif r < 0.04:
            text = f"&gt; quoting the docs\n{text}"
        elif r < 0.05:
            text = f"_{text}_ ~not sure~"
        if rng.random() < 0.14:
            text += " " + rng.choice(V.EMOJI)
        return text

    # ------------------------------------------------------------------ message objects
    def _profile(self, uid: str) -> dict:
        p = self.ws.person(uid)
        first = p.real_name.split(" ")[0]
        return {"avatar_hash": p.avatar_hash,
                "image_72": f"https://avatars.slack-edge.com/2024-01-01/{p.avatar_hash}_72.png",
                "first_name": first, "real_name": p.real_name, "display_name": first.lower(),
                "team": self.ws.team_id, "name": p.name, "is_restricted": False, "is_ultra_restricted": False}

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def _user_message(self, uid: str, text: str, us: int) -> dict:
        rng = self.rng
        team = self.ws.team_id
        msg: dict = {
            "client_msg_id": self._uuid(), "type": "message", "text": text, "user": uid, "ts": ts_text(us),
            "blocks": [{"type": "rich_text", "block_id": f"{rng.getrandbits(20):05x}",
                        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}],
            "team": team, "user_team": team, "source_team": team, "user_profile": self.profiles[uid],
        }
        if rng.random() < 0.05:
            msg["edited"] = {"user": uid, "ts": ts_text(us + rng.randint(5, 900) * US)}
        if self.random_reactions and rng.random() < 0.12:
            msg["reactions"] = self._reactions()
        return msg

    def _reactions(self) -> list[dict]:
        rng = self.rng
        out = []
        for name in rng.sample(V.REACTIONS, rng.randint(1, 2)):
            users = rng.sample(list(self.ch.members), rng.randint(1, min(3, len(self.ch.members))))
            out.append({"name": name, "users": users, "count": len(users)})
        return out

    def _file_share(self, uid: str, us: int) -> dict:
        rng = self.rng
        name, mime, ftype = rng.choice(V.FILE_KINDS)
        fid = "F0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(9))
        text = "" if rng.random() < 0.7 else rng.choice(("here's the log", "screenshot attached", "see file"))
        return {
            "type": "message", "subtype": "file_share", "text": text, "user": uid, "ts": ts_text(us),
            "files": [{"id": fid, "created": us // US, "timestamp": us // US, "name": name, "title": name,
                       "mimetype": mime, "filetype": ftype, "user": uid, "size": rng.randint(2_000, 900_000),
                       "mode": "hosted", "is_external": False,
                       "url_private": f"https://files.slack.com/files-pri/{self.ws.team_id}-{fid}/{name}"}],
            "upload": True, "display_as_bot": False, "user_profile": self.profiles[uid],
        }

    def _bot_event(self, at: int) -> tuple[int, int]:
        rng = self.rng
        bot = rng.choice(self.bots)
        us = self._take_ts(at)
        self.stats.bot_messages += 1
        if bot.style == "webhook":
            service = rng.choice(V.DEPLOY_SERVICES)
            version = f"v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
            ok = rng.random() < 0.85
            text = (f"Deploy of *{service}* `{version}` to prod "
                    f"{'succeeded :white_check_mark:' if ok else 'FAILED :x:'}")
            msg: dict = {"type": "message", "subtype": "bot_message", "text": text, "ts": ts_text(us),
                         "bot_id": bot.bot_id, "username": bot.name, "icons": {"emoji": ":rocket:"},
                         "attachments": [{"id": 1, "color": "36a64f" if ok else "d00000",
                                          "fallback": f"{service} {version}", "text": f"commit {rng.getrandbits(28):07x}"}]}
            topic = "infra" if service in ("api", "worker", "billing") else (
                "mobile" if service in ("ios", "android") else ("ml" if service == "ranker" else "frontend"))
            follow = 0.15 if ok else 0.8
        else:
            text = rng.choice(V.ALERTS)
            msg = {"type": "message", "text": text, "user": bot.user_id, "ts": ts_text(us), "bot_id": bot.bot_id,
                   "app_id": "A0" + bot.bot_id[2:], "team": self.ws.team_id,
                   "bot_profile": {"id": bot.bot_id, "name": bot.name, "app_id": "A0" + bot.bot_id[2:],
                                   "team_id": self.ws.team_id, "deleted": False, "updated": self.ws.start_epoch}}
            topic = "infra" if "FIRING" in text else "smalltalk"
            follow = 0.5 if "FIRING" in text else 0.05
        if topic not in self.topic_keys and topic != "smalltalk":
            topic = self.topic_keys[0]
        if self.remaining > 1 and rng.random() < follow and topic != "smalltalk":
            return self._conversation(at, topic=topic, parent=(us, msg))
        self._emit([(us, msg)])
        return 1, us

    def _topic_change(self, at: int) -> tuple[int, int]:
        uid = self.rng.choice(self._speakers())
        us = self._take_ts(at)
        topic = self.rng.choice(("On call: " + self.ws.person(uid).name, "Release train every Tuesday",
                                 "Q3 focus: reliability", "Please use threads 🙏"))
        self._emit([(us, {"type": "message", "subtype": "channel_topic", "ts": ts_text(us), "user": uid,
                          "text": f"<@{uid}> set the channel topic: {topic}", "topic": topic})])
        return 1, us

    def _me_message(self, at: int) -> tuple[int, int]:
        uid = self.rng.choice(self._speakers())
        us = self._take_ts(at)
        text = self.rng.choice(("_is out sick today_", "_is working from the train_", "_waves_"))
        self._emit([(us, {"type": "message", "subtype": "me_message", "text": text, "user": uid,
                          "ts": ts_text(us), "user_profile": self.profiles[uid]})])
        return 1, us

    # ------------------------------------------------------------------ output
    def _take_ts(self, us: int) -> int:
        while us in self.used_ts:
            us += 1
        self.used_ts.add(us)
        return us

    def _emit(self, items: list[tuple[int, dict]]) -> None:
        start = self.ws.start_epoch * US
        for us, msg in items:
            self.buffer.setdefault((us - start) // DAY_US, []).append((us, msg))
        self.remaining -= len(items)
        self.stats.messages += len(items)

    def _flush(self, before_day: int | None) -> None:
        """Write every buffered day older than `before_day` (all when None), plus a few `[]` days."""
        days = sorted(self.buffer) if before_day is None else sorted(d for d in self.buffer if d < before_day)
        written = 0
        for day in days:
            for empty_day in range(self.flushed_through + 1, day):
                if self.rng.random() < 0.02:
                    self._write_day(empty_day, [])
            items = self.buffer.pop(day)
            items.sort(key=lambda item: item[0])
            self._write_day(day, [m for _, m in items])
            self.flushed_through = day
            written += len(items)
        if written and self.progress is not None:
            self.progress(written)

    def _write_day(self, day: int, messages: list[dict]) -> None:
        date = (dt.datetime.fromtimestamp(self.ws.start_epoch, dt.timezone.utc) + dt.timedelta(days=day)).date()
        self.folder.mkdir(parents=True, exist_ok=True)
        if messages:
            body = "[\n" + ",\n".join(json.dumps(m, ensure_ascii=False) for m in messages) + "\n]\n"
        else:
            body = "[]\n"
        (self.folder / f"{date.isoformat()}.json").write_text(body, encoding="utf-8", newline="\n")
        self.stats.day_files += 1
