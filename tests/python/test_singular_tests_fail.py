"""Every singular data test in tests/*.sql fails, by name, on a deliberately broken dataset.

The dataset of a small hand-written export is built once (dbt run). The unbroken copy passes every
singular test. A second copy gets one broken row per test, each in the model that test guards and
each the kind of row a bug would produce (later text leaked into a prompt, an e-mail address and a
phone number in prompts, the suffix twice, a gap in the labels, a message lost from the fate
counts, a prompt that lost its oldest context message, verdict counts that lose the undecided, a
message linked to a later one, a stored prediction ranking a person without an id). One `dbt test --store-failures` over that copy must report each test
as failing, and each test's failing rows must be exactly its own broken row, so no test passes or
fails because of another's. The tests in SEPARATE see every prompt (a changed prompt is a prompt
that is not its window), so their corruption gets a copy of its own and a second `dbt test`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from beep.build import build
from beep.config import PROJECT_DIR, Paths
from beep.db import open_duckdb
from beep.dbt_runner import DbtFailed, run_dbt, run_results
from slack_fixtures import small_team, ts

SINGULAR = sorted(p.stem for p in (PROJECT_DIR / "tests").glob("*.sql"))
AUDIT = "dbt_test__audit"  # where --store-failures writes each test's failing rows (macros/layer_schemas.sql: the name as it is)


def _statuses(paths: Paths) -> dict[str, str]:
    return {r["unique_id"].split(".")[2]: r["status"] for r in run_results(paths) if r["unique_id"].startswith("test.")}


def _dbt_test(paths: Paths, export: Path, *extra: str) -> dict[str, str]:
    try:
        run_dbt(paths, ["test", "--select", *SINGULAR, *extra], vars={"slack_export": str(export)}, quiet=True)
    except DbtFailed:
        pass
    return _statuses(paths)


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None, sql
    return row


def _example(con: duckdb.DuckDBPyConnection, n: int) -> str:
    return _one(con, "select example_id from training_examples order by example_id limit 1 offset ?", [n])[0]


# Each corruption breaks one row and returns what that test's failing rows must then be.

def _leak_later_text(con: duckdb.DuckDBPyConnection) -> object:
    example_id, target_ts, text = _one(con, """
        select e.example_id, e.target_ts, c.clean_text from training_examples as e
        inner join int_conversations as c on c.conversation_id = e.conversation_id and c.ts = e.target_ts
        where length(c.clean_text) >= 30 order by e.example_id desc limit 1""")
    con.execute("update training_examples set prompt = ? || '\n\n' || prompt where example_id = ?", [text, example_id])
    return [(target_ts, "later text in prompt")]


def _pii(con: duckdb.DuckDBPyConnection) -> object:
    email, phone = _example(con, 0), _example(con, 1)
    con.execute("update training_examples set prompt = 'write to bob.smith@example.com ' || prompt where example_id = ?", [email])
    con.execute("update training_examples set prompt = 'call +49 30 901820 today ' || prompt where example_id = ?", [phone])
    return sorted([email, phone])


def _suffix_twice(con: duckdb.DuckDBPyConnection) -> object:
    example_id = _example(con, 2)
    con.execute("update training_examples set prompt = prompt || '\n\n###\n\n' where example_id = ?", [example_id])
    return [example_id]


def _label_gap(con: duckdb.DuckDBPyConnection) -> object:
    con.execute("update user_labels set label = label + 10 where label = (select max(label) from user_labels)")
    return ["labels not dense"]


def _fate_lost(con: duckdb.DuckDBPyConnection) -> object:
    con.execute("""update message_fate_counts set n_messages = n_messages - 1
                   where rowid = (select min(rowid) from message_fate_counts where n_messages > 0)""")
    return [1]  # raw - counted


def _prompt_loses_a_context_message(con: duckdb.DuckDBPyConnection) -> object:
    example_id, conversation_id, target_ts = _one(con, """
        select example_id, conversation_id, target_ts from training_examples
        where n_context_messages >= 2 order by example_id limit 1""")
    con.execute("update training_examples set prompt = substr(prompt, strpos(prompt, chr(10) || chr(10)) + 2) "
                "where example_id = ?", [example_id])
    return [(conversation_id, target_ts, "prompt differs from the window")]


def _counts_lose_undecided(con: duckdb.DuckDBPyConnection) -> object:
    n = _one(con, "select count(*) from training_examples")[0]
    con.execute("create table counts_copy as select * from refine_verdict_counts")
    con.execute("drop view refine_verdict_counts")
    con.execute("create table marts.refine_verdict_counts as select * from counts_copy where verdict <> 'undecided'")
    return [(0, n, n)]  # counted, refined, examples


def _link_to_a_later_message(con: duckdb.DuckDBPyConnection) -> object:
    folder, ts_, later = _one(con, """
        select c.channel_folder, c.ts, later.ts from int_conversations as c
        inner join int_conversations as later on later.conversation_id = c.conversation_id and later.position = c.position + 1
        where c.position = 2 order by c.ts limit 1""")
    con.execute("update int_conversations set reply_to_ts = ? where channel_folder = ? and ts = ?", [later, folder, ts_])
    return [(ts_, "answers a later message")]


def _person_without_id(con: duckdb.DuckDBPyConnection) -> object:
    """A finished evaluation run whose one stored prediction lists a person without an id (as a
    provider answer parsed wrong would store it)."""
    example_id = _example(con, 0)
    con.execute("""insert into eval_runs (eval_run_id, model, export_id, split, n, provider, status, finished_at)
                   values ('ev-broken', 'local:broken', 'exp_broken', 'valid', 1, 'local', 'finished', current_timestamp)""")
    con.execute("""insert into predictions (eval_run_id, model, example_id, true_label, predicted_label, top_k, top_people)
                   values ('ev-broken', 'local:broken', ?, '1', '1', '[]',
                           '[{"user_id": "U001", "probability": 0.6, "reason": null},
                             {"user_id": null, "probability": 0.3, "reason": null}]')""", [example_id])
    return [("ev-broken", "local:broken", example_id, 1, 0, 1)]  # one rank 1, no rank missing, one person without id


CORRUPTIONS: dict[str, Callable[[duckdb.DuckDBPyConnection], object]] = {
    "assert_prompts_point_in_time": _leak_later_text,
    "assert_no_pii_in_prompts": _pii,
    "assert_prompt_suffix_once_at_end": _suffix_twice,
    "assert_labels_dense": _label_gap,
    "assert_fate_counts_reconcile": _fate_lost,
    "assert_prompts_are_their_windows": _prompt_loses_a_context_message,
    "assert_refine_counts_reconcile": _counts_lose_undecided,
    "assert_reply_links_point_backwards": _link_to_a_later_message,
    "assert_prediction_people_complete": _person_without_id,
}

#: What each test's stored failing rows are reduced to before comparing with the corruption's answer.
FAILING_ROWS = {
    "assert_prompts_point_in_time": "select target_ts, problem from {t} order by all",
    "assert_no_pii_in_prompts": "select example_id from {t} order by all",
    "assert_prompt_suffix_once_at_end": "select example_id from {t} order by all",
    "assert_labels_dense": "select problem from {t} order by all",
    "assert_fate_counts_reconcile": "select raw_messages - counted_messages from {t}",
    "assert_prompts_are_their_windows": "select conversation_id, target_ts, problem from {t} order by all",
    "assert_refine_counts_reconcile": "select counted, refined, examples from {t}",
    "assert_reply_links_point_backwards": "select ts, problem from {t} order by all",
    "assert_prediction_people_complete": ("select eval_run_id, model, example_id, n_rank_1, n_without_rank, n_without_person "
                                          "from {t} order by all"),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Paths, Path]:
    root = tmp_path_factory.mktemp("singular")
    team = small_team()
    for i, (user, text) in enumerate([  # a longer conversation: several context messages, long texts
        ("U001", "The nightly billing export failed again on the staging cluster"),
        ("U002", "I saw that too, the disk on the worker node was full this morning"),
        ("U003", "I cleaned the disk and restarted the worker, can you retry the export"),
        ("U001", "Retried it just now and the export finished without any errors at all"),
    ]):
        team.msg("general", user, text, ts(90 + i))
    export = team.write(root / "export")
    paths = Paths(duckdb=root / "built.duckdb", workdir=root / ".beep")
    build(paths, export, run_tests=False, quiet=True)
    return paths, export


#: Tests that compare every prompt with its window: corrupted on a copy of their own.
SEPARATE = {"assert_prompts_are_their_windows"}


def _broken_copy(paths: Paths, export: Path, name: str, tests: list[str]) -> tuple[dict, dict, dict]:
    copy = Paths(duckdb=paths.duckdb.with_name(f"{name}.duckdb"), workdir=paths.workdir)
    shutil.copy(paths.duckdb, copy.duckdb)
    with open_duckdb(str(copy.duckdb)) as con:
        expected = {test: CORRUPTIONS[test](con) for test in tests}
    statuses = _dbt_test(copy, export, "--store-failures")
    with open_duckdb(str(copy.duckdb), read_only=True) as con:
        stored = {}
        for test in tests:
            rows = con.execute(FAILING_ROWS[test].format(t=f'"{AUDIT}"."{test}"')).fetchall()
            stored[test] = [r[0] if len(r) == 1 else r for r in rows]
    return {test: statuses[test] for test in tests}, expected, stored


@pytest.fixture(scope="module")
def broken(built: tuple[Paths, Path]) -> tuple[dict[str, str], dict[str, object], dict[str, object]]:
    """(status per test, expected failing rows per test, stored failing rows per test) of the broken copies."""
    paths, export = built
    statuses, expected, stored = _broken_copy(paths, export, "broken", sorted(set(CORRUPTIONS) - SEPARATE))
    for test in sorted(SEPARATE):
        for got, part in zip((statuses, expected, stored), _broken_copy(paths, export, f"broken-{test}", [test])):
            got.update(part)
    return statuses, expected, stored


def test_every_singular_test_has_a_corruption() -> None:
    assert set(SINGULAR) == set(CORRUPTIONS) == set(FAILING_ROWS), "add a corruption for each new singular test"


def test_the_unbroken_dataset_passes_every_singular_test(built: tuple[Paths, Path]) -> None:
    paths, export = built
    assert _dbt_test(paths, export) == {name: "pass" for name in SINGULAR}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_singular_test_fails_by_name_on_its_broken_row(broken: tuple[dict, dict, dict], name: str) -> None:
    statuses, expected, stored = broken
    assert statuses[name] == "fail"
    assert stored[name] == expected[name]
