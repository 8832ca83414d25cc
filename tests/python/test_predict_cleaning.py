"""`beep predict` builds prompts like the training prompts: its text cleaning equals the dbt macro's
on the sample's messages, masks PII before anything reaches a model, and a channel's conversation
in progress reproduces the training prompt of the reply that followed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb

from beep.config import PROJECT_DIR
from beep.evaluate.clean import CleaningRules, clean_message
from beep.evaluate.predict import PromptSettings, conversation_at, text_conversation


def test_cleaning_equals_the_dbt_macro_on_the_sample(built_db: Path) -> None:
    con = duckdb.connect(str(built_db), read_only=True)
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
    rules = CleaningRules.from_project(PROJECT_DIR)
    assert any("<@" in raw or "```" in raw or "<http" in raw for raw, _ in rows)
    mismatches = [(raw, want, clean_message(raw, rules, names)) for raw, want in rows]
    mismatches = [m for m in mismatches if m[1] != m[2]]
    assert not mismatches, mismatches[:3]


def test_pii_links_and_code_never_reach_the_prompt() -> None:
    rules = CleaningRules()
    conv = text_conversation(
        "mail <@U1> at jane.doe@example.com or call +1 415-555-0134\n\n"
        "see <https://wiki.acme.io/x|the runbook> and ```rm -rf /tmp/x``` :tada:",
        PromptSettings(), rules=rules, user_names={"U1": "jane"},
    )
    assert conv.prompt == "mail @jane at [email] or call [phone]\n\nsee the runbook and\n\n###\n\n"


def test_a_conversation_in_progress_reproduces_the_training_prompt(built_db: Path) -> None:
    con = duckdb.connect(str(built_db), read_only=True)
    try:
        # replies whose context window is the whole conversation so far and holds no message of the
        # responder (then nothing was removed from it), outside threads
        examples = con.execute(
            """
            select t.channel_id, t.target_at, t.prompt, t.conversation_id, t.prior_participant_ids
            from training_examples t
            join int_conversations c on c.conversation_id = t.conversation_id and c.ts = t.target_ts
            where not t.responder_spoke_before and not c.is_in_thread and c.position <= 5
              and t.n_context_messages = c.position - 1
            order by t.example_id
            limit 25
            """
        ).fetchall()
        assert examples
        checked = 0
        for channel_id, target_at, prompt, conversation_id, prior in examples:
            conv = conversation_at(con, channel_id, target_at - timedelta(microseconds=1), PromptSettings.from_project(PROJECT_DIR))
            if conv.conversation_id != conversation_id:
                continue  # another conversation of the channel was more recent
            assert conv.prompt == prompt
            assert list(conv.prior_participant_ids) == list(prior)
            checked += 1
        assert checked >= 5
    finally:
        con.close()


def test_text_mentions_count_like_the_training_data() -> None:
    names = {"U1": "marco", "U2": "tom", "U3": "Priya Raman"}
    conv = text_conversation(
        "ping <@U2|tom> about the invoice\n\nwrite to ops@marco.io or x.@marco\n\n"
        "@MARCO the login form is broken, cc @priya raman and @nobody",
        PromptSettings(), user_names=names,
    )
    # the most recent message first, each person once; e-mail addresses are not mentions
    assert conv.mentioned_user_ids == ("U1", "U3", "U2")
    assert conv.as_model_row()["mentioned_user_ids"] == ["U1", "U3", "U2"]


def test_text_keeps_the_last_context_messages_like_a_training_prompt() -> None:
    text = "\n\n".join(f"message {i} for <@U{i}>" for i in range(1, 9))
    conv = text_conversation(text, PromptSettings(context_messages=5), user_names={})
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
