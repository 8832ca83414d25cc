"""The large sample profile (`beep sample generate --profile large`): a realistic company workspace at small size.

One 20,000-message export (200 people, 30 channels, a year) is generated once and checked for what
makes it realistic: determinism, a long tail of activity, many channels, small day files, valid
message objects, threads, a truth.csv that agrees with the files, learnable answering behaviour, and
that `beep ingest` and `dbt build` accept it.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from beep.build import build
from beep.commands import sample_cmd
from beep.config import Paths
from beep.db import open_duckdb
from beep.ingest import ingest
from beep.sample.generator import generate_large_export, split_budget
from beep.sample.large_sim import LargeChannelSimulator
from beep.sample.large_workspace import build_large_workspace
from test_sample_gen import DAY_FILE, MENTION, TS, Export

SIZES = dict(messages=20_000, people=200, channels=30, days=365)
SEED = 1
#: Subtypes the large profile writes (absent = an ordinary message).
SUBTYPES = {None, "channel_join", "channel_leave", "channel_topic", "bot_message", "thread_broadcast", "file_share",
            "me_message", "tombstone"}


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Export:
    out = tmp_path_factory.mktemp("large") / "acme-large"
    summary = generate_large_export(out, seed=SEED, **SIZES)
    assert summary.messages == SIZES["messages"]
    assert summary.truth_rows > 0
    return Export.read(out)


def _humans(exp: Export) -> dict[str, dict]:
    return {u["id"]: u for u in exp.users if not u["is_bot"] and u["id"] != "USLACKBOT"}


def _truth(exp: Export) -> list[dict[str, str]]:
    return list(csv.DictReader(exp.files["truth.csv"].decode().splitlines()))


def test_same_seed_gives_identical_bytes_also_in_parallel(large: Export, tmp_path: Path) -> None:
    again = generate_large_export(tmp_path / "again", seed=SEED, workers=2, **SIZES)
    assert Export.read(again.out_dir).files == large.files
    other = generate_large_export(tmp_path / "other", seed=SEED + 1, messages=3000, people=40, channels=12, days=60)
    assert Export.read(other.out_dir).files["users.json"] != large.files["users.json"]


def test_people_bots_and_deactivated_users(large: Export) -> None:
    humans = _humans(large)
    assert len(humans) == 200
    assert len({u["id"] for u in large.users}) == len(large.users)
    assert len({u["name"] for u in large.users}) == len(large.users), "handles are unique"
    bots = [u for u in large.users if u["is_bot"]]
    assert len(bots) >= 4
    deleted = [u for u in humans.values() if u["deleted"]]
    assert 2 <= len(deleted) <= 30
    # a deactivated person writes nothing after the day they left (users.json `updated`)
    last_ts: dict[str, float] = {}
    for _, _, m in large.messages:
        if m.get("user") in humans and not m.get("subtype", "").startswith("channel_"):
            last_ts[m["user"]] = max(last_ts.get(m["user"], 0.0), float(m["ts"]))
    for u in deleted:
        assert last_ts.get(u["id"], 0.0) < u["updated"] + 2 * 86400, u["name"]
    teams = Counter(u["profile"]["title"].split(", ")[1] for u in humans.values())
    assert len(teams) >= 8 and max(teams.values()) < 60


def test_activity_has_a_long_tail(large: Export) -> None:
    humans = _humans(large)
    written = Counter(m["user"] for _, _, m in large.messages if m.get("user") in humans and "subtype" not in m)
    counts = sorted((written.get(u, 0) for u in humans), reverse=True)
    total = sum(counts)
    top_share = sum(counts[: len(counts) // 10]) / total
    median = statistics.median(counts)
    assert top_share > 0.4, f"the top 10% of people write only {top_share:.0%}"
    assert median < 0.5 * total / len(counts), (median, total / len(counts))
    assert counts[0] > 20 * max(median, 1)


def test_many_channels_of_different_sizes_and_small_day_files(large: Export) -> None:
    assert len(large.channels) == 30 and len(large.groups) >= 1
    names = [c["name"] for c in large.channels + large.groups]
    assert len(set(names)) == len(names)
    sizes = Counter(folder for folder, _, _ in large.messages)
    assert set(sizes) == set(names), "every channel has messages"
    ordered = sorted(sizes.values(), reverse=True)
    assert ordered[0] > 8 * statistics.median(ordered), "a few busy channels, many quiet ones"
    members = sorted(len(c["members"]) for c in large.channels)
    assert members[-1] >= 150 and members[0] <= 30, "channels have their own member sets"
    n_files = sum(1 for rel in large.files if "/" in rel)
    mean = len(large.messages) / n_files
    assert 15 <= mean <= 120, f"{mean:.1f} messages per day file"
    days_per_channel = Counter(rel.split("/")[0] for rel in large.files if "/" in rel)
    assert min(days_per_channel.values()) < 60 < max(days_per_channel.values()), "quiet channels are silent most days"


def test_every_message_is_valid(large: Export) -> None:
    """What the export format says: arrays of message objects, ts strings unique and increasing, users known."""
    folders = {c["name"] for c in large.channels + large.groups}
    known = {u["id"] for u in large.users}
    bot_ids = {u["profile"]["bot_id"] for u in large.users if u["is_bot"]}
    bot_users = {u["id"] for u in large.users if u["is_bot"]}
    for rel, body in large.files.items():
        if "/" not in rel:
            continue
        folder, name = rel.split("/")
        assert folder in folders and DAY_FILE.match(name), rel
        day = json.loads(body)
        assert isinstance(day, list)
        ts = [m["ts"] for m in day]
        assert ts == sorted(ts) and len(set(ts)) == len(ts), rel
        for m in day:
            assert m["type"] == "message" and TS.match(m["ts"]) and isinstance(m["text"], str), m
            when = datetime.fromtimestamp(int(m["ts"].split(".")[0]), timezone.utc).date().isoformat()
            assert when == name.removesuffix(".json"), (rel, m["ts"])
            assert m.get("subtype") in SUBTYPES, m.get("subtype")
            if m.get("subtype") == "bot_message":
                assert m["bot_id"] in bot_ids and "user" not in m
            else:
                assert m["user"] in known, m
            for uid in MENTION.findall(m["text"]):
                assert uid in known, uid
            if "subtype" not in m and m["user"] not in bot_users:
                assert m["client_msg_id"] and m["blocks"] and m["user_profile"]["real_name"]
    blob = "\n".join(m["text"] for _, _, m in large.messages)
    for needle in ("<https://", "```", ":+1:", "&amp;", "<#C", "<@U"):
        assert needle in blob
    subtypes = Counter(m.get("subtype") for _, _, m in large.messages)
    for st in SUBTYPES - {None}:
        assert subtypes[st] >= 1, st
    assert subtypes["channel_join"] < 0.05 * len(large.messages) and subtypes["bot_message"] < 0.05 * len(large.messages)


def test_threads_and_channel_runs(large: Export) -> None:
    threads = large.threads()
    bot_user_of = {u["profile"]["bot_id"]: u["id"] for u in large.users if u["is_bot"]}
    for (folder, thread_ts), ms in threads.items():
        parent, replies = ms[0], ms[1:]
        assert parent["ts"] == thread_ts, (folder, thread_ts)
        assert parent["reply_count"] == len(replies) and parent["latest_reply"] == replies[-1]["ts"]
        assert set(parent["reply_users"]) == {m["user"] for m in replies}
        if parent.get("subtype") != "tombstone":
            assert all(m["parent_user_id"] == parent.get("user", bot_user_of.get(parent.get("bot_id"))) for m in replies)
    n_replies = sum(len(ms) - 1 for ms in threads.values())
    assert len(threads) >= 500
    assert 0.25 < n_replies / len(large.messages) < 0.6, "both threads and channel runs"


def test_truth_matches_the_files(large: Export) -> None:
    header = large.files["truth.csv"].decode().splitlines()[0]
    assert header == "ts,channel,conversation_id,reply_to_ts"
    rows = _truth(large)
    in_files = {(f, m["ts"]) for f, _, m in large.messages}
    by_conv: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        assert (r["channel"], r["ts"]) in in_files, r
        by_conv[r["conversation_id"]].append(r)
    assert len({(r["channel"], r["ts"]) for r in rows}) == len(rows)
    assert len(rows) > 0.9 * len(large.messages)
    for conv, rs in by_conv.items():
        assert len({r["channel"] for r in rs}) == 1, conv
        stamps = {r["ts"] for r in rs}
        starts = [r for r in rs if not r["reply_to_ts"]]
        assert len(starts) == 1, conv
        for r in rs:
            if r["reply_to_ts"]:
                assert r["reply_to_ts"] in stamps and r["reply_to_ts"] < r["ts"], r
    assert statistics.mean(len(rs) for rs in by_conv.values()) > 3


def test_who_answers_is_learnable(large: Export) -> None:
    """Newcomers answer a realistic share; mentions, expertise and the conversation itself predict who."""
    author = {(f, m["ts"]): m.get("user") or m.get("bot_id") for f, _, m in large.messages}
    text = {(f, m["ts"]): m["text"] for f, _, m in large.messages}
    humans = _humans(large)
    team_of = {uid: u["profile"]["title"].split(", ")[1] for uid, u in humans.items()}
    teams = set(team_of.values())
    by_conv: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in _truth(large):
        by_conv[r["conversation_id"]].append(r)
    replies = newcomers = mention_n = mention_hits = expert_n = expert_hits = 0
    next_author: Counter[str] = Counter()
    team_msgs: Counter[str] = Counter(team_of[a] for a in author.values() if a in team_of)
    expert_base = 0.0
    for rs in by_conv.values():
        rs.sort(key=lambda r: r["ts"])
        keys = [(r["channel"], r["ts"]) for r in rs]
        root_team = next((t for t in teams if re.search(rf"\bthe {re.escape(t)} ", text[keys[0]])), None)
        seen = {author[keys[0]]}
        for prev, key in zip(keys, keys[1:]):
            a = author[key]
            if a == author[prev] or a not in humans:
                continue
            replies += 1
            newcomers += a not in seen
            next_author[a] += 1
            for uid in set(MENTION.findall(text[prev])) - {author[prev]}:
                mention_n += 1
                mention_hits += a == uid
            if root_team is not None and a not in seen:
                expert_n += 1
                expert_hits += team_of[a] == root_team
                expert_base += team_msgs[root_team] / sum(team_msgs.values())
            seen.add(a)
    share = newcomers / replies
    assert 0.2 <= share <= 0.45, f"share of replies by people new to the conversation: {share:.2f}"
    assert mention_n >= 100 and mention_hits / mention_n > 3 * max(next_author.values()) / replies
    # a newcomer answering a question about "the ledger ..." is far likelier to be on the ledger team
    assert expert_n >= 100 and expert_hits / expert_n > 3 * expert_base / expert_n, (expert_hits, expert_n, expert_base)


def test_days_are_written_as_they_end(tmp_path: Path) -> None:
    """Memory does not grow with the export: a channel holds only today and the days its threads still reach."""
    ws = build_large_workspace(SEED, n_people=SIZES["people"], n_channels=SIZES["channels"], days=SIZES["days"])
    budgets = split_budget(SIZES["messages"], [c.share for c in ws.channels])
    busiest = max(range(len(budgets)), key=budgets.__getitem__)
    sim = LargeChannelSimulator(ws, busiest, SEED, budgets[busiest], tmp_path, None)
    held: list[int] = []
    flush = sim._flush

    def spy(before_day: int | None) -> None:
        held.append(sum(len(v) for v in sim.buffer.values()))
        flush(before_day)
        assert before_day is None or all(day >= before_day for day in sim.buffer)
        assert len(sim.buffer) <= 2 and len(sim.used_ts) <= 2 * budgets[busiest] / SIZES["days"] + 200

    sim._flush = spy  # type: ignore[method-assign]
    stats = sim.run()
    assert stats.messages == budgets[busiest]
    assert len(held) >= 300, "a flush at the end of every day (until the budget is spent)"
    assert max(held) < 0.1 * budgets[busiest], "a busy day and its spill, not the channel"


def test_ingest_and_dbt_build_accept_it(large: Export, tmp_path: Path) -> None:
    paths = Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")
    result = ingest(paths, large.root)
    assert result.n_messages == SIZES["messages"]
    assert not [i for i in result.issues if "truth" in i.file], "truth.csv is not an export file"
    summary = build(paths, result.export_path, run_tests=True, quiet=True)
    assert summary.n_examples > 8000
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        [(counted,)] = con.execute("select sum(n_messages) from message_fate_counts").fetchall()
        [(labels,)] = con.execute("select count(*) from user_labels").fetchall()
        [(newcomer,)] = con.execute(
            "select avg(case when responder_spoke_before then 0.0 else 1.0 end) from training_examples").fetchall()
    assert counted == SIZES["messages"]
    assert labels > 150
    assert 0.2 < newcomer < 0.5


def test_cli_large_profile(tmp_path: Path) -> None:
    app = typer.Typer()
    sample_cmd.register(app)

    @app.callback()
    def _root() -> None:
        """Test root."""

    runner = CliRunner()
    out = tmp_path / "big"
    args = ["sample", "generate", str(out), "--profile", "large", "--people", "30", "--channels", "12",
            "--messages", "3000", "--days", "60", "--seed", "5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 3,000 messages" in result.output and "truth.csv" in result.output
    assert (out / "truth.csv").is_file() and not (out / ".truth-parts").exists()
    assert len(json.loads((out / "channels.json").read_text())) == 12
    result = runner.invoke(app, [*args, "--force", "--no-truth"])
    assert result.exit_code == 0, result.output
    assert not (out / "truth.csv").exists()
    assert runner.invoke(app, ["sample", "generate", "--profile", "large"]).exit_code == 2, "no output folder"
    bad = runner.invoke(app, ["sample", "generate", str(tmp_path / "x"), "--profile", "large", "--people", "5"])
    assert bad.exit_code == 2 and "at least 10" in bad.output
    help_text = runner.invoke(app, ["sample", "generate", "--help"]).output
    for option in ("--profile", "--truth", "--people", "--channels", "--messages", "--days"):
        assert option in help_text
