"""One channel's life over the timeline, written day by day: the simulator both profiles run.

A channel is simulated on its own random stream (the profile's stream, the seed and the channel's
index), so channels can be written in parallel processes and the output is still byte-identical for
the same seed. `ChannelSimulator.run` reads as its phases: plan the days, plan the joins and leaves,
then for each day draw the conversation starts, run each episode (a conversation, a bot's post, a
topic change, a `/me`), and write every day no thread can reach any more. Messages are held only for
those few days, as JSON text (with their truth.csv row, where the profile writes one).

What differs between profiles is who the people are and how they choose to write: a subclass plans
the days and the joins (`_plan_days`, `_membership_events`), says who may speak (`_someone`), runs a
conversation (`_conversation`) and a bot's post (`_bot_event`) with the shared phases below
(`_conversation_shape`, `_next_reply_time`, `_within_budget`, `_publish`, `_thread`) and the shared
message objects (`_user_message`, `_file_share`, `_decorate`, `_with_mention`, `_app_post`).
The rates come from the profile (profiles.py).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from beep.sample import vocabulary as V
from beep.sample.profiles import Profile

US = 1_000_000
DAY_US = 86_400 * US
MINUTE_US = 60 * US
#: Threads stop receiving replies after this long, so days older than this can be written.
MAX_THREAD_SPAN_US = 40 * 3600 * US
#: A conversation waits at most this long for a quiet gap in its channel before it overlaps the last one.
BUSY_DELAY_US = 90 * MINUTE_US

#: A message and its time in microseconds.
Item = tuple[int, dict[str, Any]]
#: A join or leave: (time in microseconds, `channel_join` or `channel_leave`, user id).
Membership = tuple[int, str, str]


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


class PersonPlan(Protocol):
    """What the simulator reads of a person (workspace.Person, large_workspace.LPerson)."""

    user_id: str
    name: str
    real_name: str
    avatar_hash: str


class BotPlan(Protocol):
    """What the simulator reads of a bot."""

    user_id: str
    bot_id: str
    name: str
    style: str


class ChannelPlan(Protocol):
    """What the simulator reads of a channel."""

    channel_id: str
    name: str
    is_private: bool
    members: tuple[str, ...]
    member_weights: tuple[float, ...]
    bots: tuple[str, ...]
    created: int
    index: int


class WorkspacePlan(Protocol):
    """What the simulator reads of a workspace plan (workspace.Workspace, large_workspace.LargeWorkspace)."""

    team_id: str
    start_epoch: int
    days: int
    slackbot_id: str

    @property
    def bots(self) -> Sequence[BotPlan]: ...

    @property
    def channels(self) -> Sequence[ChannelPlan]: ...

    def person(self, user_id: str) -> PersonPlan: ...


class ChannelSimulator(ABC):
    """Generates and writes one channel's day files (and its truth.csv rows) for a profile."""

    #: The profile a subclass simulates unless it is given another (with changed settings).
    default_profile: ClassVar[Profile]

    def __init__(self, ws: WorkspacePlan, index: int, seed: int, budget: int, out_dir: Path,
                 truth_dir: Path | None = None, progress: Callable[[int], None] | None = None,
                 profile: Profile | None = None) -> None:
        ch = ws.channels[index]
        self.profile = profile or self.default_profile
        self.ws = ws
        self.ch = ch
        self.seed = seed
        self.rng = random.Random(f"{self.profile.stream}:{seed}:channel:{index}")
        self.remaining = budget
        self.folder = out_dir / ch.name
        self.progress = progress
        self.stats = ChannelStats(channel=ch.name)
        self.start_us = ws.start_epoch * US
        # day -> [(us, the message as JSON text, its truth.csv row or "")]
        self.buffer: dict[int, list[tuple[int, str, str]]] = {}
        self.truth: dict[int, tuple[str, str]] = {}  # us -> (conversation id, reply_to ts), until emitted
        self.truth_path = truth_dir / f"{index:05d}.csv" if truth_dir is not None else None
        self.truth_out: io.TextIOWrapper | None = None
        self.flushed_through = -1  # last day offset written (or skipped)
        self.used_ts: set[int] = set()
        self.weight_of = dict(zip(ch.members, ch.member_weights))
        self.other_channels = [c for c in ws.channels if c.index != index and not c.is_private]
        self.bots = [b for b in ws.bots if b.user_id in ch.bots]
        self.bot_user_of = {b.bot_id: b.user_id for b in ws.bots}
        self.bot_rate = 0.0
        #: Chance a conversation starts while the last one goes on (None: only when the channel is busy).
        self.interleave: float | None = None
        self.profiles: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ what a profile decides
    @abstractmethod
    def _plan_days(self) -> list[float]:
        """Each day's share of the channel's traffic (0: a silent day)."""

    @abstractmethod
    def _membership_events(self, day_weights: list[float]) -> list[Membership]:
        """The joins and leaves of the timeline, in time order."""

    @abstractmethod
    def _end_of_day(self, day: int, membership: list[Membership]) -> None:
        """After a day's episodes: write the days no thread can reach any more."""

    @abstractmethod
    def _someone(self, at: int) -> str | None:
        """A member who can write at `at` (for topic changes and `/me`), None when there is nobody."""

    @abstractmethod
    def _conversation(self, at: int) -> tuple[int, int]:
        """A conversation starting at `at`: (messages written, when the channel is free again)."""

    @abstractmethod
    def _bot_event(self, at: int) -> tuple[int, int]:
        """A bot's post at `at`, perhaps followed by a conversation."""

    def _on_membership(self, kind: str, uid: str) -> None:
        """A join or leave was written (the sample keeps who is present); by default nothing to do."""
        return None

    # ------------------------------------------------------------------ driving the timeline
    def run(self) -> ChannelStats:
        """Simulate the whole timeline and write its day files; what was written."""
        day_weights = self._plan_days()
        membership = self._membership_events(day_weights)
        self._live_through(day_weights, membership)
        while membership and self.remaining > 0:
            self._membership(*membership.pop(0))
        self._flush(before_day=None)
        if self.truth_out is not None:
            self.truth_out.close()
        return self.stats

    def _live_through(self, day_weights: list[float], membership: list[Membership]) -> None:
        """Day by day: spread the remaining budget over the days left by their weights, run the day's episodes."""
        rng = self.rng
        last_active = max(d for d, w in enumerate(day_weights) if w > 0)
        weight_left = sum(day_weights)
        avg_size, n_episodes, sizes = 5.0, 0, 0
        cursor = self.ch.created * US + 60 * US
        for day in range(self.ws.days):
            if self.remaining <= 0:
                break
            day_start = self.start_us + day * DAY_US
            cursor = self._joins_and_leaves(membership, cursor, through=day_start - 1)
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
                    # the timeline ends today: whatever the budget still holds happens today too
                    more = max(1, int(self.remaining / avg_size))
                    starts += sorted(day_start + self._time_of_day() for _ in range(more))
                at = self._start_time(starts[i], cursor)
                i += 1
                cursor = self._joins_and_leaves(membership, cursor, through=at)
                if self.remaining <= 0:
                    break
                size, end = self._episode(at)
                cursor = max(cursor, end)
                n_episodes += 1
                sizes += size
                avg_size = max(1.5, sizes / n_episodes)
            self._end_of_day(day, membership)

    def _joins_and_leaves(self, membership: list[Membership], cursor: int, through: int) -> int:
        """Write the joins and leaves up to `through` (microseconds); when the channel is free again."""
        while membership and membership[0][0] <= through and self.remaining > 0:
            cursor = max(cursor, self._membership(*membership.pop(0)))
        return cursor

    def _start_time(self, planned: int, cursor: int) -> int:
        """When a conversation planned at `planned` starts: after a quiet gap, unless the channel is busy."""
        rng = self.rng
        if self.interleave is not None and rng.random() < self.interleave:
            return planned  # a busy channel: the next conversation starts while the last one goes on
        gap = rng.uniform(10.5, 45) * MINUTE_US if rng.random() < 0.93 else rng.uniform(1, 9) * MINUTE_US
        at = max(planned, cursor + int(gap))
        if at > planned + BUSY_DELAY_US:
            at = planned  # a busy channel: conversations overlap instead of queueing for a quiet gap
        return at

    def _weekday_weight(self, day: int) -> float:
        """Weekdays busy, weekends quiet, slow growth over the timeline."""
        weekday = (dt.date(1970, 1, 1) + dt.timedelta(days=self.ws.start_epoch // 86400 + day)).weekday()
        return (1.0 if weekday < 5 else 0.07) * (0.8 + 0.4 * day / max(self.ws.days, 1))

    def _time_of_day(self) -> int:
        """Microseconds into the day: mornings and afternoons, some night owls."""
        rng = self.rng
        r = rng.random()
        if r < 0.08:  # late evening / night owls
            hours = rng.uniform(19.0, 23.9)
        else:
            hours = min(max(rng.gauss(10.5 if r < 0.55 else 15.0, 1.6), 7.0), 19.5)
        return int(hours * 3600 * US) + rng.randrange(US)

    def _membership(self, at: int, kind: str, uid: str) -> int:
        """Write a join or leave; its time."""
        us = self._take_ts(at)
        verb = "joined" if kind == "channel_join" else "left"
        msg = {"type": "message", "subtype": kind, "ts": ts_text(us), "user": uid,
               "text": f"<@{uid}> has {verb} the channel"}
        self._on_membership(kind, uid)
        self._emit([(us, msg)])
        return us

    # ------------------------------------------------------------------ episodes
    def _episode(self, at: int) -> tuple[int, int]:
        """One event starting at `at`; returns (messages written, when the channel is free again)."""
        r = self.rng.random()
        if self.bots and r < self.bot_rate:
            return self._bot_event(at)
        if r < self.bot_rate + self.profile.topic_change_rate:
            return self._topic_change(at)
        if r < self.bot_rate + (self.profile.topic_change_rate + self.profile.me_message_rate):
            return self._me_message(at)
        return self._conversation(at)

    def _topic_change(self, at: int) -> tuple[int, int]:
        uid = self._someone(at)
        if uid is None:
            return 0, at
        us = self._take_ts(at)
        topic = self.rng.choice(("On call: " + self.ws.person(uid).name, "Release train every Tuesday",
                                 "Q3 focus: reliability", "Please use threads 🙏"))
        self._emit([(us, {"type": "message", "subtype": "channel_topic", "ts": ts_text(us), "user": uid,
                          "text": f"<@{uid}> set the channel topic: {topic}", "topic": topic})])
        return 1, us

    def _me_message(self, at: int) -> tuple[int, int]:
        uid = self._someone(at)
        if uid is None:
            return 0, at
        us = self._take_ts(at)
        text = self.rng.choice(("_is out sick today_", "_is working from the train_", "_waves_"))
        self._emit([(us, {"type": "message", "subtype": "me_message", "text": text, "user": uid,
                          "ts": ts_text(us), "user_profile": self.profiles[uid]})])
        return 1, us

    # ------------------------------------------------------------------ conversation phases
    def _conversation_shape(self, small_talk: bool, parent: Item | None) -> tuple[bool, int]:
        """(whether it is a thread, how many replies it wants); a bot's post always gets a threaded reply."""
        rng, p = self.rng, self.profile
        as_thread = parent is not None or rng.random() < (p.smalltalk_thread_share if small_talk else p.thread_share)
        replies_wanted = (0 if rng.random() < p.unanswered_share and parent is None
                          else 1 + min(int(rng.expovariate(1 / p.mean_replies)), p.max_replies))
        return as_thread, replies_wanted

    def _next_reply_time(self, t: int, as_thread: bool) -> int:
        """When the next reply comes: threads at leisure (sometimes hours later), channel runs within minutes."""
        rng = self.rng
        if as_thread:
            gap = rng.expovariate(1 / 240.0) * US
            if rng.random() < 0.06:
                gap = rng.uniform(1, 20) * 3600 * US
        else:
            gap = min(max(rng.expovariate(1 / 80.0), 4.0), 540.0) * US
            if rng.random() < 0.03:
                gap = rng.uniform(540, 595) * US
        return t + int(gap) + self.rng.randrange(US)

    def _within_budget(self, items: list[Item], parent: Item | None) -> list[Item]:
        """What fits the channel's remaining budget (a bot's post keeps its own place)."""
        limit = self.remaining if parent is None else self.remaining - 1
        return items[:max(limit, 0)]

    def _publish(self, items: list[Item], parent: Item | None, as_thread: bool, free_at: int) -> tuple[int, int]:
        """Emit a finished conversation as a channel run or a thread; (messages, when the channel is free)."""
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

    def _thread(self, root: Item, replies: list[Item]) -> None:
        """Link the replies to their root (thread_ts, reply_users…), some broadcast, a few roots deleted."""
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

    def _tombstone(self, root: dict[str, Any]) -> dict[str, Any]:
        keep = {k: root[k] for k in ("thread_ts", "reply_count", "reply_users_count", "latest_reply",
                                     "reply_users", "is_locked", "subscribed")}
        return {"type": "message", "subtype": "tombstone", "text": "This message was deleted.",
                "user": self.ws.slackbot_id, "hidden": True, "ts": root["ts"], **keep}

    # ------------------------------------------------------------------ text
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
        """What real messages carry besides words: links, code, @here, channel links, PII, emoji, formatting."""
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
    def _user_profile(self, uid: str) -> dict[str, Any]:
        """The `user_profile` a message of `uid` carries."""
        p = self.ws.person(uid)
        first = p.real_name.split(" ")[0]
        return {"avatar_hash": p.avatar_hash,
                "image_72": f"https://avatars.slack-edge.com/2024-01-01/{p.avatar_hash}_72.png",
                "first_name": first, "real_name": p.real_name, "display_name": first.lower(),
                "team": self.ws.team_id, "name": p.name, "is_restricted": False, "is_ultra_restricted": False}

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def _user_message(self, uid: str, text: str, us: int) -> dict[str, Any]:
        rng = self.rng
        team = self.ws.team_id
        msg: dict[str, Any] = {
            "client_msg_id": self._uuid(), "type": "message", "text": text, "user": uid, "ts": ts_text(us),
            "blocks": [{"type": "rich_text", "block_id": f"{rng.getrandbits(20):05x}",
                        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}],
            "team": team, "user_team": team, "source_team": team, "user_profile": self.profiles[uid],
        }
        if rng.random() < self.profile.edit_rate:
            msg["edited"] = {"user": uid, "ts": ts_text(us + rng.randint(5, 900) * US)}
        if self.profile.random_reaction_rate and rng.random() < self.profile.random_reaction_rate:
            msg["reactions"] = self._random_reactions()
        return msg

    def _random_reactions(self) -> list[dict[str, Any]]:
        """One or two emoji, each from one to three of the channel's members."""
        rng = self.rng
        out = []
        for name in rng.sample(V.REACTIONS, rng.randint(1, 2)):
            users = rng.sample(list(self.ch.members), rng.randint(1, min(3, len(self.ch.members))))
            out.append({"name": name, "users": users, "count": len(users)})
        return out

    def _file_share(self, uid: str, us: int) -> dict[str, Any]:
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

    def _deploy(self, services: Sequence[str]) -> tuple[str, str, bool, dict[str, Any]]:
        """A webhook's deploy report: (service, version, succeeded, its attachment)."""
        rng = self.rng
        service = rng.choice(services)
        version = f"v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        ok = rng.random() < 0.85
        attachment = {"id": 1, "color": "36a64f" if ok else "d00000",
                      "fallback": f"{service} {version}", "text": f"commit {rng.getrandbits(28):07x}"}
        return service, version, ok, attachment

    def _app_post(self, bot: BotPlan, us: int, text: str) -> dict[str, Any]:
        """An app posting as its bot user (bot_id, no subtype)."""
        team = self.ws.team_id
        return {"type": "message", "text": text, "user": bot.user_id, "ts": ts_text(us), "bot_id": bot.bot_id,
                "app_id": "A0" + bot.bot_id[2:], "team": team,
                "bot_profile": {"id": bot.bot_id, "name": bot.name, "app_id": "A0" + bot.bot_id[2:],
                                "team_id": team, "deleted": False, "updated": self.ws.start_epoch}}

    # ------------------------------------------------------------------ output
    def _take_ts(self, us: int) -> int:
        """`us`, or the next free microsecond: no two messages of a channel share a ts."""
        while us in self.used_ts:
            us += 1
        self.used_ts.add(us)
        return us

    def _emit(self, items: list[Item]) -> None:
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
        """Write every buffered day older than `before_day` (all when None), plus a few `[]` days."""
        days = sorted(self.buffer) if before_day is None else sorted(d for d in self.buffer if d < before_day)
        written = 0
        for day in days:
            if day <= self.flushed_through:
                raise RuntimeError(f"{self.ch.name}: day {day} was already written")  # a bug, never the input
            for empty_day in range(self.flushed_through + 1, day):
                if self.rng.random() < self.profile.empty_day_rate:
                    self._write_day(empty_day, [])
            items = self.buffer.pop(day)
            items.sort(key=lambda item: item[0])
            self._write_day(day, [text for _, text, _ in items])
            self._write_truth("".join(row for _, _, row in items))
            self.flushed_through = day
            written += len(items)
        if days:
            horizon = self.start_us + (days[-1] + 1) * DAY_US
            self.used_ts = {us for us in self.used_ts if us >= horizon}
        if written and self.progress is not None:
            self.progress(written)

    def _write_truth(self, rows: str) -> None:
        if rows and self.truth_path is not None:
            if self.truth_out is None:
                self.truth_out = open(self.truth_path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            self.truth_out.write(rows)

    def _write_day(self, day: int, lines: list[str]) -> None:
        date = (dt.datetime.fromtimestamp(self.ws.start_epoch, dt.UTC) + dt.timedelta(days=day)).date()
        self.folder.mkdir(parents=True, exist_ok=True)
        body = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
        (self.folder / f"{date.isoformat()}.json").write_text(body, encoding="utf-8", newline="\n")
        self.stats.day_files += 1
