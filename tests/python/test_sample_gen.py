"""The sample workspace generator: determinism, export structure, team behaviour, the committed sample."""

from __future__ import annotations

import dataclasses
import json
import re
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
import typer
from beep.commands import sample_cmd
from beep.config import SAMPLE_EXPORT
from beep.sample import (
    SAMPLE,
    SAMPLE_CHANNELS,
    SAMPLE_DAYS,
    SAMPLE_MESSAGES,
    SAMPLE_PEOPLE,
    SAMPLE_SEED,
    OutputExistsError,
    generate,
    generate_export,
)
from beep.sample.generator import split_budget
from typer.testing import CliRunner

MENTION = re.compile(r"<@(U[A-Z0-9]+)(?:\|[^>]*)?>")
DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
TS = re.compile(r"^\d{10}\.\d{6}$")


@dataclass
class Export:
    """An export folder read back: every file's bytes and every message with its channel folder and day."""

    root: Path
    files: dict[str, bytes]
    users: list[dict]
    channels: list[dict]
    groups: list[dict]
    messages: list[tuple[str, str, dict]] = field(default_factory=list)  # (folder, day file stem, message)

    @classmethod
    def read(cls, root: Path) -> Export:
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        exp = cls(root, files, json.loads(files["users.json"]), json.loads(files["channels.json"]),
                  json.loads(files["groups.json"]))
        for rel, body in files.items():
            if "/" in rel:
                folder, name = rel.split("/")
                for m in json.loads(body):
                    exp.messages.append((folder, name.removesuffix(".json"), m))
        return exp

    def threads(self) -> dict[tuple[str, str], list[dict]]:
        """(folder, thread_ts) → messages of the thread (parent first), in ts order."""
        out: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for folder, _, m in self.messages:
            if "thread_ts" in m:
                out[(folder, m["thread_ts"])].append(m)
        for ms in out.values():
            ms.sort(key=lambda m: m["ts"])
        return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """The generator's output with the committed sample's settings."""
    out = tmp_path_factory.mktemp("gen") / "acme"
    summary = generate_export(out, messages=SAMPLE_MESSAGES, seed=SAMPLE_SEED, people=SAMPLE_PEOPLE,
                              channels=SAMPLE_CHANNELS, days=SAMPLE_DAYS)
    assert summary.messages == SAMPLE_MESSAGES
    return Export.read(out)


def test_committed_sample_is_exactly_the_generator_output(sample: Export) -> None:
    committed = Export.read(SAMPLE_EXPORT)
    assert sorted(committed.files) == sorted(sample.files), (
        "sample_data/acme-slack-export differs from the generator's output: regenerate it with "
        "`beep sample generate --out sample_data/acme-slack-export --force` instead of editing it by hand")
    changed = [name for name in sample.files if committed.files[name] != sample.files[name]]
    assert not changed, f"files edited by hand or generator changed without regenerating: {changed[:5]}"


def test_same_seed_gives_identical_bytes_also_in_parallel(tmp_path: Path) -> None:
    a = generate_export(tmp_path / "a", messages=1200, seed=3, people=12, channels=8, days=40)
    b = generate_export(tmp_path / "b", messages=1200, seed=3, people=12, channels=8, days=40, workers=2)
    c = generate_export(tmp_path / "c", messages=1200, seed=4, people=12, channels=8, days=40)
    ea, eb, ec = (Export.read(s.out_dir) for s in (a, b, c))
    assert ea.files == eb.files
    assert ea.files != ec.files
    assert a.messages == len(ea.messages) == 1200
    assert len(ea.users) == 12 + 2 + 1  # people, bots, Slackbot
    assert len(ea.channels) == 8 and len(ea.groups) == 1


def test_users_and_channels(sample: Export) -> None:
    humans = [u for u in sample.users if not u["is_bot"] and u["id"] != "USLACKBOT"]
    bots = [u for u in sample.users if u["is_bot"]]
    assert len(humans) == 10 and 1 <= len(bots) <= 2
    assert len({u["profile"]["title"] for u in humans}) == 10, "each person has a distinct field"
    assert len({u["id"] for u in sample.users}) == len(sample.users)
    assert all(re.fullmatch(r"U0[A-Z0-9]{9}", u["id"]) for u in humans + bots)
    assert 5 <= len(sample.channels) <= 6 and len(sample.groups) == 1
    user_ids = {u["id"] for u in sample.users}
    for ch in sample.channels + sample.groups:
        assert ch["members"] and set(ch["members"]) <= user_ids
        assert ch["topic"]["value"] and ch["purpose"]["value"] and isinstance(ch["created"], int)
        assert (sample.root / ch["name"]).is_dir(), f"no day files for {ch['name']}"
    assert len({len(c["members"]) for c in sample.channels}) > 1, "channels have different member mixes"


def test_day_files_are_arrays_with_increasing_unique_ts(sample: Export) -> None:
    folders = {c["name"] for c in sample.channels + sample.groups}
    empty = 0
    for rel, body in sample.files.items():
        if "/" not in rel:
            continue
        folder, name = rel.split("/")
        assert folder in folders and DAY_FILE.match(name), rel
        day = json.loads(body)
        assert isinstance(day, list), rel
        empty += not day
        ts = [m["ts"] for m in day]
        assert ts == sorted(ts), f"{rel}: ts not increasing"
        for m in day:
            assert TS.match(m["ts"]), m["ts"]
            when = datetime.fromtimestamp(int(m["ts"].split(".")[0]), UTC).date().isoformat()
            assert when == name.removesuffix(".json"), f"{rel}: {m['ts']} is on {when}"
    assert empty >= 1, "a real export has some [] day files"
    per_channel = Counter((folder, m["ts"]) for folder, _, m in sample.messages)
    assert max(per_channel.values()) == 1, "ts must be unique per channel"
    stamps = sorted(int(m["ts"].split(".")[0]) for _, _, m in sample.messages)
    assert (stamps[-1] - stamps[0]) / 86400 > 150, "the sample spans about six months"


def test_threads_are_consistent(sample: Export) -> None:
    threads = sample.threads()
    bot_user_of = {u["profile"]["bot_id"]: u["id"] for u in sample.users if u["is_bot"]}
    for (folder, thread_ts), ms in threads.items():
        parent, replies = ms[0], ms[1:]
        assert parent["ts"] == thread_ts, f"{folder} {thread_ts}: reply without its parent"
        assert parent["reply_count"] == len(replies)
        repliers = [m["user"] for m in replies]
        assert set(parent["reply_users"]) == set(repliers)
        assert parent["latest_reply"] == replies[-1]["ts"]
        assert all(m["ts"] > parent["ts"] for m in replies)
        if parent.get("subtype") != "tombstone":  # a deleted parent shows as Slackbot's
            assert all(m["parent_user_id"] == parent.get("user", bot_user_of.get(parent.get("bot_id"))) for m in replies)
    assert len(threads) >= 200
    days_of = {(f, m["ts"]): d for f, d, m in sample.messages}
    crossing = sum(1 for (f, t), ms in threads.items() for m in ms[1:] if days_of[(f, m["ts"])] != days_of[(f, t)])
    assert crossing >= 10, "some replies land in a later day's file than their parent"
    subtypes = Counter(m.get("subtype") for ms in threads.values() for m in ms)
    assert subtypes["thread_broadcast"] >= 5 and subtypes["tombstone"] >= 2


def test_markup_and_mess_are_present(sample: Export) -> None:
    texts = [m.get("text", "") for _, _, m in sample.messages]
    blob = "\n".join(texts)
    for needle in ("<https://", "|PR #", "<mailto:", "<#C", "<!here>", ":+1::skin-tone-2:", "```", "&amp;",
                   "&gt;", "\u0000", "\u200f", "\u202e", "\u200d", "\u0301", "部署", "*"):
        assert needle in blob, f"no {needle!r} in the sample's texts"
    assert re.search(r"(?<!`)`[^`\n]+`(?!`)", blob), "inline code"
    assert re.search(r"[\w.]+@(gmail\.com|customer-corp\.com|example\.org|outlook\.com)", blob), "e-mail address"
    assert re.search(r"\d{3}[- ]\d{4}", blob), "phone number"
    assert MENTION.search(blob) and re.search(r"<@U[A-Z0-9]+\|\w+>", blob)
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in blob), "no lone surrogates"
    subtypes = Counter(m.get("subtype") for _, _, m in sample.messages)
    for st in ("channel_join", "channel_leave", "channel_topic", "bot_message", "file_share", "me_message"):
        assert subtypes[st] >= 1, st
    msgs = [m for _, _, m in sample.messages]
    assert any(m.get("subtype") == "file_share" and m["text"] == "" and m["files"] for m in msgs)
    assert any(m.get("subtype") == "bot_message" and "user" not in m and m["bot_id"] for m in msgs)
    bot_users = {u["id"] for u in sample.users if u["is_bot"]}
    assert any(m.get("user") in bot_users and "subtype" not in m for m in msgs), "app bots post as their user"
    assert sum("edited" in m for m in msgs) > 50 and sum("reactions" in m for m in msgs) > 100
    plain = [m for m in msgs if "subtype" not in m and m.get("user") not in bot_users]
    assert all(m["client_msg_id"] and m["team"] and m["user_profile"]["real_name"] for m in plain)


def test_people_behave_like_a_team(sample: Export) -> None:
    """Most replies come from people already in the thread; a mention makes the next reply likelier."""
    field_of = {u["id"]: u["profile"].get("title", "") for u in sample.users}
    existing = replies = 0
    mention_hits = mention_n = 0
    next_author: Counter[str] = Counter()
    n_next = 0
    for ms in sample.threads().values():
        seen = {ms[0].get("user")}
        for prev, m in pairwise(ms):
            replies += 1
            existing += m["user"] in seen
            seen.add(m["user"])
            next_author[m["user"]] += 1
            n_next += 1
            for uid in set(MENTION.findall(prev.get("text", ""))) - {prev.get("user")}:
                mention_n += 1
                mention_hits += m["user"] == uid
    share = existing / replies
    assert 0.5 <= share <= 0.85, f"share of replies by people already in the thread: {share:.2f}"
    mention_rate = mention_hits / mention_n
    top_base_rate = max(next_author.values()) / n_next
    assert mention_n >= 100
    assert mention_rate > 2 * top_base_rate, (mention_rate, top_base_rate)
    # both strong (field words) and weak (small talk) replies exist in quantity
    texts = [m.get("text", "") for ms in sample.threads().values() for m in ms[1:]]
    weak = sum(len(t.split()) <= 2 for t in texts)
    assert 0.15 < weak / len(texts) < 0.6
    assert len(set(field_of.values())) >= 10


def test_split_budget_is_exact() -> None:
    assert split_budget(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(split_budget(1_000_003, [1.0, 1.5, 0.7, 0.4])) == 1_000_003


def test_profile_settings_drive_the_simulator(tmp_path: Path) -> None:
    """A profile is named settings the one simulator reads: the sample without random reactions, edits and
    file shares plans the same workspace and writes none of them, also in parallel."""
    sizes: dict[str, int] = {"messages": 600, "seed": 5, "days": 30}
    base = Export.read(generate(tmp_path / "base", SAMPLE, **sizes).out_dir)
    plain = dataclasses.replace(SAMPLE, random_reaction_rate=0.0, edit_rate=0.0, file_share_rate=0.0)
    summary = generate(tmp_path / "plain", plain, workers=2, **sizes)
    assert summary.messages == 600
    exp = Export.read(summary.out_dir)
    assert exp.files["users.json"] == base.files["users.json"] and exp.channels == base.channels

    def count(e: Export, has: str) -> int:
        return sum(has in m or m.get("subtype") == has for _, _, m in e.messages)

    for key in ("reactions", "edited", "file_share"):
        assert count(base, key) > 0 and count(exp, key) == 0, key
    with pytest.raises(ValueError, match="no workspace planner"):
        generate(tmp_path / "x", dataclasses.replace(SAMPLE, name="medium"), messages=10)


def test_refuses_to_overwrite_or_delete_non_exports(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    generate_export(out, messages=300, days=20)
    with pytest.raises(OutputExistsError, match="--force"):
        generate_export(out, messages=300, days=20)
    generate_export(out, messages=300, days=20, force=True)
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="does not look like a Slack export"):
        generate_export(other, messages=300, force=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_cli_generate_and_zip(tmp_path: Path) -> None:
    app = typer.Typer()
    sample_cmd.register(app)

    @app.callback()
    def _root() -> None:
        """Test root."""

    runner = CliRunner()
    out = tmp_path / "exp"
    result = runner.invoke(app, ["sample", "generate", "--out", str(out), "--messages", "400", "--days", "30",
                                 "--seed", "9", "--people", "5", "--channels", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote 400 messages" in result.output
    assert len(json.loads((out / "channels.json").read_text())) == 3
    again = runner.invoke(app, ["sample", "generate", "--out", str(out), "--messages", "400"])
    assert again.exit_code == 2 and "--force" in again.output
    help_text = runner.invoke(app, ["sample", "generate", "--help"]).output
    for option in ("--out", "--messages", "--seed", "--people", "--channels", "--days", "--workers", "--force"):
        assert option in help_text
    z = tmp_path / "exp.zip"
    result = runner.invoke(app, ["sample", "zip", str(out), str(z)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(z) as zf:
        names = set(zf.namelist())
        assert zf.read("users.json") == (out / "users.json").read_bytes()
    assert names == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    bad = runner.invoke(app, ["sample", "zip", str(tmp_path), str(tmp_path / "x.zip")])
    assert bad.exit_code == 2
