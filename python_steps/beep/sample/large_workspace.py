"""The plan of a large workspace (`beep sample generate --profile large`): teams, people, bots, channels.

What makes it look like a real company's Slack rather than the bundled 10-person team:
- people belong to teams; a team owns a component (`ledger`, `checkout`, …) in one field of
  expertise, so a question about the "ledger helm chart" has natural experts (the ledger team);
- activity is long-tailed (Zipf-like by rank): a few people write a lot, most write a handful;
  active people also sit in more channels;
- some people join during the timeline (their `channel_join`s appear then), some are deactivated
  (`deleted: true`) and stop writing; a dozen bots post deploys, alerts, PRs and tickets;
- hundreds of channels of different kinds and sizes (company-wide, help-<field>, team-<component>,
  projects, social, a few private ones), with Zipf-like shares of the traffic.

Everything derives from the seed; the plan is small (a few MB for 2,000 people and 300 channels).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from beep.sample.profiles import LARGE
from beep.sample.vocabulary import FIELDS
from beep.sample.workspace import (
    START_DAY,
    bot_users_json,
    channel_json,
    epoch_of,
    slack_id,
    slackbot_json,
)

FIELD_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS)
ENGINEERING = ("infra", "frontend", "data", "security", "mobile", "ml")
#: How many teams work in each field (relative).
TEAM_FIELD_WEIGHTS = {"infra": 3, "frontend": 3, "data": 2, "billing": 1, "security": 1, "mobile": 2, "ml": 1.5,
                      "design": 1, "support": 1, "management": 0.5}

COMPONENTS: tuple[str, ...] = (
    "checkout", "search", "ledger", "payments", "auth", "notifications", "catalog", "inventory", "shipping",
    "pricing", "onboarding", "reporting", "gateway", "scheduler", "messaging", "identity", "analytics",
    "invoicing", "growth", "ads", "recommendations", "media", "uploads", "exports", "webhooks", "admin-console",
    "partner-api", "fraud", "risk", "tax", "payroll", "crm", "helpdesk", "docs", "design-system",
    "data-platform", "ml-platform", "edge", "cdn", "storage", "observability", "ci", "release", "sso",
    "compliance", "localization", "accessibility", "marketplace", "subscriptions", "wallet", "loyalty",
    "referrals", "chat", "video", "maps", "routing", "forecasting", "warehouse", "audit", "feature-flags",
)
PARTS: tuple[str, ...] = ("api", "web", "jobs", "sync", "core", "mobile", "infra", "data")
HOBBIES: tuple[str, ...] = (
    "running", "books", "pets", "music", "games", "cooking", "photography", "cycling", "coffee", "movies",
    "travel", "parents", "gardening", "climbing", "boardgames", "food", "memes", "football", "yoga", "plants",
)
FIRST_NAMES: tuple[str, ...] = (
    "Ava", "Ben", "Chloe", "Diego", "Elif", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lucia", "Mei",
    "Nils", "Omar", "Paula", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Yusuf", "Zoe", "Amir",
    "Bea", "Carlos", "Dana", "Emil", "Freya", "Gabriel", "Hugo", "Ines", "Jonas", "Kira", "Leo", "Maya",
    "Nadia", "Oscar", "Pia", "Rahul", "Sara", "Theo", "Ursula", "Vera", "Will", "Xin", "Yara", "Zain",
    "Aiko", "Bruno", "Cleo", "Dev", "Eva", "Femi", "Greta", "Hiro", "Ida", "Jamal",
)
LAST_NAMES: tuple[str, ...] = (
    "Andersen", "Brown", "Chen", "Dubois", "Eze", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski",
    "Lopez", "Moreau", "Nguyen", "Olsen", "Patel", "Quist", "Reyes", "Silva", "Tanaka", "Ahmed", "Berg",
    "Costa", "Dahl", "Evans", "Fernandes", "Gupta", "Hansen", "Ivanova", "Jung", "Khan", "Lindqvist",
    "Mendes", "Novak", "Okafor", "Park", "Rossi", "Schmidt", "Takahashi", "Uddin", "Varga", "Weber",
    "Yilmaz", "Zhang", "Abe", "Bianchi", "Cruz", "Diallo", "Eriksen", "Fujita",
)
TIMEZONES: tuple[tuple[str, str, int], ...] = (
    ("Europe/London", "Greenwich Mean Time", 0), ("Europe/Berlin", "Central European Time", 3600),
    ("America/New_York", "Eastern Standard Time", -18000), ("America/Los_Angeles", "Pacific Standard Time", -28800),
    ("Asia/Kolkata", "India Standard Time", 19800),
)
#: Bots: name, real name, style. `webhook` posts bot_message without a user; the others post as their
#: bot user with a bot_id and no subtype, like apps do.
LARGE_BOTS: tuple[tuple[str, str, str], ...] = (
    ("deploybot", "Deploy Bot", "webhook"), ("pagerbot", "Pager Bot", "alert"), ("github", "GitHub", "github"),
    ("jira", "Jira Cloud", "jira"), ("standup", "Standup Bot", "standup"), ("ci-notify", "CI Notifier", "webhook"),
    ("sentry", "Sentry", "alert"), ("polly", "Polly", "standup"), ("statuspage", "Statuspage", "alert"),
    ("release-bot", "Release Bot", "webhook"), ("dependabot", "Dependabot", "github"), ("linear", "Linear", "jira"),
)


@dataclass(frozen=True)
class Team:
    name: str  # its component, used in the words people write ("the ledger helm chart")
    field: str


@dataclass(frozen=True)
class LPerson:
    """A human. `start_day`/`end_day` (offsets into the timeline) bound when they can write."""

    user_id: str
    name: str
    real_name: str
    field: str
    second_field: str | None
    team: int
    avatar_hash: str
    activity: float
    start_day: int
    end_day: int  # exclusive; < days when deactivated
    deleted: bool
    tz: int  # index into TIMEZONES


@dataclass(frozen=True)
class LBot:
    user_id: str
    bot_id: str
    name: str
    real_name: str
    style: str


#: A topic of a channel: (field key or "smalltalk", team index or -1 for none).
Topic = tuple[str, int]


@dataclass(frozen=True)
class LChannel:
    channel_id: str
    name: str
    kind: str
    purpose: str
    topic: str
    is_private: bool
    topics: tuple[tuple[Topic, float], ...]
    members: tuple[str, ...]
    member_weights: tuple[float, ...]
    join_day: tuple[int, ...]  # per member: day offset they joined (<= 0: before the timeline, no message)
    leave_day: tuple[int, ...]  # per member: day they left (>= days: never)
    bots: tuple[str, ...]
    bot_rate: float
    share: float
    day_density: float  # how many messages its active days carry, relative to the mean
    interleave: float  # chance a conversation starts while the last one is still going
    creator: str
    created: int  # unix seconds
    created_day: int  # offset of the creation day (< 0: before the timeline)
    archived_day: int  # offset of the day after its last activity (days when not archived)
    index: int


@dataclass(frozen=True)
class LargeWorkspace:
    team_id: str
    domain: str
    teams: tuple[Team, ...]
    people: tuple[LPerson, ...]
    bots: tuple[LBot, ...]
    channels: tuple[LChannel, ...]
    start_epoch: int
    days: int
    slackbot_id: str = "USLACKBOT"
    by_id: dict[str, LPerson] = field(default_factory=dict, compare=False, hash=False)

    def person(self, user_id: str) -> LPerson:
        return self.by_id[user_id]


def _weighted_sample(rng: random.Random, items: list, weights: list[float], k: int) -> list:
    """k items without replacement, each drawn with probability ∝ weight (Efraimidis–Spirakis)."""
    if k >= len(items):
        return list(items)
    keyed = sorted(((rng.random() ** (1.0 / w) if w > 0 else 0.0, i) for i, w in enumerate(weights)), reverse=True)
    return [items[i] for _, i in sorted(keyed[:k], key=lambda x: x[1])]


def _teams(rng: random.Random, n_people: int) -> list[Team]:
    n = max(3, round(n_people / 20))
    keys = list(TEAM_FIELD_WEIGHTS)
    weights = [TEAM_FIELD_WEIGHTS[k] for k in keys]
    teams = []
    for i in range(n):
        base = COMPONENTS[i % len(COMPONENTS)]
        k = i // len(COMPONENTS)  # a second team on a component owns a part of it: ledger-api, ledger-web…
        name = base if k == 0 else f"{base}-{PARTS[(k - 1) % len(PARTS)]}" + (str(k) if k > len(PARTS) else "")
        fld = keys[i] if i < len(keys) else rng.choices(keys, weights)[0]  # every field has a team
        teams.append(Team(name=name, field=fld))
    return teams


def _people(rng: random.Random, n: int, teams: list[Team], days: int) -> list[LPerson]:
    team_sizes = [min(2.0, max(0.4, rng.lognormvariate(0.0, 0.45))) for _ in teams]
    ranks = list(range(1, n + 1))
    rng.shuffle(ranks)
    used: set[str] = set()
    people = []
    for i in range(n):
        while True:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            handle = f"{first.lower()}.{last.lower()}"
            if handle in used:
                handle = f"{handle}{rng.randint(2, 99)}"
            if handle not in used:
                break
        used.add(handle)
        team = i if i < len(teams) else rng.choices(range(len(teams)), team_sizes)[0]
        fld = teams[team].field if rng.random() < 0.8 else rng.choice(FIELD_KEYS)
        second = rng.choice([k for k in FIELD_KEYS if k != fld]) if rng.random() < 0.4 else None
        r = rng.random()
        start, end, deleted = 0, days, False
        if r < 0.08 and days > 40:  # joined the company during the timeline
            start = rng.randint(5, days - 30)
        elif r < 0.13 and days > 40:  # left: deactivated, writes nothing after
            end = rng.randint(30, days - 1)
            deleted = True
        people.append(LPerson(
            user_id=slack_id(rng, "U"), name=handle, real_name=f"{first} {last}", field=fld, second_field=second,
            team=team, avatar_hash="".join(rng.choice("0123456789abcdef") for _ in range(12)),
            # Zipf-Mandelbrot by a random rank, times a little noise: a few people write most messages
            activity=round((ranks[i] + 2.0) ** -1.35 * rng.lognormvariate(0.0, 0.3) * 100, 5),
            start_day=start, end_day=end, deleted=deleted, tz=rng.choices(range(len(TIMEZONES)), (5, 3, 3, 2, 1))[0],
        ))
    return people


@dataclass
class _Spec:
    name: str
    kind: str
    purpose: str
    topics: dict[Topic, float]
    members: list[LPerson]
    home_teams: set[int]
    private: bool = False
    bots: list[str] = field(default_factory=list)
    bot_rate: float = 0.0


def _pick_people(rng: random.Random, pool: list[LPerson], k: int) -> list[LPerson]:
    """k people of `pool`, the active ones likelier (they sit in more channels)."""
    return _weighted_sample(rng, pool, [p.activity ** 0.5 for p in pool], k)


class _Roster:
    """Who is who, for planning channels: people by field and team, teams by field, bots by style."""

    def __init__(self, rng: random.Random, teams: list[Team], people: list[LPerson], bots: list[LBot]) -> None:
        self.rng, self.teams, self.people = rng, teams, people
        self.by_field: dict[str, list[LPerson]] = {}
        for p in people:
            self.by_field.setdefault(p.field, []).append(p)
            if p.second_field:
                self.by_field.setdefault(p.second_field, []).append(p)
        self.by_team: dict[int, list[LPerson]] = {}
        for p in people:
            self.by_team.setdefault(p.team, []).append(p)
        self.teams_of_field: dict[str, list[int]] = {}
        for i, t in enumerate(teams):
            self.teams_of_field.setdefault(t.field, []).append(i)
        self.bots_of = {s: [b.user_id for b in bots if b.style == s]
                        for s in ("webhook", "alert", "github", "jira", "standup")}

    def pick(self, k: int, pool: list[LPerson] | None = None) -> list[LPerson]:
        """k people (of `pool`, default everyone), the active ones likelier."""
        return _pick_people(self.rng, self.people if pool is None else pool, k)

    def of_fields(self, *fields: str) -> list[LPerson]:
        """Everyone whose field or second field is one of `fields`, in workspace order."""
        seen: dict[str, LPerson] = {}
        for f in fields:
            for p in self.by_field.get(f, []):
                seen[p.user_id] = p
        return [p for p in self.people if p.user_id in seen]

    def union(self, *groups: list[LPerson]) -> list[LPerson]:
        """Everyone in any of `groups`, in workspace order."""
        ids = {p.user_id for g in groups for p in g}
        return [p for p in self.people if p.user_id in ids]

    def some_teams(self, k: int, fields: tuple[str, ...] | None = None) -> dict[Topic, float]:
        """k teams (of `fields`) as topics of weight 0.5."""
        pool = [i for i, t in enumerate(self.teams) if fields is None or t.field in fields]
        return {(self.teams[i].field, i): 0.5 for i in self.rng.sample(pool, min(k, len(pool)))}


def _channel_specs(rng: random.Random, n_channels: int, n_private: int, teams: list[Team],
                   people: list[LPerson], bots: list[LBot]) -> list[_Spec]:
    """Every channel, by kind: company-wide, help-, team-, project, social, then the private ones."""
    roster = _Roster(rng, teams, people, bots)
    specs = _company_specs(roster)[:n_channels]
    specs += _help_specs(roster, n_channels - len(specs))
    rest = n_channels - len(specs)
    n_team = min(len(teams), int(rest * 0.45))
    n_social = int(rest * 0.2)
    specs += _team_specs(roster, n_team)
    specs += _project_specs(roster, rest - n_team - n_social)
    specs += _social_specs(roster, n_social)
    specs += _private_specs(roster, n_private)
    return specs


def _company_specs(r: _Roster) -> list[_Spec]:
    """The company-wide channels and #random (all planned, so the random stream does not depend on their number)."""
    n, everyone = len(r.people), r.people
    bots_of, teams = r.bots_of, r.teams
    return [
        _Spec("general", "company", "Company-wide announcements and work-based matters",
              {("management", -1): 3, ("smalltalk", -1): 3, ("support", -1): 1, ("infra", -1): 1, **r.some_teams(8)},
              list(everyone), set(), bots=bots_of["alert"][:1], bot_rate=0.01),
        _Spec("engineering", "company", "Everything engineering: infra, web, mobile, data, security",
              {**{(f, -1): 2 for f in ENGINEERING}, ("smalltalk", -1): 1, **r.some_teams(15, ENGINEERING)},
              r.union(r.of_fields(*ENGINEERING, "management"), r.pick(n // 10)), set(),
              bots=bots_of["github"][:1], bot_rate=0.02),
        _Spec("incidents", "company", "Production incidents: page first, then post here",
              {("infra", -1): 3, ("security", -1): 1,
               **{(teams[i].field, i): 1.0 for i in r.teams_of_field.get("infra", [])},
               **r.some_teams(6, ENGINEERING)},
              r.union(r.of_fields("infra", "security"), r.pick(n // 5)), set(),
              bots=bots_of["alert"], bot_rate=0.3),
        _Spec("customer-support", "company", "Escalations from the support queue",
              {("support", -1): 4, ("billing", -1): 3, ("frontend", -1): 1, ("mobile", -1): 1, ("smalltalk", -1): 1,
               **r.some_teams(5)},
              r.union(r.of_fields("support", "billing"), r.pick(n // 6)), set()),
        _Spec("random", "social", "Non-work banter and water cooler conversation",
              {("smalltalk", -1): 6, ("design", -1): 1}, r.pick(int(n * 0.7)), set()),
        _Spec("deploys", "company", "Deploy notifications and release coordination",
              {("infra", -1): 4, ("mobile", -1): 2, ("frontend", -1): 2,
               **r.some_teams(6, ("infra", "frontend", "mobile"))},
              r.union(r.of_fields("infra", "mobile", "frontend"), r.pick(n // 20)), set(),
              bots=bots_of["webhook"], bot_rate=0.45),
    ]


def _help_specs(r: _Roster, room: int) -> list[_Spec]:
    """help-<field> channels (at most `room`): the field's people, its teams as topics."""
    specs = []
    for f in ("infra", "frontend", "data", "mobile", "security", "billing")[:max(room, 0)]:
        topics: dict[Topic, float] = {(f, -1): 2.0, ("smalltalk", -1): 0.3}
        for i in r.teams_of_field.get(f, []):
            topics[(f, i)] = 0.5 + len(r.by_team.get(i, [])) / 10
        specs.append(_Spec(f"help-{f}", "help", f"Ask the {f} folks anything",
                           topics, r.union(r.by_field.get(f, []), r.pick(len(r.people) // 4)),
                           set(r.teams_of_field.get(f, []))))
    return specs


def _team_specs(r: _Roster, n_team: int) -> list[_Spec]:
    """team-<component> channels of the biggest teams: the team plus a few others."""
    specs = []
    bots_of = r.bots_of
    team_order = sorted(range(len(r.teams)), key=lambda i: -len(r.by_team.get(i, [])))
    for i in team_order[:n_team]:
        t = r.teams[i]
        mine = r.by_team.get(i, [])
        extra = r.pick(max(2, len(mine) // 4))
        topics = {(t.field, i): 5.0, ("smalltalk", -1): 1.5}
        for p in mine[:3]:
            if p.second_field:
                topics[(p.second_field, i)] = 1.0
        specs.append(_Spec(f"team-{t.name}", "team", f"The {t.name} team ({t.field})", topics, r.union(mine, extra),
                           {i}, bots=(bots_of["github"] + bots_of["jira"] + bots_of["standup"])[: 1 + i % 3],
                           bot_rate=0.04))
    return specs


def _project_specs(r: _Roster, n_proj: int) -> list[_Spec]:
    """proj-… channels: one to three teams (some of their people) and a few others."""
    rng, teams = r.rng, r.teams
    specs = []
    for j in range(n_proj):
        picked = rng.sample(range(len(teams)), min(len(teams), rng.choice((1, 2, 2, 3))))
        members = r.union(*[[p for p in r.by_team.get(i, []) if rng.random() < 0.6] for i in picked],
                          r.pick(rng.randint(3, 25)))
        if len(members) < 3:
            members = r.union(members, r.pick(3))
        topics = {(teams[i].field, i): 3.0 / (k + 1) for k, i in enumerate(picked)}
        topics[("smalltalk", -1)] = 0.7
        name = f"proj-{teams[picked[0]].name}-{j + 1}"
        specs.append(_Spec(name, "project", f"Project {j + 1}: {', '.join(teams[i].name for i in picked)}",
                           topics, members, set(picked), bots=r.bots_of["jira"][: j % 2], bot_rate=0.03 * (j % 2)))
    return specs


def _social_specs(r: _Roster, n_social: int) -> list[_Spec]:
    """social-<hobby> channels: small talk, Pareto-sized."""
    specs = []
    n = len(r.people)
    for j in range(n_social):
        hobby = HOBBIES[j % len(HOBBIES)]
        name = f"social-{hobby}" if j < len(HOBBIES) else f"social-{hobby}-{j // len(HOBBIES) + 1}"
        size = min(n, max(3, int(r.rng.paretovariate(1.2) * 8)))
        specs.append(_Spec(name, "social", f"All things {hobby}", {("smalltalk", -1): 1.0}, r.pick(size), set()))
    return specs


def _private_specs(r: _Roster, n_private: int) -> list[_Spec]:
    """#leadership, then private team channels (groups.json)."""
    rng, teams = r.rng, r.teams
    leaders = r.of_fields("management")
    specs = [_Spec("leadership", "private", "Private: planning, hiring, incidents that need discretion",
                   {("management", -1): 4, ("security", -1): 2, ("billing", -1): 1, ("support", -1): 1},
                   r.union(leaders[:20], r.pick(5, r.of_fields("security", "billing", "support"))),
                   set(), private=True)]
    for j in range(n_private - 1):
        i = rng.randrange(len(teams))
        mine = r.by_team.get(i, [])
        members = [p for p in mine if rng.random() < 0.5] or mine[:2]
        if len(members) < 2:
            members = r.union(members, r.pick(2))
        specs.append(_Spec(f"priv-{teams[i].name}-{j + 1}", "private", "Private team channel",
                           {(teams[i].field, i): 3.0, ("smalltalk", -1): 2.0}, members, {i}, private=True))
    return specs


#: How likely each kind is to be busy (smaller = busier); the channel's rank in traffic is drawn from it.
_KIND_RANK = {"company": 0.03, "help": 0.25, "team": 1.0, "project": 1.4, "social": 2.2, "private": 1.6}


def build_large_workspace(seed: int, n_people: int = LARGE.defaults.people, n_channels: int = LARGE.defaults.channels,
                          days: int = LARGE.defaults.days) -> LargeWorkspace:
    """Plan the large workspace for `seed`."""
    if n_people < LARGE.min_people:
        raise ValueError(f"--people must be at least {LARGE.min_people} for --profile large (got {n_people}).")
    if n_channels < 1:
        raise ValueError(f"--channels must be at least 1 (got {n_channels}).")
    if days < 1:
        raise ValueError(f"--days must be at least 1 (got {days}).")
    rng = random.Random(f"beep-large:{seed}:workspace")
    team_id = slack_id(rng, "T", 9)
    teams = _teams(rng, n_people)
    people = _people(rng, n_people, teams, days)
    n_bots = min(len(LARGE_BOTS), max(4, n_people // 150))
    bots = [LBot(user_id=slack_id(rng, "U"), bot_id=slack_id(rng, "B"), name=nm, real_name=rn, style=st)
            for nm, rn, st in LARGE_BOTS[:n_bots]]
    n_private = max(1, n_channels // 30)
    specs = _channel_specs(rng, n_channels, n_private, teams, people, bots)
    keys = [rng.random() * _KIND_RANK[s.kind] for s in specs]
    rank_of = {i: r for r, i in enumerate(sorted(range(len(specs)), key=lambda i: keys[i]), start=1)}
    start_epoch = epoch_of(START_DAY)
    channels = [_plan_channel(rng, index, spec, (rank_of[index] + 1.5) ** -1.15, start_epoch, days)
                for index, spec in enumerate(specs)]
    ws = LargeWorkspace(team_id=team_id, domain="acme-corp", teams=tuple(teams), people=tuple(people),
                        bots=tuple(bots), channels=tuple(channels), start_epoch=start_epoch, days=days)
    ws.by_id.update({p.user_id: p for p in people})
    return ws


def _plan_channel(rng: random.Random, index: int, s: _Spec, share: float, start_epoch: int, days: int) -> LChannel:
    """A channel from its spec: when it was created (and archived), each member's weight, join and leave day."""
    member_ids: list[str] = []
    weights: list[float] = []
    joins: list[int] = []
    leaves: list[int] = []
    created_day = -rng.randint(30, 900) if (s.kind in ("company", "help") or rng.random() < 0.85 or days < 60) \
        else rng.randint(1, int(days * 0.8))
    for p in s.members:
        w = p.activity * rng.lognormvariate(0.0, 0.5)
        if p.team in s.home_teams:
            w *= 3.0
        if any(f in (p.field, p.second_field) for f, _ in s.topics):
            w *= 1.5
        join = max(created_day, p.start_day if p.start_day > 0 else -1)
        if join <= 0 and days > 30 and rng.random() < 0.05:
            join = rng.randint(1, days - 1)  # joined this channel later on
        leave = days + 1
        if days > 30 and rng.random() < 0.01:
            leave = rng.randint(max(join, 0) + 1, days + 1)
        member_ids.append(p.user_id)
        weights.append(round(w, 6))
        joins.append(join)
        leaves.append(min(leave, p.end_day))
    archived_day = days
    if s.kind in ("project", "social") and days > 60 and rng.random() < 0.05:
        archived_day = rng.randint(max(created_day, 0) + 20, days)
    creator = rng.choice(member_ids)
    created = start_epoch + created_day * 86400 + 9 * 3600 + rng.randint(0, 3000)
    return LChannel(
        channel_id=slack_id(rng, "G" if s.private else "C"), name=s.name, kind=s.kind, purpose=s.purpose,
        topic=_topic_line(s.name, s.kind), is_private=s.private, topics=tuple(s.topics.items()),
        members=tuple(member_ids), member_weights=tuple(weights), join_day=tuple(joins), leave_day=tuple(leaves),
        bots=tuple(s.bots), bot_rate=s.bot_rate if s.bots else 0.0, share=share,
        day_density=round(rng.lognormvariate(0.0, 0.3), 3), interleave=min(0.45, share * 8), creator=creator,
        created=created, created_day=created_day, archived_day=archived_day, index=index,
    )


def _topic_line(name: str, kind: str) -> str:
    return {
        "general": "Be kind. Announcements go here.", "engineering": "On call this week: see the pinned rota",
        "incidents": "SEV1? page #oncall first", "customer-support": "P1s: page on-call, then post here",
        "random": "🍕 & memes", "deploys": "Freeze on Fridays after 3pm", "leadership": "Confidential",
    }.get(name, {"help": "Ask away, threads please", "team": "Standup 9:30, retro Fridays",
                 "social": "Off-topic welcome"}.get(kind, f"Work on {name}"))


def large_users_json(ws: LargeWorkspace) -> list[dict[str, Any]]:
    """users.json: the humans (some deactivated), the bots and Slackbot."""
    out: list[dict[str, Any]] = []
    for p in ws.people:
        first, last = p.real_name.split(" ", 1)
        tz, tz_label, tz_offset = TIMEZONES[p.tz]
        team = ws.teams[p.team].name
        display = "" if p.avatar_hash[0] in "0123" else p.real_name  # a quarter leave it empty (Slack shows the real name)
        out.append({
            "id": p.user_id, "team_id": ws.team_id, "name": p.name, "deleted": p.deleted, "color": "9f69e7",
            "real_name": p.real_name, "tz": tz, "tz_label": tz_label, "tz_offset": tz_offset,
            "profile": {
                "title": f"{p.field.capitalize()}, {team}", "phone": "", "skype": "", "real_name": p.real_name,
                "real_name_normalized": p.real_name, "display_name": display, "display_name_normalized": display,
                "status_text": "", "status_emoji": "", "avatar_hash": p.avatar_hash,
                "email": f"{p.name}@acme.io", "first_name": first, "last_name": last,
                "image_72": f"https://avatars.slack-edge.com/2024-01-01/{p.avatar_hash}_72.png", "team": ws.team_id,
            },
            "is_admin": p.field == "management", "is_owner": False, "is_primary_owner": False,
            "is_restricted": False, "is_ultra_restricted": False, "is_bot": False, "is_app_user": False,
            "updated": ws.start_epoch + (p.end_day if p.deleted else 0) * 86400 - 86400,
        })
    out.extend(bot_users_json(ws.team_id, ws.bots, ws.start_epoch))
    out.append(slackbot_json(ws.team_id, ws.slackbot_id))
    return out


def large_channels_json(ws: LargeWorkspace, private: bool) -> list[dict[str, Any]]:
    """channels.json (public) or groups.json (private); members as at the export's end."""
    out = []
    for c in ws.channels:
        if c.is_private != private:
            continue
        members = [u for u, leave in zip(c.members, c.leave_day) if leave >= ws.days and not ws.person(u).deleted]
        out.append(channel_json(c, members + list(c.bots), c.archived_day < ws.days))
    return out

