"""Reactions in the dataset (stg_slack__reaction_counts, stg_slack__reactions): every reaction object
of the export is counted, the listed users become rows, `count` beyond them is counted and never
invented, and bad input (no `users`, unknown users, not a list, no name, duplicate copies, a message
without ts) is kept with a reason, never silently lost."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from beep.build import build
from beep.config import SAMPLE_EXPORT, Paths
from beep.db import open_duckdb
from slack_fixtures import small_team, ts


def _rows(db: Path, sql: str) -> list[tuple]:
    with open_duckdb(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _reaction_objects(export: Path) -> int:
    """How many rows stg_slack__reaction_counts must have: one per element of each `reactions` list,
    one per `reactions` value that is not a list."""
    n = 0
    for day_file in export.glob("*/*.json"):
        for m in json.loads(day_file.read_text()):
            r = m.get("reactions")
            if r is not None:
                n += len(r) if isinstance(r, list) else 1
    return n


@pytest.fixture(scope="module")
def bad_reactions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small export whose reactions hold every case a real one can (and a few it should not)."""
    root = tmp_path_factory.mktemp("reactions")
    b = small_team()
    general, infra = b.messages["general"], b.messages["infra"]
    # ts(0): count beyond the listed users; a user missing from users.json
    general[0]["reactions"] = [{"name": "+1::skin-tone-2", "users": ["U002", "U003"], "count": 5},
                               {"name": "eyes", "users": ["U404"], "count": 1}]
    # ts(1): no users at all (count only); a list naming one person twice and a blank id
    general[1]["reactions"] = [{"name": "tada", "count": 2}, {"name": "joy", "users": ["U002", "U002", ""], "count": 2}]
    # ts(2): not a list
    general[2]["reactions"] = {"name": "heart", "users": ["U001"], "count": 1}
    # ts(3): an element without a name, one that is not an object, a usable one, the same emoji again,
    # one without count
    general[3]["reactions"] = [{"users": ["U001"], "count": 1}, "heart", {"name": "+1", "users": ["U001"], "count": 1},
                               {"name": "+1", "users": ["U002"], "count": 1}, {"name": "heart", "users": ["U001", "U002"]}]
    # ts(40) twice (a re-export's copy with other reactions): the first copy's reactions are used
    general[4]["reactions"] = [{"name": "+1", "users": ["U001"], "count": 1}]
    b.msg("general", "U002", "standup?", ts(40), reactions=[{"name": "+1", "users": ["U003"], "count": 1}])
    # a reaction on a bot's post: kept (the message itself is excluded downstream as `bot`)
    infra[3]["reactions"] = [{"name": "rocket", "users": ["U001", "U002"], "count": 2}]
    export = b.write(root / "export")
    # a message without ts: its reaction has no message key
    day = export / "general" / "2024-03-04.json"
    day.write_text(json.dumps([*json.loads(day.read_text()), {"type": "message", "user": "U001", "text": "no ts",
                                                              "reactions": [{"name": "eyes", "users": ["U002"], "count": 1}]}]))
    paths = Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")
    build(paths, export, run_tests=True, quiet=True, select="staging")
    return paths.duckdb


def test_every_reaction_object_is_counted_with_a_reason(bad_reactions: Path) -> None:
    export = bad_reactions.parent / "export"
    [(n,)] = _rows(bad_reactions, "select count(*) from stg_slack__reaction_counts")
    assert n == _reaction_objects(export) == 14
    reasons = Counter(dict(_rows(bad_reactions, "select exclusion_reason, count(*) from stg_slack__reaction_counts group by 1")))
    assert reasons == {None: 8, "no_name": 2, "not_a_list": 1, "repeated_emoji": 1, "duplicate": 1, "missing_ts": 1}


def test_count_beyond_the_listed_users_is_counted_not_invented(bad_reactions: Path) -> None:
    rows = {e: (c, n, u, r, listed) for e, c, n, u, r, listed in _rows(bad_reactions, f"""
        select emoji, reported_count, n_listed_users, unlisted_count, reaction_count, has_user_list
        from stg_slack__reaction_counts where exclusion_reason is null and ts in ('{ts(0)}', '{ts(1)}', '{ts(3)}')""")}
    assert rows["+1::skin-tone-2"] == (5, 2, 3, 5, True)
    assert rows["tada"] == (2, 0, 2, 2, False), "no users: all of count is unlisted"
    assert rows["joy"] == (2, 1, 1, 2, True), "a repeated id and a blank one list one person"
    assert rows["heart"] == (None, 2, 0, 2, True), "no count: the listed users are the count"
    users = _rows(bad_reactions, f"select user_id from stg_slack__reactions where ts = '{ts(0)}' and emoji = '+1::skin-tone-2'")
    assert sorted(users) == [("U002",), ("U003",)], "three people counted, none invented"


def test_listed_users_become_rows_and_unknown_ones_are_flagged(bad_reactions: Path) -> None:
    rows = _rows(bad_reactions, """select ts, emoji, emoji_base, user_id, is_known_user, is_own_message
                                   from stg_slack__reactions order by ts, emoji, user_id""")
    assert [(t, e, u, k) for t, e, _, u, k, _ in rows] == [
        (ts(0), "+1::skin-tone-2", "U002", True), (ts(0), "+1::skin-tone-2", "U003", True), (ts(0), "eyes", "U404", False),
        (ts(1), "joy", "U002", True),
        (ts(3), "+1", "U001", True), (ts(3), "heart", "U001", True), (ts(3), "heart", "U002", True),
        (ts(40), "+1", "U001", True),
        (ts(64), "rocket", "U001", True), (ts(64), "rocket", "U002", True),
    ]
    assert {e: b for _, e, b, *_ in rows}["+1::skin-tone-2"] == "+1"
    assert {(t, u) for t, _, _, u, _, o in rows if o} == {(ts(1), "U002")}, "bob reacted to his own message"
    # the totals agree: usable reaction objects' listed users are the rows
    [(listed,)] = _rows(bad_reactions, "select sum(n_listed_users) from stg_slack__reaction_counts where exclusion_reason is null")
    assert listed == len(rows)


def test_reactions_on_excluded_messages_are_kept(bad_reactions: Path) -> None:
    """The bot post's message is excluded from training (reason `bot`), its reactions stay: interest
    without a word. The duplicate copy's reactions are counted, not merged."""
    [(kept,)] = _rows(bad_reactions, f"select count(*) from stg_slack__reactions where ts = '{ts(64)}'")
    assert kept == 2
    [(dup_users,)] = _rows(bad_reactions, f"""select n_listed_users from stg_slack__reaction_counts
                                             where ts = '{ts(40)}' and exclusion_reason = 'duplicate'""")
    assert dup_users == 1
    assert not _rows(bad_reactions, f"select 1 from stg_slack__reactions where ts = '{ts(40)}' and user_id = 'U003'")


def test_the_sample_reactions_agree_with_the_files(built_db: Path) -> None:
    """On the bundled sample (random reactions, all well formed): one usable row per reaction object,
    one stg_slack__reactions row per listed user."""
    expected: set[tuple[str, str, str, str]] = set()
    for day_file in SAMPLE_EXPORT.glob("*/*.json"):
        for m in json.loads(day_file.read_text()):
            for r in m.get("reactions", []):
                expected.update((day_file.parent.name, m["ts"], r["name"], u) for u in r["users"])
    got = set(_rows(built_db, "select channel_folder, ts, emoji, user_id from stg_slack__reactions"))
    assert got == expected and len(expected) > 1000
    [(n, bad)] = _rows(built_db, "select count(*), count(exclusion_reason) from stg_slack__reaction_counts")
    assert n == _reaction_objects(SAMPLE_EXPORT) and bad == 0
