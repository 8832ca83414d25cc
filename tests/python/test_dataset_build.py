"""The dataset built by dbt: counts reconcile, labels follow LabelEncoder, ids are stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.preprocessing import LabelEncoder

from beep.build import build
from beep.config import SAMPLE_EXPORT, Paths
from beep.db import open_duckdb
from slack_fixtures import ExportBuilder, small_team, ts


#: The dataset models and their tests (not the refine/evaluation models downstream).
DATASET = "+training_examples +message_fate_counts"


def _rows(db: Path, sql: str) -> list[tuple]:
    with open_duckdb(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_sample_fate_counts_reconcile_with_raw_messages(built_db: Path) -> None:
    raw = sum(len(json.loads(p.read_text() or "[]")) for p in SAMPLE_EXPORT.glob("*/*.json"))
    [(counted,)] = _rows(built_db, "select sum(n_messages) from message_fate_counts")
    assert raw >= 3000
    assert counted == raw
    [(targets,)] = _rows(built_db, "select sum(n_messages) from message_fate_counts where fate = 'target'")
    [(examples,)] = _rows(built_db, "select count(*) from training_examples")
    assert targets == examples > 1000


def test_labels_match_sklearn_label_encoder(built_db: Path) -> None:
    examples = _rows(built_db, "select responder_user_id, label from training_examples order by example_id")
    encoder = LabelEncoder().fit([user for user, _ in examples])
    expected = encoder.transform([user for user, _ in examples]).tolist()
    assert [label for _, label in examples] == expected
    labels = dict(_rows(built_db, "select user_id, label from user_labels"))
    assert labels == {user: int(i) for i, user in enumerate(encoder.classes_)}


def test_examples_follow_the_seed_format(built_db: Path) -> None:
    rows = _rows(built_db, "select prompt, completion, label, n_context_messages from training_examples")
    for prompt, completion, label, n_context in rows:
        assert prompt.endswith("\n\n###\n\n") and prompt.count("###") == 1
        assert completion == f" {label}"
        assert 1 <= n_context <= 5
        assert len(prompt) <= 5000 + len("\n\n###\n\n")
        for needle in ("<@", "<http", "```", "\x00", "\u200f"):
            assert needle not in prompt
    # context_excludes_responder false (the default): a window is the previous messages, whoever wrote
    # them, as at prediction time: min(context_messages, position - 1) of them, the responder's own too
    [(wrong_count, with_own)] = _rows(built_db, """
        select count(*) filter (where t.n_context_messages <> least(5, c.position - 1)),
               count(*) filter (where exists (select 1 from int_conversation_windows w
                                              where w.conversation_id = t.conversation_id and w.target_ts = t.target_ts
                                                and w.context_user_id = t.responder_user_id))
        from training_examples t join int_conversations c on c.conversation_id = t.conversation_id and c.ts = t.target_ts""")
    assert wrong_count == 0 and with_own > 1000


def test_newcomer_flag_and_context_facts(built_db: Path) -> None:
    [(share,)] = _rows(built_db, "select avg(case when responder_spoke_before then 0.0 else 1.0 end) from training_examples")
    assert 0.1 < share < 0.9
    # the first prior participant wrote the message just before the reply: never the responder
    [(bad,)] = _rows(built_db, "select count(*) from training_examples where prior_participant_ids[1] = responder_user_id")
    assert bad == 0


def _paths(tmp_path: Path, name: str) -> Paths:
    """A DuckDB file of its own, named beep.duckdb like every test's: dbt's saved parse is kept by file
    name and vars (beep.dbt_runner.parse_cache), so a build starts from another test's parse."""
    (tmp_path / name).mkdir(exist_ok=True)
    return Paths(duckdb=tmp_path / name / "beep.duckdb", workdir=tmp_path / name / ".beep")


@pytest.mark.parametrize("split", ["gap", "reply"])
def test_example_ids_are_stable_when_new_days_arrive(tmp_path: Path, split: str) -> None:
    """Under either conversation split: a message's conversation depends only on earlier messages."""
    team = small_team()
    export = team.write(tmp_path / "export")
    first = _paths(tmp_path, "first")
    build(first, export, run_tests=False, quiet=True, select=DATASET, dbt_vars={"conversation_split": split})
    before = dict(_rows(first.duckdb, "select example_id, prompt || completion from training_examples"))

    # a new day: more chatter in general a day later
    team.msg("general", "U002", "anyone up for lunch tomorrow?", ts(24 * 60))
    team.msg("general", "U003", "count me in", ts(24 * 60 + 2))
    export = team.write(tmp_path / "export")
    second = _paths(tmp_path, "second")
    build(second, export, run_tests=False, quiet=True, select=DATASET, dbt_vars={"conversation_split": split})
    after = dict(_rows(second.duckdb, "select example_id, prompt || completion from training_examples"))

    assert before and set(before) < set(after)
    assert all(after[i] == before[i] for i in before)


def test_max_labels_folds_the_rarest_responders_into_other(tmp_path: Path) -> None:
    b = ExportBuilder()
    for i in range(1, 6):
        b.user(f"U00{i}", f"user{i}")
    b.channel("C001", "general")
    # user1 answers most, then user2, …: replies alternate with U005 asking
    minute = 0.0
    for responder, times in (("U001", 5), ("U002", 4), ("U003", 3), ("U004", 1)):
        for _ in range(times):
            b.msg("general", "U005", f"question for {responder}", ts(minute))
            b.msg("general", responder, "answer", ts(minute + 1))
            minute += 30
    export = b.write(tmp_path / "export")
    paths = _paths(tmp_path, "labels")
    build(paths, export, run_tests=True, quiet=True, dbt_vars={"max_labels": 3}, select=DATASET)
    labels = _rows(paths.duckdb, "select user_id, label, n_examples, n_users from user_labels order by label")
    assert labels == [("U001", 0, 5, 1), ("U002", 1, 4, 1), ("__other__", 2, 4, 2)]
    [(n_other,)] = _rows(paths.duckdb, "select count(*) from training_examples where label = 2")
    assert n_other == 4
    # `beep run` says so: the summary counts the responders sharing `other`
    from beep.build import summarize

    assert summarize(paths, export).n_folded_responders == 2


def test_every_cleaning_switch_and_the_gap_can_be_changed_and_the_build_still_passes(tmp_path: Path) -> None:
    """The documented vars are the way to change the rules: `dbt build` (unit tests included,
    which pin their own vars) must pass with any of them, and the prompts follow the switches."""
    b = ExportBuilder()
    b.user("U001", "ana")
    b.user("U002", "ben")
    b.channel("C001", "general")
    b.msg("general", "U001", "<@U002> mail ana@example.com :tada: see <https://x.io|the doc> `ls`", ts(0))
    b.msg("general", "U002", "on it", ts(3))  # 3 minutes later: a new conversation when the gap is 2
    b.msg("general", "U001", "thanks", ts(4))
    export = b.write(tmp_path / "export")
    paths = _paths(tmp_path, "switched")
    switched = {"mask_pii": False, "mention_style": "remove", "clean_emoji": False, "clean_links": False,
                "clean_code": False, "clean_channel_ids": False, "conversation_gap_minutes": 2}
    build(paths, export, run_tests=True, quiet=True, dbt_vars=switched, select=DATASET)
    prompts = [p for (p,) in _rows(paths.duckdb, "select prompt from training_examples order by target_ts")]
    assert prompts == ["on it\n\n###\n\n"]  # the first message is alone in its conversation now
    [(raw_clean,)] = _rows(paths.duckdb, "select clean_text from int_slack__messages_cleaned where ts = '" + ts(0) + "'")
    assert "ana@example.com" in raw_clean and ":tada:" in raw_clean and "<https://x.io|the doc>" in raw_clean
    assert "`ls`" in raw_clean and "@ben" not in raw_clean


def test_a_wrong_var_stops_the_build_before_anything_runs_and_says_why(tmp_path: Path) -> None:
    import pytest

    from beep.dbt_runner import DbtFailed

    paths = _paths(tmp_path, "badvars")
    with pytest.raises(DbtFailed) as err:
        build(paths, SAMPLE_EXPORT, run_tests=False, quiet=True,
              dbt_vars={"context_messages": 0, "mention_style": "nick", "prompt_suffix": "\n\n",
                        "context_excludes_responder": "yes", "conversation_split": "threads"}, select=DATASET)
    message = str(err.value)
    assert "context_messages must be a whole number of at least 1, got 0" in message
    assert 'context_excludes_responder must be true or false' in message and 'got "yes"' in message
    assert "mention_style must be 'name' or 'remove'" in message and "prompt_suffix must hold a visible separator" in message
    assert "conversation_split must be 'gap'" in message and 'got "threads"' in message
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        assert con.execute("select count(*) from information_schema.tables where table_name = 'stg_slack__messages'").fetchone()[0] == 0


def test_unused_messages_say_why(tmp_path: Path) -> None:
    b = ExportBuilder()
    b.user("U001", "ana")
    b.user("U002", "ben")
    b.channel("C001", "general")
    for i in range(7):  # ana writes 7 messages 10 s apart, then ben replies: the first 2 are beyond the window
        b.msg("general", "U001", f"step {i} of the migration", ts(i / 6))
    b.msg("general", "U002", "looks good", ts(2))
    b.msg("general", "U002", "anyone?", ts(60))  # alone: an hour later
    b.msg("general", "U001", "hi", ts(120))
    b.msg("general", "U001", "still there?", ts(121))  # only its own author after it, nobody replied
    export = b.write(tmp_path / "export")
    paths = _paths(tmp_path, "unused")
    build(paths, export, run_tests=True, quiet=True, select=DATASET)
    fates = dict(((f, r), n) for f, r, n in _rows(paths.duckdb, "select fate, reason, sum(n_messages) from message_fate_counts group by all"))
    assert fates == {("target", None): 1, ("context_only", None): 5, ("unused", "outside_context_window"): 2,
                     ("unused", "alone_in_conversation"): 1, ("unused", "no_later_reply"): 2}


def test_the_context_window_keeps_the_responders_messages_unless_told_otherwise(tmp_path: Path) -> None:
    """A, B, A, B: by default the last B's prompt holds A, B, A (what a prediction sees, nobody knowing
    yet who answers); with context_excludes_responder true (the seed's rule) only A, A. The example
    count and ids stay the same (one example per reply); `dbt build` passes with either setting."""
    b = ExportBuilder()
    for user_id, name in (("U001", "ana"), ("U002", "ben")):
        b.user(user_id, name)
    b.channel("C001", "general")
    for i, (user, text) in enumerate((("U001", "a1 the deploy failed"), ("U002", "b2 which service"),
                                      ("U001", "a3 the billing one"), ("U002", "b4 on it"))):
        b.msg("general", user, text, ts(i))
    export = b.write(tmp_path / "export")
    built = {}
    for setting in (False, True):
        paths = _paths(tmp_path, f"excludes_{str(setting).lower()}")
        build(paths, export, run_tests=True, quiet=True, dbt_vars={"context_excludes_responder": setting}, select=DATASET)
        built[setting] = _rows(paths.duckdb, "select example_id, prompt, n_context_messages from training_examples order by target_ts")
    keep, drop = built[False], built[True]
    assert [i for i, _, _ in keep] == [i for i, _, _ in drop] and len(keep) == 3
    suffix = "\n\n###\n\n"
    assert [(p, n) for _, p, n in keep] == [
        ("a1 the deploy failed" + suffix, 1),
        ("a1 the deploy failed\n\nb2 which service" + suffix, 2),
        ("a1 the deploy failed\n\nb2 which service\n\na3 the billing one" + suffix, 3),
    ]
    assert [(p, n) for _, p, n in drop] == [
        ("a1 the deploy failed" + suffix, 1),
        ("b2 which service" + suffix, 1),
        ("a1 the deploy failed\n\na3 the billing one" + suffix, 2),
    ]
