"""The alert replay (beep.evaluate.alert_replay): the app's own policy replayed on a tiny workspace
where the right alerts are known."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import beep.slack.alerts as app_policy
from beep.db import open_duckdb
from beep.evaluate import alert_replay
from beep.evaluate.alert_replay import ReplaySettings, choose_operating_point, replay_alerts

T0 = 1_700_000_000.0
MIN = 60.0


def workspace(tmp_path: Path, messages: list[tuple[str, int, float, str, str, list[str]]]) -> duckdb.DuckDBPyConnection:
    """int_conversations rows (conversation, position, at, user, channel, mentions) and the users."""
    con = open_duckdb(str(tmp_path / "w.duckdb"))
    con.execute("create table int_conversations (conversation_id varchar, position integer, message_at timestamp, "
                "ts varchar, user_id varchar, channel_id varchar, channel_folder varchar, mentioned_user_ids varchar[])")
    for conv, pos, at, user, channel, mentions in messages:
        con.execute("insert into int_conversations values (?, ?, to_timestamp(?)::timestamp, ?, ?, ?, ?, ?)",
                    [conv, pos, at, f"{at:.6f}", user, channel, channel, mentions])
    con.execute("create table stg_slack__users as select * from (values ('A', 'ann', false, false), "
                "('B', 'bob', false, false), ('M', 'max', false, false), ('Z', 'zed', false, false), "
                "('BOT', 'bot', true, false)) t(user_id, user_name, is_bot, is_deleted)")
    return con


def rankings_of(table: dict[str, list[tuple[str, float]]]):
    def rank(moments):
        return {m.key: tuple(table.get(m.key, ())) for m in moments}
    return rank


PERIODS = {"evaluated": (T0 - 1, T0 + 10 * 3600)}
SETTINGS = ReplaySettings(thresholds=(0.1, 0.5))


def curve_at(result, model: str, threshold: float):
    [point] = [c for c in result.curve if c.model == model and c.min_probability == threshold and c.period == "evaluated"]
    return point


def test_the_right_alert_is_sent_once_and_useful_and_the_join_is_recalled(tmp_path: Path) -> None:
    con = workspace(tmp_path, [
        ("c1", 1, T0, "A", "C", []),                      # A asks
        ("c1", 2, T0 + 1 * MIN, "A", "C", []),            # A adds detail
        ("c1", 3, T0 + 10 * MIN, "B", "C", []),           # B joins (unasked)
    ])
    table = {"c1#1": [("B", 0.9), ("Z", 0.05)], "c1#2": [("B", 0.95)], "c1#3": [("A", 0.9)]}
    result = replay_alerts(con, PERIODS, rankings_of(table), "m", SETTINGS, with_head=False)
    point = curve_at(result, "m", 0.5)
    assert (point.alerts, point.useful, point.joins, point.joins_alerted) == (1, 1, 1, 1)  # once per conversation
    assert point.precision == 1.0 and point.recall == 1.0
    low = curve_at(result, "m", 0.1)
    assert low.alerts == 1  # Z at 0.05 stays below both thresholds; A is in the conversation at c1#3


def test_a_person_slack_notifies_is_never_alerted(tmp_path: Path) -> None:
    con = workspace(tmp_path, [
        ("c1", 1, T0, "A", "C", ["M"]),                    # A @-mentions M: Slack notifies M itself
        ("c1", 2, T0 + 5 * MIN, "M", "C", []),
    ])
    table = {"c1#1": [("M", 0.99)]}
    result = replay_alerts(con, PERIODS, rankings_of(table), "m", SETTINGS, with_head=False)
    assert curve_at(result, "m", 0.1).alerts == 0
    assert curve_at(result, "m", 0.1).joins == 1  # the join still counts: an alert could not add to it


def test_an_alert_nobody_acts_on_is_not_useful_and_bots_are_never_alerted(tmp_path: Path) -> None:
    con = workspace(tmp_path, [
        ("c1", 1, T0, "A", "C", []),
        ("c1", 2, T0 + 2 * MIN, "Z", "C", []),
        ("c1", 3, T0 + 3 * 3600, "B", "C", []),            # B writes, but hours after the alert window
    ])
    table = {"c1#1": [("B", 0.8), ("BOT", 0.9)]}
    result = replay_alerts(con, PERIODS, rankings_of(table), "m", SETTINGS, with_head=False)
    point = curve_at(result, "m", 0.5)
    assert (point.alerts, point.useful) == (1, 0)
    assert point.joins == 2 and point.joins_alerted == 0  # Z not alerted; B alerted but joined too late


def test_the_hourly_limit_of_the_app_applies(tmp_path: Path) -> None:
    rows, table = [], {}
    for i in range(5):  # five conversations in five channels within 40 minutes, B top-ranked in each
        conv, at = f"c{i}", T0 + i * 10 * MIN
        rows.append((conv, 1, at, "A", f"C{i}", []))
        table[f"{conv}#1"] = [("B", 0.9)]
    con = workspace(tmp_path, rows)
    result = replay_alerts(con, PERIODS, rankings_of(table), "m", SETTINGS, with_head=False)
    assert curve_at(result, "m", 0.5).alerts == app_policy.AlertPolicy().max_alerts_per_hour == 3


def test_two_conversations_of_one_channel_alert_a_person_twice_unless_same_channel_minutes(tmp_path: Path) -> None:
    """The live path places messages by the dataset's rules, so the replay's conversations are serve's:
    the one-alert-a-person-per-channel rule is off by default (serve and replay share the default) and
    opt-in (--same-channel-minutes)."""
    import inspect

    from beep.commands.slack_cmd import serve_command

    con = workspace(tmp_path, [
        ("c:reply:1", 1, T0, "A", "C", []),
        ("c:reply:1", 2, T0 + 5 * MIN, "B", "C", []),      # B joins the first
        ("c:reply:2", 1, T0 + 20 * MIN, "Z", "C", []),     # another question in the same channel
        ("c:reply:2", 2, T0 + 25 * MIN, "B", "C", []),     # B joins that one too
    ])
    table = {"c:reply:1#1": [("B", 0.9)], "c:reply:2#1": [("B", 0.9)]}
    default = curve_at(replay_alerts(con, PERIODS, rankings_of(table), "m", SETTINGS, with_head=False), "m", 0.5)
    assert (default.alerts, default.useful, default.joins_alerted) == (2, 2, 2)
    assert ReplaySettings().policy.same_channel_minutes == app_policy.AlertPolicy().same_channel_minutes == 0
    assert inspect.signature(serve_command).parameters["same_channel_minutes"].default == 0
    opt_in = ReplaySettings(thresholds=(0.5,), policy=app_policy.AlertPolicy(quiet_hours=None, same_channel_minutes=60))
    once = curve_at(replay_alerts(con, PERIODS, rankings_of(table), "m", opt_in, with_head=False), "m", 0.5)
    assert (once.alerts, once.useful, once.joins_alerted) == (1, 1, 1)


def test_the_replay_runs_the_apps_own_policy_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert alert_replay.decide is app_policy.decide and alert_replay.notified_by_slack is app_policy.notified_by_slack
    calls = []
    real = app_policy.decide

    def spy(*args, **kwargs):
        calls.append(kwargs["conversation_id"])
        return real(*args, **kwargs)

    monkeypatch.setattr(alert_replay, "decide", spy)
    con = workspace(tmp_path, [("c1", 1, T0, "A", "C", [])])
    replay_alerts(con, PERIODS, rankings_of({"c1#1": [("B", 0.9)]}), "m", SETTINGS, with_head=False)
    assert calls and set(calls) == {"c1"}


def test_the_operating_point_is_the_lowest_threshold_reaching_the_target() -> None:
    points = [alert_replay.CurvePoint("m", "tune", t, alerts=a, useful=u)
              for t, a, u in ((0.1, 100, 30), (0.2, 40, 21), (0.3, 10, 6), (0.5, 2, 2))]
    assert choose_operating_point(points, 0.5) == (0.2, True)
    assert choose_operating_point(points, 0.9) == (0.3, False)  # unreached: the best precision with enough alerts


def test_a_reaction_to_the_conversation_makes_an_alert_useful(tmp_path: Path) -> None:
    con = workspace(tmp_path, [
        ("c1", 1, T0, "A", "C", []),
        ("c1", 2, T0 + 2 * MIN, "Z", "C", []),
    ])
    table = {"c1#1": [("B", 0.9)]}
    before = curve_at(replay_alerts(con, PERIODS, rankings_of(table), "m", SETTINGS, with_head=False), "m", 0.5)
    assert (before.alerts, before.useful) == (1, 0)
    # B never writes, but reacts to Z's answer (an export's reactions carry no time: the message's counts)
    con.execute("create table stg_slack__reactions as select 'C' as channel_folder, ? as ts, 'B' as user_id, "
                "'+1' as emoji", [f"{T0 + 2 * MIN:.6f}"])
    after = curve_at(replay_alerts(con, PERIODS, rankings_of(table), "m", SETTINGS, with_head=False), "m", 0.5)
    assert (after.alerts, after.useful) == (1, 1)


class _WithReasons:
    """A ranker that gives reasons, as alert_replay.RankerRankings does."""

    def __init__(self, table: dict[str, list[tuple[str, float]]], reasons: dict[tuple[str, str], str]) -> None:
        self.table, self.reasons = table, reasons

    def __call__(self, moments):
        return {m.key: tuple(self.table.get(m.key, ())) for m in moments}

    def reason(self, key: str, person: str) -> str | None:
        return self.reasons.get((key, person))


def test_the_sample_of_alerts_keeps_reasons_and_outcomes_and_is_stored(tmp_path: Path) -> None:
    """Issue 23 item 5: the report shows alerts with their reasons and what their people did."""
    from beep.migrations import migrate

    con = workspace(tmp_path, [
        ("c1", 1, T0, "A", "C", []),
        ("c1", 2, T0 + 5 * MIN, "B", "C", []),             # B, alerted at c1#1, joins
        ("c2", 1, T0 + 3 * 3600, "A", "D", []),
        ("c2", 2, T0 + 3 * 3600 + 2 * MIN, "M", "D", []),  # Z, alerted at c2#1, only reacts to M's answer
        ("c3", 1, T0 + 6 * 3600, "A", "E", []),            # M, alerted at c3#1, does nothing
    ])
    con.execute("create table stg_slack__reactions as select 'D' as channel_folder, ? as ts, 'Z' as user_id, "
                "'+1' as emoji", [f"{T0 + 3 * 3600 + 2 * MIN:.6f}"])
    ranker = _WithReasons({"c1#1": [("B", 0.9)], "c2#1": [("Z", 0.8)], "c3#1": [("M", 0.7)]},
                          {("c1#1", "B"): "often answers the last speaker"})
    result = replay_alerts(con, PERIODS, ranker, "m", ReplaySettings(thresholds=(0.5,)), with_head=False)
    sample = [a for a in result.alerts if a.model == "m"]
    assert [(a.person_id, a.outcome, a.reason) for a in sample] == [
        ("B", "joined", "often answers the last speaker"), ("Z", "reacted", None), ("M", "nothing", None)]
    assert all(a.min_probability == 0.5 for a in sample)
    regulars = [a for a in result.alerts if a.model == alert_replay.CHANNEL_REGULARS]
    assert all(a.reason and "regulars" in a.reason for a in regulars)
    assert len(alert_replay.spread(sample * 100, 7)) == 7
    con.close()
    db = tmp_path / "w.duckdb"
    with open_duckdb(str(db)) as c:
        migrate(c)
    alert_replay.write_alert_sample(db, "ev-1", result)
    with open_duckdb(str(db)) as c:
        stored = c.execute("select person_id, outcome, reason, epoch(alert_at) from alert_replay_alerts "
                           "where model = 'm' order by alert_at").fetchall()
    assert stored == [("B", "joined", "often answers the last speaker", T0), ("Z", "reacted", None, T0 + 3 * 3600),
                      ("M", "nothing", None, T0 + 6 * 3600)]


def test_best_recall_at_a_target_precision_needs_enough_alerts() -> None:
    from beep.evaluate.alert_head import best_recall_at

    curve = [alert_replay.CurvePoint("m", "tune", t, alerts=a, useful=u, joins=100, joins_alerted=j)
             for t, a, u, j in ((0.1, 100, 25, 40), (0.2, 40, 16, 20), (0.3, 10, 6, 8), (0.5, 3, 3, 3))]
    assert best_recall_at(curve, (0.2, 0.4, 0.6, 0.9)) == {0.2: 0.4, 0.4: 0.2, 0.6: 0.08, 0.9: 0.0}


def test_people_below_the_lowest_threshold_and_the_order_of_the_grid_change_nothing(tmp_path: Path) -> None:
    """The replay runs one ranker at a time over the grid in ascending order, and the ranker's rankings
    keep no one below the grid's lowest threshold (RankerRankings' floor, to save memory): the curve,
    its order (period, ranker, threshold) and the sample of alerts are what a replay of everything gives."""
    con = workspace(tmp_path, [
        ("c1", 1, T0, "A", "C", []),
        ("c1", 2, T0 + 5 * MIN, "B", "C", []),
        ("c2", 1, T0 + 2 * 3600, "A", "C", []),
        ("c2", 2, T0 + 2 * 3600 + 3 * MIN, "M", "C", []),
        ("c3", 1, T0 + 5 * 3600, "B", "D", []),
        ("c3", 2, T0 + 5 * 3600 + 9 * MIN, "Z", "D", []),
    ])
    table = {"c1#1": [("B", 0.6), ("M", 0.25), ("Z", 0.04)], "c2#1": [("M", 0.35), ("B", 0.2), ("Z", 0.01)],
             "c3#1": [("Z", 0.55), ("A", 0.12), ("M", 0.05)], "c1#2": [("Z", 0.02)]}
    periods = {"tune": (T0 - 1, T0 + 3 * 3600), "evaluated": (T0 + 3 * 3600 + 1, T0 + 10 * 3600)}
    floored = {k: [(u, p) for u, p in v if p >= 0.1] for k, v in table.items()}
    shuffled = ReplaySettings(thresholds=(0.5, 0.1, 0.3, 0.2))
    everything = replay_alerts(con, periods, rankings_of(table), "m", ReplaySettings(thresholds=(0.1, 0.2, 0.3, 0.5)),
                               with_head=False)
    kept = replay_alerts(con, periods, rankings_of(floored), "m", shuffled, with_head=False)

    def points(result):
        return [(c.period, c.model, c.min_probability, c.alerts, c.useful, c.joins, c.joins_alerted) for c in result.curve]

    assert points(kept) == points(everything)
    assert [(p[0], p[1]) for p in points(kept)][:5] == [("tune", "m")] * 4 + [("tune", alert_replay.CHANNEL_REGULARS)]
    assert [p[2] for p in points(kept)][:4] == [0.1, 0.2, 0.3, 0.5]
    assert {(p[0], p[1]) for p in points(kept)} == {(period, ranker) for period in periods for ranker in (
        "m", alert_replay.CHANNEL_REGULARS, alert_replay.WORKSPACE_REGULARS)}
    assert kept.alerts == everything.alerts and any(a.model == "m" for a in kept.alerts)
    assert {n: op.min_probability for n, op in kept.operating.items()} == {
        n: op.min_probability for n, op in everything.operating.items()}


def test_each_pass_reads_exactly_the_candidates_who_reach_its_threshold() -> None:
    """The passes cut each moment's candidates from the last pass's cut (alert_replay._at_threshold):
    over an ascending grid, every pass must see exactly the moments with someone at or above its
    threshold, each with exactly those people, as a fresh cut of the full ranking would give."""
    import random

    from beep.evaluate.alert_replay import _at_threshold, _entries, _Seen

    rng = random.Random(3)
    grid = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    moments, ranking, seen = [], {}, {}
    for i in range(300):
        key = f"c{i % 17}#{i}"
        moments.append(alert_replay.Moment(key, f"c{i % 17}", i, float(i), "C1", "U0", "evaluated"))
        people = sorted(((f"U{j}", rng.choice([rng.random(), *grid])) for j in range(rng.randint(0, 12))),
                        key=lambda c: -c[1])
        if people:
            ranking[key] = tuple((u, p, None) for u, p in people)
        seen[key] = _Seen(frozenset(), frozenset())
    active = _entries(moments, ranking, seen)
    for threshold in grid:
        active = _at_threshold(active, threshold)
        got = {entry[0].key: entry[1][:entry[3]] for entry in active}
        want = {key: tuple(c for c in ranked if c[1] >= threshold) for key, ranked in ranking.items()
                if ranked[0][1] >= threshold}
        assert got == want, threshold
        assert [entry[0].key for entry in active] == [m.key for m in moments if m.key in want]  # time order kept


def _busy_workspace(tmp_path: Path, seed: int):
    """Three days of four people writing in two channels: conversations that go on across midnight,
    people joining others' conversations, mentions; and a random ranking of the others at every message."""
    import random

    rng = random.Random(seed)
    people = ["A", "B", "M", "Z"]
    messages, table = [], {}
    at, n_conv = T0, 0
    while at < T0 + 3 * 86400:
        n_conv += 1
        conv, channel = f"c{n_conv}", rng.choice(["C", "D"])
        authors = [rng.choice(people)]
        for pos in range(1, rng.randint(2, 6)):
            author = rng.choice(people) if pos > 1 else authors[0]
            mentions = [rng.choice(people)] if rng.random() < 0.1 else []
            messages.append((conv, pos, at, author, channel, mentions))
            table[f"{conv}#{pos}"] = sorted(((u, round(rng.random(), 2)) for u in people if rng.random() < 0.7),
                                            key=lambda up: -up[1])
            at += rng.choice([1, 3, 7, 20, 45]) * MIN
        at += rng.choice([5, 30, 90, 240]) * MIN
    return workspace(tmp_path, messages), table, [m[2] for m in messages]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_passes_resumed_from_their_states_give_the_curve_of_passes_over_every_moment(tmp_path: Path, seed: int) -> None:
    """A replay keeps each pass's state at a moment (alert_replay.PassState); a later replay on the same
    moments and rankings before it goes on from those states and gives the curve, operating points and
    sample of a replay over every moment, and the states a replay over every moment keeps at a later
    moment. Alerts just before the cut whose person joins after it, joins after the cut alerted before
    it, and the hourly limit across it are all in these three days."""
    from beep.evaluate.alert_replay import KeptPasses

    con, table, times = _busy_workspace(tmp_path, seed)
    periods = {"tune": (T0, T0 + 86400 - 1), "evaluated": (T0 + 86400, T0 + 3 * 86400)}
    settings = ReplaySettings(thresholds=(0.05, 0.2, 0.5, 0.8))
    # the cut a minute after a message of the second day's middle: alerts just before it
    cut, later = min(t for t in times if t >= T0 + 1.5 * 86400) + MIN, T0 + 2 * 86400 + 7 * 3600
    whole = replay_alerts(con, periods, rankings_of(table), "m", settings, with_head=False, snapshot_at=cut)
    assert whole.passes_at == cut and set(whole.passes) == {"m", *alert_replay.BASELINES}
    assert any(s.pending for states in whole.passes.values() for s in states.values())
    kept = KeptPasses(cut, whole.passes_open, whole.passes)
    resumed = replay_alerts(con, periods, rankings_of(table), "m", settings, with_head=False, passes=kept,
                            snapshot_at=later)
    assert set(resumed.resumed) == {"m", *alert_replay.BASELINES}

    def points(result):
        return [(c.period, c.model, c.min_probability, c.alerts, c.useful, c.joins, c.joins_alerted) for c in result.curve]

    assert points(resumed) == points(whole)
    assert sum(c.alerts for c in whole.curve if c.period == "evaluated") > 50
    assert resumed.alerts == whole.alerts
    assert {n: op.min_probability for n, op in resumed.operating.items()} == {
        n: op.min_probability for n, op in whole.operating.items()}
    at_later = replay_alerts(con, periods, rankings_of(table), "m", settings, with_head=False, snapshot_at=later)

    def states(result):
        return {name: {t: (s.at, s.alerts, s.useful, sorted(s.pending), s.joins, s.joins_alerted, sorted(s.alerted),
                           s.sent_times, s.channel_alerts) for t, s in by.items()} for name, by in result.passes.items()}

    assert states(resumed) == states(at_later)

    # a conversation that goes on after the cut but whose ledger the states do not keep: passed over whole
    closed = KeptPasses(cut, frozenset(), whole.passes)
    again = replay_alerts(con, periods, rankings_of(table), "m", settings, with_head=False, passes=closed,
                          snapshot_at=later)
    assert again.resumed == () and points(again) == points(whole)


def test_kept_passes_reads_only_a_whole_file_of_the_same_key_and_unchanged_messages(tmp_path: Path) -> None:
    """beep.evaluate.reuse.kept_passes: the states of the source run, or None (then the passes are made
    whole, nothing fails) for a damaged, foreign or older file, another key, messages changed before
    their day, or a run that never read up to their moment."""
    import pickle
    import zlib

    from beep.evaluate.alert_replay import KeptPasses, PassState
    from beep.evaluate.reuse import PASSES_VERSION, Reused, kept_passes, passes_file, save_passes

    at = 1_700_006_400.0  # 2023-11-15 00:00 UTC
    state = PassState(at, 3, 1, [("c1", "B", at - 60)], 2, 1, [("c1", "B")], {"B": [at - 60]}, {})
    save_passes(passes_file(tmp_path, "ev-a"), "k", at, frozenset({"c1"}), {"m": {0.1: state}})
    source = Reused(source="ev-a", cutoff="2023-11-15")
    until = "2023-11-15 12:00:00"
    kept = kept_passes(tmp_path, source, lambda _at: "k", until)
    assert kept == KeptPasses(at, frozenset({"c1"}), {"m": {0.1: state}})
    assert kept_passes(tmp_path, Reused(source="ev-a", cutoff=None), lambda _at: "k", until) is not None
    assert kept_passes(tmp_path, Reused(source="ev-a", cutoff="2023-11-14"), lambda _at: "k", until) is None
    assert kept_passes(tmp_path, source, lambda _at: "other", until) is None
    assert kept_passes(tmp_path, source, lambda _at: "k", "2023-11-14 23:00:00") is None
    assert kept_passes(tmp_path, Reused(source="ev-b"), lambda _at: "k", until) is None  # no file
    path = passes_file(tmp_path, "ev-a")
    for damaged in (b"garbage", zlib.compress(b"garbage"),
                    zlib.compress(pickle.dumps({"version": PASSES_VERSION + 1, "key": "k", "at": at, "open": [],
                                                "states": {"m": {0.1: state}}})),
                    zlib.compress(pickle.dumps({"version": PASSES_VERSION, "key": "k", "at": at, "open": [],
                                                "states": {"m": {0.1: ("not", "a", "state")}}}))):
        path.write_bytes(damaged)
        assert kept_passes(tmp_path, source, lambda _at: "k", until) is None


def test_pass_states_are_keyed_by_every_period_as_the_baselines_depend_on_them(tmp_path: Path) -> None:
    """The baselines refresh their lists at moments, so their rankings in the evaluated period depend on
    where the tune period lies (a new train example on a train-side conversation moves it): states kept
    under one tune period would give other curves under another, so their key differs (found in review:
    resuming the baselines' passes across a moved tune period changed their alerts)."""
    from beep.evaluate.alert_replay import passes_key

    con, table, _ = _busy_workspace(tmp_path, 1)
    evaluated, at = (T0 + 86400, T0 + 3 * 86400), T0 + 2 * 86400
    settings = ReplaySettings(thresholds=(0.05, 0.2, 0.5, 0.8))
    periods = {"tune": (T0, T0 + 86400 - 1), "evaluated": evaluated}
    moved = {"tune": (T0 + 18 * 3600, T0 + 86400 - 1), "evaluated": evaluated}
    assert passes_key(con, periods, settings, at) == passes_key(con, dict(periods), settings, at)
    assert passes_key(con, periods, settings, at) != passes_key(con, moved, settings, at)
    whole = replay_alerts(con, moved, rankings_of(table), "m", settings, with_head=False)
    kept = replay_alerts(con, periods, rankings_of(table), "m", settings, with_head=False, snapshot_at=at)
    across = replay_alerts(con, moved, rankings_of(table), "m", settings, with_head=False,
                           passes=alert_replay.KeptPasses(at, kept.passes_open, kept.passes), snapshot_at=evaluated[1])
    assert "m" in across.resumed  # (what passes_key's mismatch keeps a run from doing)

    def evaluated_points(result, model):
        return [(c.min_probability, c.alerts, c.useful, c.joins_alerted) for c in result.curve
                if c.period == "evaluated" and c.model == model]

    assert evaluated_points(across, "m") == evaluated_points(whole, "m")  # the model's rankings do not move
    assert any(evaluated_points(across, b) != evaluated_points(whole, b) for b in alert_replay.BASELINES)
