"""The data tests of a daily `beep build` over the tables kept day file by day file check only the
rows no passing build tested (macros/untested_rows.sql), and still fail where those rows are bad.

The sample's build passed, so every <model>__untested table is empty. On a copy, a scope is added
to training_examples__untested as a build's pre-hook adds it (one channel from one moment on), and
rows are broken inside and outside it: with BEEP_UNTESTED_ROWS=1 (what `beep build` passes after a
passing build of the same project) a test reads the scope's rows only, a unique test also every
row sharing a key with them (a duplicate across the scope's edge fails), and the singular tests
over prompts the scope's conversations; without it every row is read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from beep.build import EvalRunsTested, clear_untested_scopes, unit_tests_key
from beep.config import SAMPLE_EXPORT, Paths
from beep.db import open_duckdb
from beep.dbt_runner import DbtFailed, dbt_env, run_dbt

SCOPED = {"BEEP_UNTESTED_ROWS": "1"}
#: the models kept day file by day file (macros/incremental_messages.sql): each has its table of untested scopes
KEPT = ("stg_slack__reaction_counts", "stg_slack__reactions", "int_slack__messages_cleaned",
        "int_conversation_links", "int_conversations", "training_examples")


def _sql(paths: Paths, *statements: str) -> list[tuple]:
    with open_duckdb(str(paths.duckdb)) as con:
        rows: list[tuple] = []
        for statement in statements:
            rows = con.execute(statement).fetchall()
        return rows


def _test(paths: Paths, select: str, scoped: bool) -> None:
    run_dbt(paths, ["test", "--select", *select.split()], quiet=True, export=SAMPLE_EXPORT, extra_env=SCOPED if scoped else None)


def _busiest_channel(paths: Paths) -> tuple:
    """The channel with the most examples: its id, its latest example's moment, its first and last example."""
    return _sql(paths, """
        select channel_id, max(target_at), arg_min(example_id, target_at), arg_max(example_id, target_at)
        from marts.training_examples group by channel_id order by count(*) desc limit 1""")[0]


def _compiled(paths: Paths, name: str) -> str:
    target = Path(dbt_env(paths)["DBT_TARGET_PATH"]) / "compiled" / "beep"
    return next(target.rglob(f"{name}*.sql")).read_text()


def test_a_passing_build_leaves_nothing_untested_and_beep_asks_for_scoped_tests_after_it(fresh_paths: Paths) -> None:
    paths = fresh_paths
    for model in KEPT:  # made by the first build's pre-hooks ('whole'), emptied when it passed
        schema = _sql(paths, f"select schema_name from duckdb_tables() where table_name = '{model}__untested'")
        assert schema, model
        assert _sql(paths, f'select count(*) from "{schema[0][0]}"."{model}__untested"') == [(0,)]
    key = unit_tests_key(paths, None)
    assert EvalRunsTested.of(paths, key, full_refresh=False).env()["BEEP_UNTESTED_ROWS"] == "1"
    assert "BEEP_UNTESTED_ROWS" not in EvalRunsTested.of(paths, key, full_refresh=True).env()
    assert "BEEP_UNTESTED_ROWS" not in EvalRunsTested.of(paths, "another project", full_refresh=False).env()


def test_scoped_tests_read_the_scope_and_still_fail_on_its_rows(fresh_paths: Paths) -> None:
    paths = fresh_paths
    # the channel with the most examples: a scope from its latest example's moment on, as a build adds
    channel, last_at, first_id, last_id = _busiest_channel(paths)
    _sql(paths, "insert into marts.training_examples__untested (whole, channel_id, from_at, at_column, recorded_at) "
                "values (false, ?, ?, 'target_at', current_timestamp)".replace("?", "'%s'") % (channel, last_at))
    # a channel id with a quote (in the literal the predicate lists): quoted, not SQL
    _sql(paths, "insert into marts.training_examples__untested (whole, channel_id, from_at, at_column, recorded_at) "
                "values (false, 'it''s'' or true --', null, 'target_at', current_timestamp)")
    assert _sql(paths, "select count(*) from marts.training_examples") > [(2,)]

    # a kept row outside the scope, broken: the scoped test does not read it, an unscoped one does
    _sql(paths, f"update marts.training_examples set prompt = 'no suffix' where example_id = '{first_id}'")
    _test(paths, "assert_prompt_suffix_once_at_end", scoped=True)
    assert f"channel_id = '{channel}' and target_at >= cast(" in _compiled(paths, "assert_prompt_suffix_once_at_end")
    with pytest.raises(DbtFailed, match="Failure in test assert_prompt_suffix_once_at_end"):
        _test(paths, "assert_prompt_suffix_once_at_end", scoped=False)

    # a row in the scope with the id of a kept row outside it: the unique test finds the duplicate
    _sql(paths, f"""insert into marts.training_examples
                    select * replace ('{channel}' as channel_id, timestamp '{last_at}' + interval 1 minute as target_at)
                    from marts.training_examples where example_id = '{first_id}'""")
    with pytest.raises(DbtFailed, match="Failure in test unique_training_examples_example_id"):
        _test(paths, "unique_training_examples_example_id", scoped=True)
    _sql(paths, f"delete from marts.training_examples where example_id = '{first_id}' and target_at > '{last_at}'")

    # the row in the scope, broken: the scoped tests fail (row by row, and over its conversation)
    _sql(paths, f"update marts.training_examples set prompt = 'no suffix' where example_id = '{last_id}'")
    with pytest.raises(DbtFailed, match="Failure in test assert_prompt_suffix_once_at_end") as failed:
        _test(paths, "assert_prompt_suffix_once_at_end assert_prompts_are_their_windows", scoped=True)
    assert "Failure in test assert_prompts_are_their_windows" in str(failed.value)
    assert "conversation_id in (select conversation_id from" in _compiled(paths, "assert_prompts_are_their_windows")

    # a passing build would empty the scopes; until one passes they stay and are tested again
    assert clear_untested_scopes(paths)["training_examples"] == 2
    assert _sql(paths, "select count(*) from marts.training_examples__untested") == [(0,)]


def test_a_whole_scope_or_no_table_tests_every_row(fresh_paths: Paths) -> None:
    paths = fresh_paths
    _sql(paths, "update marts.training_examples set prompt = 'no suffix' where example_id = "
                "(select min(example_id) from marts.training_examples)")
    _sql(paths, "insert into marts.training_examples__untested (whole, at_column, recorded_at) values (true, 'target_at', current_timestamp)")
    with pytest.raises(DbtFailed, match="Failure in test assert_prompt_suffix_once_at_end"):
        _test(paths, "assert_prompt_suffix_once_at_end", scoped=True)
    _sql(paths, "drop table marts.training_examples__untested")  # a table an older Beep built
    with pytest.raises(DbtFailed, match="Failure in test assert_prompt_suffix_once_at_end"):
        _test(paths, "assert_prompt_suffix_once_at_end", scoped=True)


def test_many_channels_are_joined_not_listed(fresh_paths: Paths) -> None:
    # past 50 channels in scope the predicate joins the cuts instead of listing them (an OR of
    # literals costs about 0.3 ms per channel on every row scanned)
    paths = fresh_paths
    channel, last_at, first_id, last_id = _busiest_channel(paths)
    _sql(paths, "insert into marts.training_examples__untested (whole, channel_id, from_at, at_column, recorded_at) "
                "select false, 'C' || i || '''s', timestamp '2020-01-01', 'target_at', current_timestamp from range(120) t(i)",
         f"insert into marts.training_examples__untested (whole, channel_id, from_at, at_column, recorded_at) "
         f"values (false, '{channel}', timestamp '{last_at}', 'target_at', current_timestamp)")
    # outside the scope a broken prompt is not read; inside it a null prompt is found
    _sql(paths, f"update marts.training_examples set prompt = 'no suffix' where example_id = '{first_id}'",
         f"update marts.training_examples set prompt = null where example_id = '{last_id}'")
    with pytest.raises(DbtFailed, match="Failure in test not_null_training_examples_prompt") as failed:
        _test(paths, "assert_prompt_suffix_once_at_end not_null_training_examples_prompt", scoped=True)
    assert "Completed with 1 error" in str(failed.value)
    assert "exists (select 1 from" in _compiled(paths, "assert_prompt_suffix_once_at_end")
    assert "exists (select 1 from" in _compiled(paths, "not_null_training_examples_prompt")


def test_a_conversation_whose_examples_are_gone_is_still_in_scope(fresh_paths: Paths) -> None:
    # training_examples recomputed a whole channel (its id maps to two folders, or it caught up after
    # a failed build) and wrote nothing back for one conversation, while int_conversations recomputed
    # from a later cut: the conversation is in scope through int_conversations' rows under
    # training_examples' scope, so "a reply with a window has no example" is still found
    paths = fresh_paths
    channel, conversation = _sql(paths, """
        select channel_id, arg_min(conversation_id, target_at) from marts.training_examples
        group by channel_id order by count(*) desc limit 1""")[0]
    _sql(paths, f"insert into marts.training_examples__untested (whole, channel_id, from_at, at_column, recorded_at) "
                f"values (false, '{channel}', null, 'target_at', current_timestamp)",
         "insert into intermediate.int_conversations__untested (whole, channel_folder, from_at, at_column, recorded_at) "
         "select false, channel_folder, max(message_at), 'message_at', current_timestamp from intermediate.int_conversations "
         f"where channel_id = '{channel}' group by channel_folder",
         f"delete from marts.training_examples where conversation_id = '{conversation}'")
    with pytest.raises(DbtFailed, match="Failure in test assert_prompts_are_their_windows"):
        _test(paths, "assert_prompts_are_their_windows", scoped=True)


def test_only_the_models_own_untested_tables_are_emptied(fresh_paths: Paths) -> None:
    paths = fresh_paths
    _sql(paths, "create table main.q3__untested as select 1 as x",
         "create table marts.my_notes__untested as select 1 as x",
         "insert into marts.training_examples__untested (whole, at_column, recorded_at) values (true, 'target_at', current_timestamp)")
    assert clear_untested_scopes(paths) == {model: (1 if model == "training_examples" else 0) for model in KEPT}
    assert _sql(paths, "select (select count(*) from main.q3__untested) + (select count(*) from marts.my_notes__untested)") == [(2,)]
