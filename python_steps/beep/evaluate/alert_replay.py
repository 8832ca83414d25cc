"""The alert replay: the decision `beep slack serve` makes, replayed on history and scored.

At every usable message of a period (the moments the app decides), each ranker (the model, and
every baseline) ranks people with what was known right after that message; the app's own policy
(:func:`beep.slack.alerts.decide`, the same code `beep slack serve` runs) turns the ranking into
alerts at a threshold: never the author, people already in the conversation or people Slack itself
notifies (mentioned in the last ``context_messages`` messages; in a thread its participants and
parent author are in the conversation), once per conversation and person, at most
``max_alerts_per_hour`` a person (and one a person per channel in ``same_channel_minutes`` when set; off
by default, as in serve).

What happened next scores it (docs/evaluation.md, "The alert replay"):

- an alert is **useful** when its person writes in that conversation within ``alert_window`` after it;
- a **join** is a person's first message in a conversation someone else started; **recall** is the
  share of the period's joins whose person was alerted about that conversation at most
  ``alert_window`` before joining;
- **alerts per person per day**: alerts / (people who wrote in the period × the period's days).

The curve is computed over a grid of thresholds on two periods: the newest part of the train period
(``tune``), where the **operating point** is chosen (the lowest threshold whose precision reaches
``target_precision``, each ranker its own), and the evaluated period, where it is reported.
"""

from __future__ import annotations

import bisect
import heapq
import math
import operator
import sys
from collections import Counter, deque
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb

from beep.config import PROJECT_DIR
from beep.evaluate.alert_head import TRAIN_MOMENTS, AlertHead, collect
from beep.rules.project_vars import load_project_vars
from beep.slack.alerts import HOUR, AlertPolicy, Ledger, Person, decide, notified_by_slack
from beep.slack.preview import people_in_duckdb

#: The thresholds (min_probability) the curve is computed at.
THRESHOLDS: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
                                 0.6, 0.7, 0.8, 0.9)
#: People ranked per moment (as the app asks the model for).
TOP = 20
#: The baselines replayed through the same policy: people by their share of the channel's messages
#: so far, and of the workspace's.
CHANNEL_REGULARS = "baseline: channel regulars"
WORKSPACE_REGULARS = "baseline: workspace regulars"
BASELINES = (CHANNEL_REGULARS, WORKSPACE_REGULARS)
#: A baseline's top list is recomputed after this many new messages in its channel (workspace: x10).
_REFRESH = 25
#: An operating point needs at least this many alerts in the tune period to count as reached.
MIN_ALERTS = 5
#: What an alerted person did (an alert's outcome): wrote in the conversation within the window,
#: else reacted to one of its messages, else nothing. The first two make the alert useful.
JOINED, REACTED, NOTHING = "joined", "reacted", "nothing"
#: Alerts kept per ranker (its operating point, evaluated period; evenly spread in time) for the report.
SAMPLE_ALERTS = 200


@dataclass(frozen=True)
class ReplaySettings:
    """How the replay scores alerts and picks the operating point."""

    alert_window_minutes: float = 60.0
    target_precision: float = 0.5
    tune_fraction: float = 0.2  # the newest share of the train period's time span that tunes the threshold
    #: Slack notifies the people mentioned in this many last messages: the dataset's context_messages,
    #: dbt_project.yml's through the vars loader (`beep evaluate` passes the vars the dataset was built with)
    context_messages: int = field(default_factory=lambda: load_project_vars(PROJECT_DIR).context_messages)
    #: the app's policy; min_probability is replaced by each threshold of the grid. Quiet hours are off:
    #: the export rarely holds people's time zones (serve applies them live).
    policy: AlertPolicy = field(default_factory=lambda: AlertPolicy(quiet_hours=None))
    thresholds: tuple[float, ...] = THRESHOLDS


@dataclass(frozen=True)
class Moment:
    """A usable message: where the app decides."""

    key: str  # "<conversation_id>#<position>"
    conversation_id: str
    position: int
    at: float
    channel: str
    author: str
    period: str  # tune | evaluated


@dataclass
class CurvePoint:
    model: str
    period: str
    min_probability: float
    alerts: int = 0
    useful: int = 0
    joins: int = 0
    joins_alerted: int = 0
    people: int = 0
    days: float = 0.0

    @property
    def precision(self) -> float | None:
        return self.useful / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.joins_alerted / self.joins if self.joins else None

    @property
    def alerts_per_person_day(self) -> float | None:
        return self.alerts / (self.people * self.days) if self.people and self.days else None


@dataclass
class OperatingPoint:
    model: str
    min_probability: float
    reached: bool  # the tune period's precision reached the target at this threshold
    tune: CurvePoint
    evaluated: CurvePoint


@dataclass(frozen=True)
class SentAlert:
    """One alert the policy sent in the replay, and what its person did."""

    model: str
    min_probability: float
    at: float
    conversation_id: str
    channel: str
    person_id: str
    probability: float
    reason: str | None
    outcome: str  # JOINED | REACTED | NOTHING


@dataclass
class ReplayResult:
    curve: list[CurvePoint]
    operating: dict[str, OperatingPoint]
    n_moments: dict[str, int]
    periods: dict[str, tuple[float, float]]
    seconds: float = 0.0
    #: a sample (at most SAMPLE_ALERTS a ranker, evenly spread) of each ranker's alerts at its
    #: operating point on the evaluated period, time order
    alerts: list[SentAlert] = field(default_factory=list)
    #: each ranker's passes over the evaluated period as of ``passes_at`` (:class:`PassState`, by
    #: threshold), for a later run to resume from, and the conversations they keep the ledger of
    passes: dict[str, dict[float, PassState]] = field(default_factory=dict)
    passes_at: float | None = None
    passes_open: frozenset[str] = frozenset()
    #: the rankers whose passes over the evaluated period resumed from an earlier run's states
    resumed: tuple[str, ...] = ()


#: A pass's state keeps the ledger's alerts of the conversations with a moment in this many seconds
#: before it (those a new day may go on with); a conversation older than that with a moment after it
#: makes a later run pass over every moment again.
OPEN_SECONDS = 86400.0


@dataclass
class PassState:
    """One pass of the policy (a ranker, a threshold, the evaluated period) up to the moment ``at``: what a
    later run whose moments and rankings before ``at`` are the same resumes from (:func:`_score`) instead
    of passing over them again. Alerts sent before ``at - window`` are settled (their outcomes read only
    messages before ``at``); the later ones are kept, to be scored with the messages of the later run."""

    at: float
    alerts: int  # settled alerts (sent before at - window), and how many of them were useful
    useful: int
    pending: list[tuple[str, str, float]]  # (conversation, person, when) of the alerts in [at - window, at)
    joins: int  # joins before at, and how many of them were alerted before they happened
    joins_alerted: int
    alerted: list[tuple[str, str]]  # the ledger's (conversation, person) pairs of the open conversations
    sent_times: dict[str, list[float]]  # the ledger's alerts of each person in the hour before at
    channel_alerts: dict[tuple[str, str], float]  # the ledger's last alert per (person, channel)


# -- the workspace as the replay reads it ------------------------------------------------------

@dataclass
class _Stream:
    """Every usable message (time order) and what the scoring needs."""

    rows: list[tuple[str, int, float, str, str, tuple[str, ...]]]  # conversation, position, at, user, channel, mentions
    times_by: dict[tuple[str, str], list[float]]  # (conversation, user) -> message times, sorted
    starter: dict[str, str]  # conversation -> its first message's author
    #: (conversation, user) -> times of the conversation's messages the user reacted to, sorted (an
    #: export's reactions carry no time of their own)
    reacted_by: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def acted(self, conv: str, person: str, at: float, window: float) -> bool:
        """Whether ``person`` wrote in ``conv`` within ``window`` after ``at``, or reacted to one of its
        messages written within ``window`` around ``at`` (when they reacted is not in an export)."""
        return self.outcome(conv, person, at, window) != NOTHING

    def outcome(self, conv: str, person: str, at: float, window: float) -> str:
        """What ``person`` did about ``conv`` after an alert at ``at``: JOINED (wrote in it within
        ``window``), else REACTED (reacted to one of its messages written within ``window`` around
        ``at``), else NOTHING."""
        times = self.times_by.get((conv, person), ())
        i = bisect.bisect_right(times, at)
        if i < len(times) and times[i] <= at + window:
            return JOINED
        reacted = self.reacted_by.get((conv, person))
        if not reacted:
            return NOTHING
        j = bisect.bisect_right(reacted, at - window)
        return REACTED if j < len(reacted) and reacted[j] <= at + window else NOTHING


def _load_stream(con: duckdb.DuckDBPyConnection, until: float) -> _Stream:
    rows = con.execute(
        """
        select conversation_id, position, epoch(message_at), user_id, coalesce(channel_id, channel_folder),
               coalesce(mentioned_user_ids, [])
        from int_conversations
        where user_id is not null and epoch(message_at) <= ?
        order by message_at, ts, conversation_id
        """,
        [until],
    ).fetchall()
    out: list[tuple[str, int, float, str, str, tuple[str, ...]]] = []
    times_by: dict[tuple[str, str], list[float]] = {}
    starter: dict[str, str] = {}
    for conv, pos, at, user, channel, mentions in rows:
        out.append((str(conv), int(pos), float(at), str(user), str(channel), tuple(str(m) for m in mentions or ())))
        times_by.setdefault((str(conv), str(user)), []).append(float(at))
        starter.setdefault(str(conv), str(user))  # the conversation's first message in time order
    reacted_by: dict[tuple[str, str], list[float]] = {}
    try:
        reactions = con.execute(
            """
            select c.conversation_id, r.user_id, epoch(c.message_at)
            from stg_slack__reactions r
            inner join int_conversations c on c.channel_folder = r.channel_folder and c.ts = r.ts
            where epoch(c.message_at) <= ? and r.user_id is not null
            order by 3
            """,
            [until],
        ).fetchall()
    except duckdb.Error:  # a dataset built before the reaction models
        reactions = []
    for conv, user, at in reactions:
        reacted_by.setdefault((str(conv), str(user)), []).append(float(at))
    return _Stream(out, times_by, starter, reacted_by)


def periods_of_export(con: duckdb.DuckDBPyConnection, export_id: str, split: str,
                      tune_fraction: float) -> dict[str, tuple[float, float]]:
    """(start, end) in epoch seconds of the evaluated period (the split's targets) and of the tune
    period (the newest ``tune_fraction`` of the train split's time span)."""
    rows = dict(
        (s, (lo, hi)) for s, lo, hi in con.execute(
            """
            select ee.split, min(epoch(te.target_at)), max(epoch(te.target_at))
            from export_examples ee inner join training_examples te on te.example_id = ee.example_id
            where ee.export_id = ? group by ee.split
            """,
            [export_id],
        ).fetchall()
    )
    out: dict[str, tuple[float, float]] = {}
    if split in rows and rows[split][0] is not None:
        out["evaluated"] = (float(rows[split][0]), float(rows[split][1]))
    if split != "train" and "train" in rows and rows["train"][0] is not None:
        lo, hi = float(rows["train"][0]), float(rows["train"][1])
        out["tune"] = (hi - (hi - lo) * tune_fraction, hi)
        out["head"] = (lo, out["tune"][0] - 1e-6)  # the alert head learns here (its newest moments)
    return out


def _people(con: duckdb.DuckDBPyConnection) -> dict[str, Person]:
    return people_in_duckdb(con)


# -- rankers -----------------------------------------------------------------------------------

Ranking = tuple[tuple[str, float], ...]  # (person, probability), best first
#: a ranking as the policy reads it: (person, probability, reason), best first (:func:`_candidates`)
Candidates = tuple[tuple[str, float, str | None], ...]
Rankers = dict[str, dict[str, Ranking]]  # ranker name -> moment key -> ranking


def baseline_rankings(stream: _Stream, moments: Mapping[str, Moment], top: int = TOP) -> Rankers:
    """The baselines' rankings at each moment: people by their share of the channel's (workspace's)
    messages up to and including that message."""
    channel_counts: dict[str, Counter[str]] = {}
    channel_totals: Counter[str] = Counter()
    channel_cache: dict[str, tuple[int, Ranking]] = {}
    workspace: Counter[str] = Counter()
    workspace_cache: tuple[int, Ranking] = (-10**9, ())
    total = 0
    out: Rankers = {CHANNEL_REGULARS: {}, WORKSPACE_REGULARS: {}}
    for conv, pos, _at, user, channel, _mentions in stream.rows:
        counts = channel_counts.setdefault(channel, Counter())
        counts[user] += 1
        channel_totals[channel] += 1
        workspace[user] += 1
        total += 1
        key = f"{conv}#{pos}"
        if key not in moments:
            continue
        n = channel_totals[channel]
        cached = channel_cache.get(channel)
        if cached is None or n - cached[0] >= _REFRESH:
            best = heapq.nlargest(top + 5, counts.items(), key=lambda kv: (kv[1], kv[0]))
            cached = (n, tuple((u, c / n) for u, c in best))
            channel_cache[channel] = cached
        out[CHANNEL_REGULARS][key] = cached[1]
        if total - workspace_cache[0] >= _REFRESH * 10:
            best = heapq.nlargest(top + 5, workspace.items(), key=lambda kv: (kv[1], kv[0]))
            workspace_cache = (total, tuple((u, c / total) for u, c in best))
        out[WORKSPACE_REGULARS][key] = workspace_cache[1]
    return out


# -- the policy and the outcome ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Seen:
    """Who, at a moment, the policy never alerts: the conversation's participants so far, and the
    people Slack notifies (beep.slack.alerts.notified_by_slack over the last messages' mentions)."""

    participants: frozenset[str]
    notified: frozenset[str]


def _seen_at_moments(stream: _Stream, moments: Mapping[str, Moment], context_messages: int) -> dict[str, _Seen]:
    participants: dict[str, set[str]] = {}
    recent_mentions: dict[str, list[tuple[str, ...]]] = {}
    out: dict[str, _Seen] = {}
    # the moments of a conversation share one frozen set of participants until someone new writes (sets
    # only grow), and every moment without a mention shares one empty set: one object per change, not
    # per moment (365,784 moments at 1,000,000 messages)
    frozen: dict[str, frozenset[str]] = {}
    nobody: frozenset[str] = frozenset()
    for conv, pos, _at, user, _channel, mentions in stream.rows:
        members = participants.setdefault(conv, set())
        members.add(user)
        window = recent_mentions.setdefault(conv, [])
        window.append(mentions)
        if len(window) > context_messages:
            del window[0]
        key = f"{conv}#{pos}"
        if key in moments:
            now = frozen.get(conv)
            if now is None or len(now) != len(members):
                now = frozen[conv] = frozenset(members)
            out[key] = _Seen(now, notified_by_slack(window) or nobody)
    return out


def _candidates(rankers: Rankers, seen: Mapping[str, _Seen], floor: float,
                only: Container[str] | None = None) -> dict[str, dict[str, Candidates]]:
    """Each ranking without the people no threshold lets through (the policy's exclusions, scores
    below the grid's lowest threshold): the same decisions, fewer rows for :func:`decide` to skip.
    Each person comes as :func:`decide` takes them, (person, probability, reason), the reason None
    (:func:`_score` adds the reasons where it keeps the alerts), best first (a stable sort: people of
    equal probability keep the ranking's order): built once, not at every pass. ``only``: the moments
    some pass reads (the others are left out)."""
    empty = _Seen(frozenset(), frozenset())
    probability = operator.itemgetter(1)
    out: dict[str, dict[str, Candidates]] = {}
    for name, by_key in rankers.items():
        candidates: dict[str, Candidates] = {}
        for key, ranking in by_key.items():
            if only is not None and key not in only:
                continue
            at = seen.get(key, empty)  # once a moment, not twice a person (7.8 s of a 1M-message replay)
            inside, notified = at.participants, at.notified
            candidates[key] = tuple(sorted(((u, p, None) for u, p in ranking
                                            if p >= floor and u not in inside and u not in notified),
                                           key=probability, reverse=True))
        out[name] = candidates
    return out


def _reason_of(model: str, reasons: Callable[[str, str], str | None] | None) -> Callable[[str, str, float], str | None]:
    """The reason an alert of ``model`` gives (as the app's DM would): the ranker's own, where it
    gave them; the baselines' share of messages."""
    if model == CHANNEL_REGULARS:
        return lambda _k, _u, p: f"one of the channel's regulars ({p:.0%} of its messages so far)"
    if model == WORKSPACE_REGULARS:
        return lambda _k, _u, p: f"one of the workspace's regulars ({p:.0%} of its messages so far)"
    if reasons is None:
        return lambda _k, _u, _p: None
    return lambda k, u, _p: reasons(k, u)


#: A moment a pass reads: the moment, its candidates (best first), who the policy never alerts there, and
#: how many of the candidates reach the pass's threshold (:func:`_at_threshold` lowers it pass by pass).
_Entry = list[Any]


def _entries(moments: Sequence[Moment], ranking: Mapping[str, Candidates], seen: Mapping[str, _Seen]) -> list[_Entry]:
    """The moments with a candidate, each joined once with its candidates and its seen-set (a pass then
    makes no lookup by key: ~10^6 moments are read per replay)."""
    out: list[_Entry] = []
    for moment in moments:
        ranked = ranking.get(moment.key)
        if ranked:
            out.append([moment, ranked, seen[moment.key], len(ranked)])
    return out


def _at_threshold(entries: list[_Entry], threshold: float) -> list[_Entry]:
    """The entries where someone reaches ``threshold``, each cut to the candidates who do. Thresholds
    must come in ascending order (each call scans down from the last one's cut): over the whole grid
    each candidate is passed over once."""
    out: list[_Entry] = []
    for entry in entries:
        ranked, n = entry[1], entry[3]
        while n and ranked[n - 1][1] < threshold:
            n -= 1
        if n:
            entry[3] = n
            out.append(entry)
    return out


def _score(stream: _Stream, entries: Sequence[_Entry], people: Mapping[str, Person], policy: AlertPolicy,
           threshold: float, window: float, joins: Sequence[tuple[str, str, float]], model: str, period: str,
           n_people: int, days: float, keep: list[SentAlert] | None = None,
           reason: Callable[[str, str, float], str | None] = lambda _k, _u, _p: None,
           outcomes: dict[tuple[tuple[str, str], float], str] | None = None,
           resume: PassState | None = None, snapshot: tuple[float, frozenset[str]] | None = None,
           taken: list[PassState] | None = None) -> CurvePoint:
    """The curve point at ``threshold`` of the moments ``entries`` (:func:`_at_threshold` at this
    threshold: each with the candidates who reach it); with ``keep``, every alert sent is appended to
    it (with its reason and outcome). ``outcomes`` memoizes :meth:`_Stream.outcome` across the passes
    of one ranking over one period (the same alert recurs at many thresholds).

    ``resume``: the pass's state at a moment before which ``entries`` hold nothing (an earlier run's, on
    the same moments and rankings up to it): the pass goes on from it, and gives the point a pass over
    every moment gives. ``snapshot`` (at, the open conversations): the pass's state at ``at`` is appended
    to ``taken``."""
    point = CurvePoint(model, period, threshold, people=n_people, days=days)
    ledger = Ledger()
    at_policy = replace(policy, min_probability=threshold, dry_run=False)
    alerted: dict[tuple[str, str], list[float]] = {}
    outcomes = {} if outcomes is None else outcomes
    n_alerts = n_useful = 0  # (counted in locals: ~10^6 alerts per replay)
    # the alerts of the last window (pair, when, useful): what a state keeps unsettled
    recent: deque[tuple[tuple[str, str], float, bool]] | None = deque() if snapshot is not None else None
    settled_joins = settled_alerted = 0
    joins_from = -math.inf
    if resume is not None:
        ledger.alerted.update(resume.alerted)
        for person, times in resume.sent_times.items():
            ledger.sent_times[person] = deque(times)
        ledger.channel_alerts.update(resume.channel_alerts)
        n_alerts, n_useful = resume.alerts, resume.useful
        for conv, person, when in resume.pending:
            pair = (conv, person)
            alerted.setdefault(pair, []).append(when)
            key = (pair, when)
            outcome = outcomes.get(key)
            if outcome is None:
                outcome = outcomes[key] = stream.outcome(conv, person, when, window)
            n_alerts += 1
            n_useful += outcome != NOTHING
            if recent is not None:
                recent.append((pair, when, outcome != NOTHING))
        settled_joins, settled_alerted, joins_from = resume.joins, resume.joins_alerted, resume.at

    def joined(until: float) -> tuple[int, int]:
        """(joins, of them alerted before they happened) before ``until``: the settled ones, and those
        from ``joins_from`` on."""
        n, hit = settled_joins, settled_alerted
        for conv, user, joined_at in joins:
            if joins_from <= joined_at < until:
                n += 1
                if any(t < joined_at <= t + window for t in alerted.get((conv, user), ())):
                    hit += 1
        return n, hit

    def take(at: float) -> None:
        assert snapshot is not None and recent is not None and taken is not None
        pending = [(pair, when, useful) for pair, when, useful in recent if when >= at - window]
        n_joins, n_hit = joined(at)
        is_open = snapshot[1]
        taken.append(PassState(
            at, n_alerts - len(pending), n_useful - sum(useful for _, _, useful in pending),
            [(pair[0], pair[1], when) for pair, when, _ in pending], n_joins, n_hit,
            [pair for pair in ledger.alerted if pair[0] in is_open],
            {person: [t for t in times if t > at - HOUR] for person, times in ledger.sent_times.items()
             if times and times[-1] > at - HOUR},
            dict(ledger.channel_alerts) if at_policy.same_channel_minutes else {}))

    for moment, ranked, at, n in entries:
        if snapshot is not None and not taken and moment.at >= snapshot[0]:
            take(snapshot[0])
        if n < len(ranked):
            ranked = ranked[:n]
        if keep is not None:
            ranked = tuple((u, p, reason(moment.key, u, p)) for u, p, _r in ranked)
        when = moment.at
        for d in decide(ranked, conversation_id=moment.conversation_id, participants=at.participants,
                        author=moment.author, people=people, ledger=ledger, policy=at_policy, now=when,
                        notified=at.notified, with_suppressed=False):
            if d.status != "sending":
                continue
            n_alerts += 1
            pair = (d.conversation_id, d.person_id)
            times = alerted.get(pair)
            if times is None:
                alerted[pair] = [when]
            else:
                times.append(when)
            key = (pair, when)
            outcome = outcomes.get(key)
            if outcome is None:
                outcome = outcomes[key] = stream.outcome(pair[0], pair[1], when, window)
            if outcome != NOTHING:
                n_useful += 1
            if recent is not None:
                recent.append((pair, when, outcome != NOTHING))
                while recent[0][1] < when - window:
                    recent.popleft()
            if keep is not None:
                keep.append(SentAlert(model, threshold, when, moment.conversation_id, moment.channel,
                                      d.person_id, d.probability, d.reason, outcome))
    if snapshot is not None and not taken:
        take(snapshot[0])
    point.alerts, point.useful = n_alerts, n_useful
    point.joins, point.joins_alerted = joined(math.inf)
    return point


def _joins(stream: _Stream, start: float, end: float) -> list[tuple[str, str, float]]:
    """(conversation, person, when) of each join in [start, end]: a person's first message in a
    conversation someone else started."""
    out = []
    for (conv, user), times in stream.times_by.items():
        first = times[0]
        if start <= first <= end and stream.starter.get(conv) not in (None, user):
            out.append((conv, user, first))
    return out


def choose_operating_point(tune: Sequence[CurvePoint], target: float) -> tuple[float, bool]:
    """The lowest threshold whose tune precision reaches ``target`` (with at least MIN_ALERTS alerts);
    when none does, the threshold of the best precision (reached False)."""
    ordered = sorted(tune, key=lambda c: c.min_probability)
    for point in ordered:
        if point.alerts >= MIN_ALERTS and point.precision is not None and point.precision >= target:
            return point.min_probability, True
    scored = [p for p in ordered if p.alerts >= MIN_ALERTS and p.precision is not None]
    if not scored:
        return ordered[-1].min_probability if ordered else 0.5, False
    best = max(scored, key=lambda p: (p.precision, -p.min_probability))
    return best.min_probability, False


def _train_head(stream: _Stream, head_moments: Sequence[Moment], rankings: Mapping[str, Ranking],
                seen: Mapping[str, _Seen], window: float, say: Callable[[str], None]) -> AlertHead:
    """The alert head (beep.evaluate.alert_head) trained on the moments before the tune period."""
    wanted = {m.key: m for m in head_moments}

    def label(conv: str, person: str, at: float) -> int:
        return int(stream.acted(conv, person, at, window))

    data = collect(stream.rows, wanted, rankings, lambda k: (seen[k].participants, seen[k].notified), label)
    head = AlertHead().fit(data)
    say(f"alert head: {head.report}")
    return head


def replay_alerts(con: duckdb.DuckDBPyConnection, periods: Mapping[str, tuple[float, float]],
                  model_rankings: Callable[[Sequence[Moment]], Mapping[str, Ranking]] | None, model_name: str | None,
                  settings: ReplaySettings = ReplaySettings(),
                  say: Callable[[str], None] = lambda _m: None, with_head: bool = True,
                  kept_tune: Mapping[str, Sequence[CurvePoint]] | None = None,
                  passes: KeptPasses | None = None, snapshot_at: float | None = None) -> ReplayResult:
    """The curve of every ranker (the model when ``model_rankings`` is given, and the baselines) on
    each period, and each ranker's operating point. ``model_rankings(moments)`` returns the model's
    ranking (person, probability; best first) at each moment's key, ranked right after that message.
    ``kept_tune``: a ranker's tune-period curve an earlier run computed on the same moments, rankings
    and outcomes (:func:`kept_tune_curve`): its passes over the tune period are not made again.
    ``passes``: the states of an earlier run's passes over the evaluated period, on the same moments,
    rankings and outcomes up to their moment (:func:`kept_passes`): a ranker's passes go on from them
    where every conversation a later moment is in is one they keep. ``snapshot_at``: the moment of the
    states this replay keeps for a later one (ReplayResult.passes)."""
    import time

    started = time.monotonic()
    until = max(end for _, end in periods.values())
    stream = _load_stream(con, until)
    moments: list[Moment] = []
    for conv, pos, at, user, channel, _m in stream.rows:
        for period, (lo, hi) in periods.items():
            if lo <= at <= hi:
                moments.append(Moment(f"{conv}#{pos}", conv, pos, at, channel, user, period))
                break
    head_moments = [m for m in moments if m.period == "head"][-TRAIN_MOMENTS:] if with_head else []
    moments = [m for m in moments if m.period != "head"]
    by_key = {m.key: m for m in moments}
    n_moments = Counter(m.period for m in moments)
    say(f"alert replay: {len(moments):,} moments ({', '.join(f'{p} {n:,}' for p, n in n_moments.items())})")
    rankers: Rankers = baseline_rankings(stream, by_key)
    window = settings.alert_window_minutes * 60.0
    seen = _seen_at_moments(stream, {**by_key, **{m.key: m for m in head_moments}}, settings.context_messages)
    model_reasons: Callable[[str, str], str | None] | None = None
    if model_rankings is not None and model_name:
        everything = dict(model_rankings(head_moments + moments))
        model_reasons = getattr(model_rankings, "reason", None)
        rankers = {model_name: {k: v for k, v in everything.items() if k in by_key}, **rankers}
        if head_moments:
            head = _train_head(stream, head_moments, everything, seen, window, say)
            if head.model is not None:
                data = collect(stream.rows, by_key, everything, lambda k: (seen[k].participants, seen[k].notified), None)
                rankers = {model_name: rankers[model_name], f"{model_name} + alert head": head.rankings(data),
                           **{k: v for k, v in rankers.items() if k != model_name}}
    people = _people(con)
    scored = {period: bounds for period, bounds in periods.items() if period != "head"}
    in_period = {period: [m for m in moments if m.period == period] for period in scored}
    kept_tune = {name: points for name, points in (kept_tune or {}).items()
                 if name in rankers and sorted(p.min_probability for p in points) == sorted(settings.thresholds)}
    joins = {period: _joins(stream, lo, hi) if period != "tune" or set(rankers) - set(kept_tune) else []
             for period, (lo, hi) in scored.items()}
    curve: list[CurvePoint] = []
    operating: dict[str, OperatingPoint] = {}
    sample: list[SentAlert] = []
    evaluated_moments = in_period.get("evaluated", [])
    evaluated_keys = {m.key for m in evaluated_moments}
    if snapshot_at is not None and not any(m.at < snapshot_at for m in evaluated_moments):
        snapshot_at = None
    is_open = frozenset(m.conversation_id for m in evaluated_moments
                        if snapshot_at is not None and snapshot_at - OPEN_SECONDS <= m.at < snapshot_at)
    resume_at = _resume_at(passes, evaluated_moments, snapshot_at, settings.thresholds)
    later = [m for m in evaluated_moments if m.at >= resume_at] if resume_at is not None else evaluated_moments
    states: dict[str, dict[float, PassState]] = {}
    resumed: list[str] = []
    for name in list(rankers):
        # one ranker's candidates at a time (each a copy of its rankings: at 1,000,000 messages the
        # three rankers' together held about 1 GB), dropped once its passes are done
        # (a ranker whose tune-period curve is kept passes over the evaluated period only)
        outsiders = _candidates({name: rankers[name]}, seen, min(settings.thresholds),
                                evaluated_keys if name in kept_tune else None)[name]
        points: list[CurvePoint] = []
        for period, (lo, hi) in scored.items():
            n_people = len({m.author for m in in_period[period]})
            days = max((hi - lo) / 86400.0, 1.0 / 24)
            if period == "tune" and name in kept_tune:
                points += [replace(p, model=name, period=period, people=n_people, days=days)
                           for p in sorted(kept_tune[name], key=lambda p: p.min_probability)]
                continue
            outcomes: dict[tuple[tuple[str, str], float], str] = {}
            # the evaluated period's passes go on from an earlier run's states when there are some, and
            # keep theirs for a later run
            kept = passes.states.get(name) if passes is not None and resume_at is not None and period == "evaluated" else None
            snapshot = (snapshot_at, is_open) if snapshot_at is not None and period == "evaluated" else None
            # a pass reads only the moments where someone reaches its threshold (the others send
            # nothing): the grid ascending, each pass keeps the moments the next one may need
            active = _entries(later if kept is not None else in_period[period], outsiders, seen)
            for threshold in sorted(settings.thresholds):
                active = _at_threshold(active, threshold)
                taken: list[PassState] = []
                points.append(_score(stream, active, people, settings.policy, threshold, window,
                                     joins[period], name, period, n_people, days, outcomes=outcomes,
                                     resume=kept[threshold] if kept is not None else None, snapshot=snapshot,
                                     taken=taken))
                if taken:
                    states.setdefault(name, {})[threshold] = taken[0]
            if kept is not None:
                resumed.append(name)
            del outcomes, active
        curve += points
        tune = [c for c in points if c.period == "tune"]
        evaluated = {c.min_probability: c for c in points if c.period == "evaluated"}
        if not evaluated:
            continue
        threshold, reached = choose_operating_point(tune, settings.target_precision) if tune else (
            settings.policy.min_probability, False)
        chosen = evaluated.get(threshold) or min(evaluated.values(), key=lambda c: abs(c.min_probability - threshold))
        tune_point = next((c for c in tune if c.min_probability == chosen.min_probability),
                          CurvePoint(name, "tune", chosen.min_probability))
        operating[name] = OperatingPoint(name, chosen.min_probability, reached, tune_point, chosen)
        # what it sends at its operating point on the evaluated period, with the reasons and outcomes
        sent: list[SentAlert] = []
        _score(stream, _at_threshold(_entries(in_period["evaluated"], outsiders, seen), chosen.min_probability),
               people, settings.policy, chosen.min_probability, window, joins["evaluated"], name, "evaluated", 0, 0.0,
               keep=sent,
               reason=_reason_of(name, model_reasons if name == model_name else None))
        sample += spread(sent, SAMPLE_ALERTS)
        del outsiders
    # the curve in the order it always had: by period, then ranker, then threshold
    period_order, ranker_order = {p: i for i, p in enumerate(scored)}, {n: i for i, n in enumerate(rankers)}
    curve.sort(key=lambda c: (period_order[c.period], ranker_order[c.model]))
    sample.sort(key=lambda a: ranker_order[a.model])
    return ReplayResult(curve, operating, dict(n_moments), {k: v for k, v in periods.items() if k != "head"},
                        time.monotonic() - started, sample, states, snapshot_at if states else None, is_open,
                        tuple(resumed))


@dataclass(frozen=True)
class KeptPasses:
    """An earlier run's pass states (ReplayResult.passes): their moment, the conversations whose ledger
    they keep, and the states of each ranker by threshold."""

    at: float
    open: frozenset[str]
    states: Mapping[str, Mapping[float, PassState]]


def _resume_at(passes: KeptPasses | None, moments: Sequence[Moment], snapshot_at: float | None,
               thresholds: Sequence[float]) -> float | None:
    """The moment the evaluated period's passes may go on from ``passes``: theirs, when every moment
    from then on is in a conversation with no earlier moment or one whose ledger they keep, this
    replay's states are at or after it, and they cover the grid. None otherwise."""
    if passes is None or snapshot_at is None or snapshot_at < passes.at:
        return None
    if any(set(states) != set(thresholds) for states in passes.states.values()):
        return None
    at = passes.at
    before = {m.conversation_id for m in moments if m.at < at}
    after = {m.conversation_id for m in moments if m.at >= at}
    if not before or not (before & after) <= passes.open:
        return None
    return at


def tune_key(con: duckdb.DuckDBPyConnection, periods: Mapping[str, tuple[float, float]],
             settings: ReplaySettings) -> dict[str, Any] | None:
    """What the tune period's curve depends on besides the rankings and the messages (which a later run
    compares through the run's message snapshot, beep.evaluate.reuse): the period, the replay's settings
    and policy, the people as the policy sees them, and the reactions on the messages up to the end of
    the period's outcomes (the snapshot does not cover reactions). None without a tune period."""
    if "tune" not in periods:
        return None
    lo, hi = periods["tune"]
    until = hi + settings.alert_window_minutes * 60.0
    return {"tune": [lo, hi], "until": until, "key": _replay_digest(con, settings, until)}


def passes_key(con: duckdb.DuckDBPyConnection, periods: Mapping[str, tuple[float, float]],
               settings: ReplaySettings, at: float) -> str | None:
    """What the evaluated period's pass states at ``at`` depend on besides the model's rankings and the
    messages before ``at`` (which a later run compares through the run's message snapshot): where the
    period starts, the other periods (the baselines refresh their lists at moments, so their rankings
    depend on which messages are moments: a tune period that moved, as a new train example on a train-side
    conversation moves it, changes them), the replay's settings and policy, the people as the policy sees
    them, and the reactions on the messages before ``at``. None without an evaluated period."""
    if "evaluated" not in periods:
        return None
    others = {name: list(bounds) for name, bounds in sorted(periods.items()) if name != "evaluated"}
    return _replay_digest(con, settings, at, strictly_before=True,
                          head=["evaluated", periods["evaluated"][0], at, others])


def _replay_digest(con: duckdb.DuckDBPyConnection, settings: ReplaySettings, until: float, *,
                   strictly_before: bool = False, head: Sequence[Any] = ()) -> str:
    """A digest of ``head``, the replay's settings and policy, the people as the policy sees them, and the
    reactions on the messages written up to ``until`` (before it, ``strictly_before``)."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(
        [*head, settings.alert_window_minutes, settings.tune_fraction, settings.context_messages,
         list(settings.thresholds), repr(settings.policy)]).encode())
    for person in sorted(_people(con).values(), key=lambda p: p.user_id):
        digest.update(repr(person).encode())
    try:
        reactions = con.execute(
            f"""
            select count(*), cast(sum(cast(hash(c.conversation_id, c.position, r.user_id) as hugeint)) as varchar)
            from stg_slack__reactions r
            inner join int_conversations c on c.channel_folder = r.channel_folder and c.ts = r.ts
            where epoch(c.message_at) {'<' if strictly_before else '<='} ? and r.user_id is not null
            """, [until]).fetchone()
    except duckdb.Error:  # a dataset built before the reaction models (the stream reads none either)
        reactions = None
    digest.update(repr(reactions).encode())
    return digest.hexdigest()


def kept_tune_curve(con: duckdb.DuckDBPyConnection, source_run: str, key: Mapping[str, Any] | None,
                    source_key: Mapping[str, Any] | None, cutoff: str | None,
                    read_until: str | None) -> dict[str, list[CurvePoint]]:
    """The tune-period curve of every ranker ``source_run`` replayed, when a replay now would compute the
    same one: the same :func:`tune_key` (period, settings, people, reactions), that run read the messages
    up to the end of the period's outcomes (``read_until``: the last message time its snapshot recorded;
    messages after it are new to it, not changes), and none of them changed since (``cutoff``: the first
    day whose messages differ from what that run read). The model's rankings there are the same when the
    run is the source of its kept rankings (the same trained model, beep.evaluate.reuse); the baselines'
    are a function of the messages. {} otherwise."""
    from datetime import datetime, timezone

    if not key or not source_key or dict(key) != dict(source_key) or not read_until:
        return {}
    try:
        read = datetime.fromisoformat(str(read_until)).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return {}
    if read < float(key["until"]):  # messages it never read may change the period's outcomes
        return {}
    if cutoff is not None:
        changed = datetime.strptime(cutoff, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
        if changed <= float(key["until"]):
            return {}
    out: dict[str, list[CurvePoint]] = {}
    for model, threshold, alerts, useful, joins, alerted in con.execute(
            """
            select model, min_probability, alerts, useful, joins, joins_alerted from alert_replay_curve
            where eval_run_id = ? and period = 'tune' order by model, min_probability
            """, [source_run]).fetchall():
        out.setdefault(str(model), []).append(
            CurvePoint(str(model), "tune", float(threshold), int(alerts), int(useful), int(joins), int(alerted)))
    return out


def spread(items: Sequence[SentAlert], n: int) -> list[SentAlert]:
    """At most ``n`` of ``items`` (in time order), evenly spread over them."""
    if len(items) <= n:
        return list(items)
    return [items[(i * len(items)) // n] for i in range(n)]


class RankerRankings:
    """``model_rankings`` for the responder ranker: one replay of the workspace, ranking right after
    each moment's message with the live state (:meth:`beep.ranker.model.ResponderRanker.score`).
    :meth:`reason` gives the reason the app's DM would give a person ranked at a moment. A ranking
    keeps only the people at or above ``floor`` (the grid's lowest threshold: the policy never reads
    the others; 0 for the alert head, which learns from every ranked person)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, model: Any, top: int = TOP,
                 progress: Callable[[int, int], None] | None = None, with_features: bool = False,
                 floor: float = 0.0) -> None:
        self.con, self.model, self.top, self.progress, self.floor = con, model, top, progress, floor
        self._reasons: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}  # key -> (people, reasons)
        #: with ``with_features``: moment key -> the ranked people's feature rows (beep.ranker.features.FEATURES)
        self.features: dict[str, Any] | None = {} if with_features else None

    def __call__(self, moments: Sequence[Moment]) -> dict[str, Ranking]:
        from beep.ranker.stream import Query

        queries = [Query(m.key, m.conversation_id, m.position, m.at, None, last_at=m.at) for m in moments]
        out: dict[str, Ranking] = {}
        intern = sys.intern  # a few distinct reasons, shared by many moments

        def take(batch: Iterable[Any]) -> None:
            for ranked in batch:
                out[ranked.example_id] = tuple((u, p) for u, p in zip(ranked.user_ids, ranked.probabilities)
                                               if p >= self.floor)
                self._reasons[ranked.example_id] = (ranked.user_ids, tuple(intern(r) for r in ranked.reasons))
                if self.features is not None and ranked.features is not None:
                    self.features[ranked.example_id] = ranked.features

        self.model.score(self.con, queries, take, top=self.top, progress=self.progress,
                         with_features=self.features is not None)
        return out

    def reason(self, key: str, person: str) -> str | None:
        people, reasons = self._reasons.get(key, ((), ()))
        return reasons[people.index(person)] if person in people else None


def ranker_rankings(con: duckdb.DuckDBPyConnection, model: Any, top: int = TOP,
                    progress: Callable[[int, int], None] | None = None, with_features: bool = False,
                    floor: float = 0.0) -> RankerRankings:
    """See :class:`RankerRankings`."""
    return RankerRankings(con, model, top, progress, with_features, floor)


def write_alert_sample(db: Any, eval_run_id: str, result: ReplayResult) -> None:
    """Replace the run's rows of ``alert_replay_alerts`` with ``result.alerts`` (the sample)."""
    from beep.db import connect

    rows = [[eval_run_id, a.model, a.min_probability, a.at, a.conversation_id, a.channel, a.person_id, a.probability,
             a.reason, a.outcome] for a in result.alerts]
    with connect(db) as con:
        con.execute("begin")
        con.execute("delete from alert_replay_alerts where eval_run_id = ?", [eval_run_id])
        if rows:
            con.executemany("insert into alert_replay_alerts (eval_run_id, model, min_probability, alert_at, "
                            "conversation_id, channel, person_id, probability, reason, outcome) "
                            "values (?, ?, ?, make_timestamp(cast(? * 1000000 as bigint)), ?, ?, ?, ?, ?, ?)", rows)
        con.execute("commit")


def metric_rows(result: ReplayResult) -> list[tuple[str, Any]]:
    """(model, MetricRow) rows of slice ``alert_replay`` at each ranker's operating point, on the
    evaluated period (support: the alerts, or the joins for recall)."""
    from beep.evaluate.metrics import MetricRow

    out: list[tuple[str, Any]] = []
    for name, op in result.operating.items():
        e = op.evaluated
        for metric, value, support in (
            ("precision", e.precision, e.alerts),
            ("recall", e.recall, e.joins),
            ("alerts", float(e.alerts), e.alerts),
            ("alerts_per_person_day", e.alerts_per_person_day, e.people),
            ("min_probability", op.min_probability, e.alerts),
            ("target_reached", 1.0 if op.reached else 0.0, op.tune.alerts),
        ):
            value = None if value is not None and (math.isnan(value) or math.isinf(value)) else value
            out.append((name, MetricRow("alert_replay", metric, None, value, int(support))))
    return out
