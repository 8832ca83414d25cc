"""`beep predict` builds prompts like the training prompts: its text cleaning equals the dbt macro's
on the sample's messages, masks PII before anything reaches a model, and a channel's conversation
in progress reproduces the training prompt of the reply that followed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from beep.config import PROJECT_DIR
from beep.db import open_duckdb
from beep.live.predict import conversation_at, text_conversation
from beep.rules.messages import CleaningRules, MessageRules
from beep.rules.prompts import PromptSettings


def test_cleaning_equals_the_dbt_macro_on_the_sample(built_db: Path) -> None:
    con = open_duckdb(str(built_db), read_only=True)
    try:
        names = dict(con.execute("select user_id, user_name from stg_slack__users").fetchall())
        rows = con.execute(
            """
            select m.text, c.clean_text
            from stg_slack__messages m join int_slack__messages_cleaned c using (channel_folder, ts)
            where m.text is not null and c.clean_text is not null
            order by (m.text similar to '.*[<@`:].*') desc, hash(m.ts)
            limit 150
            """
        ).fetchall()
    finally:
        con.close()
    runner = MessageRules(CleaningRules.from_project(PROJECT_DIR))  # one connection for all (as the Slack app)
    assert any("<@" in raw or "```" in raw or "<http" in raw for raw, _ in rows)
    try:
        mismatches = [(raw, want, runner.clean(raw, names)) for raw, want in rows]
    finally:
        runner.close()
    mismatches = [m for m in mismatches if m[1] != m[2]]
    assert not mismatches, mismatches[:3]


def test_pii_links_and_code_never_reach_the_prompt() -> None:
    rules = CleaningRules.from_project(PROJECT_DIR)
    conv = text_conversation(
        "mail <@U1> at jane.doe@example.com or call +1 415-555-0134\n\n"
        "see <https://wiki.acme.io/x|the runbook> and ```rm -rf /tmp/x``` :tada:",
        PromptSettings.from_project(PROJECT_DIR), rules=rules, user_names={"U1": "jane"},
    )
    assert conv.prompt == "mail @jane at [email] or call [phone]\n\nsee the runbook and\n\n###\n\n"


def test_a_conversation_in_progress_reproduces_the_training_prompt(built_db: Path) -> None:
    """With context_excludes_responder false (the default) a training window is the previous messages,
    whoever wrote them, so `beep predict --channel --at` just before a reply rebuilds its training
    prompt exactly — also when the responder wrote in that window (the seed's rule removed those)."""
    con = open_duckdb(str(built_db), read_only=True)
    try:
        examples = con.execute(
            """
            select t.channel_id, t.target_at, t.prompt, t.conversation_id, t.prior_participant_ids,
                   exists (select 1 from int_conversation_windows w
                           where w.conversation_id = t.conversation_id and w.target_ts = t.target_ts
                             and w.context_user_id = t.responder_user_id) as responder_in_window
            from training_examples t
            join int_conversations c on c.conversation_id = t.conversation_id and c.ts = t.target_ts
            where c.position <= 50  -- prior_participant_ids looks 50 messages back
            order by hash(t.example_id)
            limit 200
            """
        ).fetchall()
        settings = PromptSettings.from_project(PROJECT_DIR)
        assert settings.context_excludes_responder is False and settings.form_warnings() == []
        checked = {True: 0, False: 0}
        for channel_id, target_at, prompt, conversation_id, prior, responder_in_window in examples:
            conv = conversation_at(con, channel_id, target_at - timedelta(microseconds=1), settings)
            if conv.conversation_id != conversation_id:
                continue  # another conversation of the channel (e.g. a thread) was more recent
            assert conv.prompt == prompt
            assert list(conv.prior_participant_ids) == list(prior)
            checked[responder_in_window] += 1
        assert checked[True] >= 20 and checked[False] >= 20, checked
    finally:
        con.close()


def test_text_mentions_count_like_the_training_data() -> None:
    names = {"U1": "marco", "U2": "tom", "U3": "Priya Raman"}
    conv = text_conversation(
        "ping <@U2|tom> about the invoice\n\nwrite to ops@marco.io or x.@marco\n\n"
        "@MARCO the login form is broken, cc @priya raman and @nobody",
        PromptSettings.from_project(PROJECT_DIR), user_names=names,
    )
    # the most recent message first, each person once; e-mail addresses are not mentions
    assert conv.mentioned_user_ids == ("U1", "U3", "U2")
    assert conv.as_model_row()["mentioned_user_ids"] == ["U1", "U3", "U2"]


def test_text_keeps_the_last_context_messages_like_a_training_prompt() -> None:
    text = "\n\n".join(f"message {i} for <@U{i}>" for i in range(1, 9))
    conv = text_conversation(text, PromptSettings.from_project(PROJECT_DIR, {"context_messages": 5}), user_names={})
    assert conv.n_messages == 5
    assert conv.prompt.startswith("message 4 for @someone") and "message 3" not in conv.prompt
    assert conv.mentioned_user_ids == ("U8", "U7", "U6", "U5", "U4")


def test_predict_builds_prompts_with_the_vars_the_dataset_was_built_with(tmp_path: Path) -> None:
    """`beep run --var context_messages=2`: prediction prompts hold 2 messages too, as the training ones."""
    from beep.build import last_build_vars
    from beep.db import connect

    db = tmp_path / "beep.duckdb"
    with connect(db) as con:
        con.execute("insert into pipeline_steps (step, fingerprint, result) values ('build', 'f1', ?)",
                    ['{"export_path": "x", "n_examples": 1, "dbt_vars": {"context_messages": 2, "mask_pii": false}}'])
        built_with = last_build_vars(con)
    assert built_with == {"context_messages": 2, "mask_pii": False}
    settings = PromptSettings.from_project(PROJECT_DIR, built_with)
    rules = CleaningRules.from_project(PROJECT_DIR, built_with)
    assert settings.context_messages == 2 and rules.mask_pii is False and rules.clean_code is True
    conv = text_conversation("m1\n\nm2\n\nm3 mail a@b.io", settings, rules=rules)
    assert conv.n_messages == 2 and conv.prompt == "m2\n\nm3 mail a@b.io\n\n###\n\n"


def test_predict_warns_when_the_dataset_left_out_the_responders_messages() -> None:
    """Built with context_excludes_responder=true, the training prompts lacked the responder's own
    messages; a prediction cannot know whose to leave out, so it keeps everyone's and says so once."""
    settings = PromptSettings.from_project(PROJECT_DIR, {"context_excludes_responder": True, "context_messages": 3})
    assert settings.context_excludes_responder is True
    [warning] = settings.form_warnings()
    assert "context_excludes_responder=true" in warning and "another form" in warning and "last 3 messages" in warning
    conv = text_conversation("ana: a1\n\nben: b2\n\nana: a3\n\nben: b4", settings, user_names={})
    assert conv.n_messages == 3 and conv.prompt.startswith("ben: b2")  # nothing removed
    assert PromptSettings.from_project(PROJECT_DIR, {"context_excludes_responder": False}).form_warnings() == []
