"""The sample team and its channels: who works on what, who sits in which channel.

Everything is derived from the seed, so the same seed always gives the same people, ids and channels.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from dataclasses import dataclass, field
from typing import Any

from beep.sample.profiles import SAMPLE
from beep.sample.vocabulary import FIELDS, FIRST_NAMES, LAST_NAMES

#: The first ten people: one per field, fixed names so the sample reads like a real team.
CORE_PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("priya", "Priya Raman", "infra"),
    ("marco", "Marco Rossi", "frontend"),
    ("aisha", "Aisha Bello", "data"),
    ("tom", "Tom Becker", "billing"),
    ("lena", "Lena Vogel", "security"),
    ("kenji", "Kenji Sato", "mobile"),
    ("sofia", "Sofia Alvarez", "ml"),
    ("noah", "Noah Kim", "design"),
    ("grace", "Grace Okafor", "support"),
    ("dan", "Dan Murphy", "management"),
)

#: A channel's spec: name, purpose, topic fields with weights, member fields (None = everyone), share.
ChannelSpec = tuple[str, str, dict[str, float], tuple[str, ...] | None, float]

#: Public channels in order (the first N are used): name, purpose, topic fields with weights,
#: member fields (None = everyone), share of the workspace's messages.
CORE_CHANNELS: tuple[ChannelSpec, ...] = (
    ("general", "Company-wide announcements and work-based matters",
     {"management": 3, "support": 1, "infra": 1, "smalltalk": 2, "design": 1}, None, 1.0),
    ("engineering", "Everything engineering: infra, web, mobile, security",
     {"infra": 3, "frontend": 3, "mobile": 2, "security": 2, "data": 1, "smalltalk": 1},
     ("infra", "frontend", "data", "security", "mobile", "ml", "design", "management"), 1.5),
    ("data-science", "Pipelines, dashboards, models",
     {"data": 4, "ml": 4, "billing": 1, "smalltalk": 1},
     ("data", "ml", "management", "billing", "infra"), 1.0),
    ("customer-support", "Escalations from the support queue",
     {"support": 4, "billing": 3, "frontend": 1, "mobile": 1, "smalltalk": 1},
     ("support", "billing", "frontend", "mobile", "management", "security"), 1.1),
    ("random", "Non-work banter and water cooler conversation",
     {"smalltalk": 6, "design": 1, "ml": 1}, None, 0.6),
    ("deploys", "Deploy notifications and release coordination",
     {"infra": 4, "mobile": 2, "frontend": 2, "security": 1},
     ("infra", "frontend", "mobile", "security", "ml"), 0.7),
)

#: The private channel (groups.json).
PRIVATE_CHANNEL: ChannelSpec = ("leadership", "Private: planning, hiring, incidents that need discretion",
                   {"management": 4, "security": 2, "billing": 1, "support": 1},
                   ("management", "security", "billing", "support", "infra"), 0.4)

#: Bots: (name, real name, bot style) — `webhook` posts bot_message without a user,
#: `app` posts as its bot user (with bot_id) and no subtype.
BOTS: tuple[tuple[str, str, str], ...] = (("deploybot", "Deploy Bot", "webhook"), ("pagerbot", "Pager Bot", "app"))

#: Timeline defaults: the sample starts on a Monday.
START_DAY = "2025-01-06"
DEFAULT_DAYS = SAMPLE.defaults.days


@dataclass(frozen=True)
class Person:
    """A human member of the workspace."""

    user_id: str
    name: str
    real_name: str
    field: str
    avatar_hash: str
    activity: float  # how talkative, overall


@dataclass(frozen=True)
class Bot:
    """A bot user (users.json, is_bot) and its integration id."""

    user_id: str
    bot_id: str
    name: str
    real_name: str
    style: str


@dataclass(frozen=True)
class Channel:
    """A public or private channel and how its members use it."""

    channel_id: str
    name: str
    purpose: str
    topic: str
    is_private: bool
    topics: tuple[tuple[str, float], ...]  # field key (or "smalltalk") and weight
    members: tuple[str, ...]  # user ids of humans
    member_weights: tuple[float, ...]  # how active each member is here
    bots: tuple[str, ...]  # bot user ids posting here
    share: float  # share of the workspace's messages
    creator: str
    created: int  # unix seconds
    index: int  # position, seeds the channel's own random stream


@dataclass(frozen=True)
class Workspace:
    """The whole plan: team id, people, bots, channels and the timeline."""

    team_id: str
    domain: str
    people: tuple[Person, ...]
    bots: tuple[Bot, ...]
    channels: tuple[Channel, ...]
    start_epoch: int  # unix seconds of the first day, 00:00 UTC
    days: int
    slackbot_id: str = "USLACKBOT"
    by_id: dict[str, Person] = field(default_factory=dict, compare=False, hash=False)

    def person(self, user_id: str) -> Person:
        return self.by_id[user_id]


def slack_id(rng: random.Random, prefix: str, length: int = 10) -> str:
    """An id shaped like Slack's: prefix, '0', then upper-case letters and digits."""
    alphabet = string.ascii_uppercase + string.digits
    return prefix + "0" + "".join(rng.choice(alphabet) for _ in range(length - 1))


def _people(rng: random.Random, n: int) -> list[Person]:
    people: list[Person] = []
    used_names: set[str] = set()
    for i in range(n):
        if i < len(CORE_PEOPLE):
            name, real, fld = CORE_PEOPLE[i]
        else:
            fld = FIELDS[i % len(FIELDS)].key
            while True:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                name = f"{first.lower()}.{last.lower()}"
                if name not in used_names:
                    break
            real = f"{first} {last}"
        used_names.add(name)
        people.append(Person(
            user_id=slack_id(rng, "U"),
            name=name,
            real_name=real,
            field=fld,
            avatar_hash="".join(rng.choice("0123456789abcdef") for _ in range(12)),
            activity=round(rng.lognormvariate(0.0, 0.5), 3),
        ))
    return people


def _extra_channel_spec(rng: random.Random, i: int) -> ChannelSpec:
    keys = [f.key for f in FIELDS]
    picked = rng.sample(keys, 3)
    topics = {picked[0]: 4.0, picked[1]: 2.0, picked[2]: 1.0, "smalltalk": 1.0}
    members = tuple(picked) + tuple(rng.sample([k for k in keys if k not in picked], 2))
    return (f"proj-{picked[0]}-{i}", f"Project channel {i}: {', '.join(picked)}", topics, members,
            round(rng.uniform(0.3, 1.0), 2))


def build_workspace(seed: int, n_people: int = 10, n_channels: int = 6, days: int = DEFAULT_DAYS) -> Workspace:
    """Plan the workspace for `seed`: people, bots, public channels plus one private channel."""
    if n_people < SAMPLE.min_people:
        raise ValueError(f"--people must be at least {SAMPLE.min_people} (got {n_people}): a conversation needs "
                         "two people.")
    if n_channels < 1:
        raise ValueError(f"--channels must be at least 1 (got {n_channels}).")
    if days < 1:
        raise ValueError(f"--days must be at least 1 (got {days}).")
    rng = random.Random(f"beep-sample:{seed}:workspace")
    team_id = slack_id(rng, "T", 9)
    people = _people(rng, n_people)
    bots = [Bot(user_id=slack_id(rng, "U"), bot_id=slack_id(rng, "B"), name=n, real_name=r, style=s)
            for n, r, s in BOTS]
    specs = list(CORE_CHANNELS[:n_channels])
    for i in range(len(CORE_CHANNELS), n_channels):
        specs.append(_extra_channel_spec(rng, i))
    start_epoch = epoch_of(START_DAY)
    channels = [_plan_channel(rng, index, spec, private, people, bots, start_epoch)
                for index, (spec, private) in enumerate([(s, False) for s in specs] + [(PRIVATE_CHANNEL, True)])]
    ws = Workspace(team_id=team_id, domain="acme-corp", people=tuple(people), bots=tuple(bots),
                   channels=tuple(channels), start_epoch=start_epoch, days=days)
    ws.by_id.update({p.user_id: p for p in people})
    return ws


def _plan_channel(rng: random.Random, index: int, spec: ChannelSpec, private: bool, people: list[Person],
                  bots: list[Bot], start_epoch: int) -> Channel:
    """A channel from its spec: its members (by field) and how active each is there, its bots, its creator."""
    name, purpose, topics, member_fields, share = spec
    members = [p for p in people if member_fields is None or p.field in member_fields]
    if len(members) < 2:
        members = people[:2]
    weights = []
    for p in members:
        w = p.activity * rng.lognormvariate(0.0, 0.6)
        if p.field in topics:
            w *= 1.0 + topics[p.field] / 2
        weights.append(round(w, 3))
    channel_bots: list[str] = []
    if name == "deploys":
        channel_bots = [b.user_id for b in bots]
    elif name in ("engineering", "general"):
        channel_bots = [bots[1].user_id]
    creator = members[-1].user_id if name == "general" else rng.choice(members).user_id
    return Channel(
        channel_id=slack_id(rng, "C" if not private else "G"),
        name=name,
        purpose=purpose,
        topic=_topic_line(name),
        is_private=private,
        topics=tuple(topics.items()),
        members=tuple(p.user_id for p in members),
        member_weights=tuple(weights),
        bots=tuple(channel_bots),
        share=share,
        creator=creator,
        created=start_epoch + 7 * 3600 + rng.randint(0, 3000),
        index=index,
    )


def _topic_line(name: str) -> str:
    return {
        "general": "Be kind. Announcements go here.",
        "engineering": "On call this week: see the pinned rota",
        "data-science": "Dashboards: https://looker.acme.io",
        "customer-support": "P1s: page on-call, then post here",
        "random": "🍕 & memes",
        "deploys": "Freeze on Fridays after 3pm",
        "leadership": "Confidential",
    }.get(name, f"Work on {name}")


def epoch_of(day: str) -> int:
    """Unix seconds of `day` (YYYY-MM-DD), 00:00 UTC."""
    return int(dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp())


def users_json(ws: Workspace) -> list[dict[str, Any]]:
    """users.json: the humans, the bots and Slackbot, shaped like a real export."""
    out: list[dict[str, Any]] = []
    for p in ws.people:
        first = p.real_name.split(" ")[0]
        out.append({
            "id": p.user_id, "team_id": ws.team_id, "name": p.name, "deleted": False,
            "color": "9f69e7", "real_name": p.real_name, "tz": "Europe/London", "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": {
                "title": f"{p.field.capitalize()} lead" if p.field != "management" else "Head of Engineering",
                "phone": "", "skype": "", "real_name": p.real_name, "real_name_normalized": p.real_name,
                "display_name": first.lower(), "display_name_normalized": first.lower(),
                "status_text": "", "status_emoji": "", "avatar_hash": p.avatar_hash,
                "email": f"{p.name}@acme.io", "first_name": first,
                "last_name": p.real_name.split(" ", 1)[-1],
                "image_72": f"https://avatars.slack-edge.com/2024-01-01/{p.avatar_hash}_72.png",
                "team": ws.team_id,
            },
            "is_admin": p.field == "management", "is_owner": p.field == "management", "is_primary_owner": False,
            "is_restricted": False, "is_ultra_restricted": False, "is_bot": False, "is_app_user": False,
            "updated": ws.start_epoch - 86400,
        })
    out.extend(bot_users_json(ws.team_id, ws.bots, ws.start_epoch))
    out.append(slackbot_json(ws.team_id, ws.slackbot_id))
    return out


def bot_users_json(team_id: str, bots: tuple[Any, ...], start_epoch: int) -> list[dict[str, Any]]:
    """users.json entries of the bots (both profiles)."""
    return [{
        "id": b.user_id, "team_id": team_id, "name": b.name, "deleted": False, "real_name": b.real_name,
        "profile": {"real_name": b.real_name, "display_name": "", "bot_id": b.bot_id,
                    "api_app_id": "A0" + b.bot_id[2:], "always_active": True, "team": team_id},
        "is_admin": False, "is_owner": False, "is_bot": True, "is_app_user": False,
        "updated": start_epoch - 86400,
    } for b in bots]


def slackbot_json(team_id: str, slackbot_id: str) -> dict[str, Any]:
    """Slackbot's users.json entry (both profiles)."""
    return {
        "id": slackbot_id, "team_id": team_id, "name": "slackbot", "deleted": False, "real_name": "Slackbot",
        "profile": {"real_name": "Slackbot", "display_name": "Slackbot", "team": team_id},
        "is_admin": False, "is_owner": False, "is_bot": False, "is_app_user": False, "updated": 0,
    }


def channel_json(c: Any, members: list[str], archived: bool) -> dict[str, Any]:
    """A channels.json or groups.json entry (both profiles): `members` as at the export's end."""
    entry: dict[str, Any] = {
        "id": c.channel_id, "name": c.name, "created": c.created, "creator": c.creator,
        "is_archived": archived, "is_general": c.name == "general",
        "members": members,
        "topic": {"value": c.topic, "creator": c.creator, "last_set": c.created},
        "purpose": {"value": c.purpose, "creator": c.creator, "last_set": c.created},
    }
    if c.is_private:
        entry["is_private"] = True
    return entry


def channels_json(ws: Workspace, private: bool) -> list[dict[str, Any]]:
    """channels.json (public) or groups.json (private) entries."""
    return [channel_json(c, list(c.members) + list(c.bots), False) for c in ws.channels if c.is_private == private]
