"""Dev data with Slack's features: `beep sample generate --profile large` writes threads, reactions
drawn from the conversation (with `count` beyond the listed users on big ones), @-mentions of whom a
reply answers, and people who join conversations unasked while they are around (their hour-of-week
presence), by expertise; stg_slack__reactions builds over it."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from beep.build import build
from beep.config import Paths
from beep.db import open_duckdb
from beep.ingest import ingest
from beep.sample.generator import generate_large_export
from beep.sample.large_sim import LISTED_REACTORS_MAX
from test_sample_gen import MENTION, Export

SIZES = dict(messages=12_000, people=160, channels=24, days=180)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Export:
    out = tmp_path_factory.mktemp("dev") / "acme-dev"
    generate_large_export(out, seed=3, **SIZES)
    return Export.read(out)


def _working_hours(ts_text: str, tz_offset: int) -> bool:
    """9:00-18:00 on a weekday, in the person's own time zone."""
    hour = (int(ts_text.split(".")[0]) + tz_offset) // 3600
    return (hour // 24 + 3) % 7 < 5 and 9 <= hour % 24 < 18


def test_messages_carry_reactions_like_slacks(dev: Export) -> None:
    msgs = [m for _, _, m in dev.messages]
    reacted = [m for m in msgs if "reactions" in m]
    assert 0.08 < len(reacted) / len(msgs) < 0.3, len(reacted) / len(msgs)
    objects = [r for m in reacted for r in m["reactions"]]
    known = {u["id"] for u in dev.users}
    for m in reacted:
        names = [r["name"] for r in m["reactions"]]
        assert len(names) == len(set(names)), "one object per emoji"
        for r in m["reactions"]:
            assert r["users"] and set(r["users"]) <= known and len(set(r["users"])) == len(r["users"])
            assert r["count"] >= len(r["users"]) and len(r["users"]) <= LISTED_REACTORS_MAX
            assert m.get("user") not in r["users"], "nobody reacts to their own message here"
    truncated = [r for r in objects if r["count"] > len(r["users"])]
    assert truncated and all(len(r["users"]) == LISTED_REACTORS_MAX for r in truncated), "big news: count beyond users"
    assert any("::skin-tone-" in r["name"] for r in objects)
    assert {"eyes", "+1", "pray", "tada"} <= {r["name"].split("::")[0] for r in objects}
    assert any("reactions" in m and m.get("subtype") == "bot_message" for m in msgs), "deploys get reactions"


def test_reactions_come_from_the_conversation(dev: Export) -> None:
    """Who reacts to a thread's message: its participants far more often than the channel at large."""
    members = {c["name"]: len(c["members"]) for c in dev.channels + dev.groups}
    inside = total = 0
    expected = 0.0
    for (folder, _), ms in dev.threads().items():
        people = {m.get("user") for m in ms}
        for m in ms:
            for r in m.get("reactions", []):
                if r["count"] > 10:
                    continue  # company-wide news: everyone around
                for u in r["users"]:
                    total += 1
                    inside += u in people
                    expected += len(people) / members[folder]
    assert total > 300
    assert inside / total > 0.3 and inside / total > 3 * expected / total, (inside / total, expected / total)


def test_threads_and_mentions_of_whom_a_reply_answers(dev: Export) -> None:
    threads = dev.threads()
    assert len(threads) > 500
    # outside threads, a reply often @-mentions the author of the message just before (whom it answers)
    by_folder: dict[str, list[dict]] = defaultdict(list)
    for folder, _, m in dev.messages:
        if "thread_ts" not in m and "subtype" not in m:
            by_folder[folder].append(m)
    addressed = n = 0
    for ms in by_folder.values():
        ms.sort(key=lambda m: m["ts"])
        for prev, m in zip(ms, ms[1:]):
            if m["user"] != prev["user"] and float(m["ts"]) - float(prev["ts"]) < 600:
                n += 1
                addressed += bool(re.match(rf"<@{prev['user']}[|>]", m["text"]))
    assert n > 1000 and addressed / n > 0.05, addressed / n
    mentions = sum(bool(MENTION.search(m["text"])) for _, _, m in dev.messages)
    assert 0.1 < mentions / len(dev.messages) < 0.3


def test_unasked_joins_happen_while_people_are_around(dev: Export) -> None:
    """Someone new to a thread who was not @-mentioned joins it in their own working hours far more
    often than the channel's members are in theirs at that moment."""
    tz = {u["id"]: u.get("tz_offset", 0) for u in dev.users}
    members = {c["name"]: c["members"] for c in dev.channels + dev.groups}
    joins = at_work = 0
    baseline = 0.0
    for (folder, _), ms in dev.threads().items():
        seen = {ms[0].get("user")}
        for prev, m in zip(ms, ms[1:]):
            u = m.get("user")
            if u not in seen and u not in MENTION.findall(prev["text"]) and u in tz:
                joins += 1
                at_work += _working_hours(m["ts"], tz[u])
                baseline += sum(_working_hours(m["ts"], tz[v]) for v in members[folder]) / len(members[folder])
            seen.add(u)
    assert joins > 300
    assert at_work / joins > 0.6 and at_work / joins > baseline / joins + 0.1, (at_work / joins, baseline / joins)


def test_stg_slack__reactions_builds_over_it(dev: Export, tmp_path: Path) -> None:
    paths = Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")
    result = ingest(paths, dev.root)
    build(paths, result.export_path, run_tests=True, quiet=True, select="staging")
    objects = [r for _, _, m in dev.messages for r in m.get("reactions", [])]
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        [(n_rows, n_users, unlisted, excluded)] = con.execute(
            "select count(*), sum(n_listed_users), sum(unlisted_count), count(exclusion_reason) from stg_slack__reaction_counts").fetchall()
        [(reactions, unknown)] = con.execute(
            "select count(*), count(*) filter (where not is_known_user) from stg_slack__reactions").fetchall()
    assert n_rows == len(objects) and excluded == 0 and unknown == 0
    assert reactions == n_users == sum(len(r["users"]) for r in objects)
    assert unlisted == sum(r["count"] - len(r["users"]) for r in objects) > 0
