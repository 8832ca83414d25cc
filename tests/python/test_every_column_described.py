"""Every table, view and column an analyst can see is described, in DuckDB itself (COMMENT ON) and in
dbt's manifest; and every query of docs/analysts.md runs against the sample and returns rows.

One module fixture runs the sample's chain after the build (local refine, export, fine-tune,
evaluate: about 20 s on 2 cores) on a copy of the session's built DB; both tests read it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from beep.config import LAYER_SCHEMAS, PROJECT_DIR, Paths
from beep.db import open_duckdb
from beep.dbt_runner import dbt_env
from beep.table_docs import source_tables, write_comments, write_model_comments
from rich.console import Console

GUIDE = PROJECT_DIR / "docs" / "analysts.md"


@pytest.fixture(scope="module")
def chain_paths(built_paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The sample built, refined, exported, fine-tuned and evaluated (local provider), plus three
    alerts a dry-run `beep slack serve` would have recorded (the sample has no live Slack)."""
    from beep.db import connect
    from beep.evaluate.api import evaluate
    from beep.export.api import export
    from beep.finetune.api import finetune
    from beep.refine.api import refine

    root = tmp_path_factory.mktemp("chain")
    paths = Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")
    shutil.copy(built_paths.duckdb, paths.duckdb)
    quiet = Console(stderr=True, quiet=True)
    refine(paths, provider="local", console=quiet)
    exported = export(paths)
    job = finetune(paths, export_id=exported.export_id, provider="local", console=quiet)
    evaluate(paths, model=job.job_id, export_id=exported.export_id, console=quiet)
    with connect(paths.duckdb) as con:
        channel = con.execute("select channel_id from stg_slack__channels order by channel_id limit 1").fetchall()[0][0]
        people = [r[0] for r in con.execute("select user_id from stg_slack__users order by user_id limit 3").fetchall()]
        for i, person in enumerate(people):
            con.execute(
                """insert into alerts (alert_id, conversation_id, channel_id, message_ts, person_id, author_id,
                       probability, model, reason, status, decided_at)
                   values (?, ?, ?, '1700000000.000100', ?, ?, 0.6, ?, 'often answers here', 'dry_run',
                           timestamp '2024-03-04 10:00:00' + to_days(?))""",
                [f"a{i}", f"{channel}:run:1", channel, person, people[-1], job.fine_tuned_model, 7 * i],
            )
        # the first person answered within the hour; the last message seen is days later
        con.execute(
            """insert into slack_messages (channel_id, ts, user_id, conversation_id, clean_text, message_at)
               values (?, '1', ?, ?, 'on it', timestamp '2024-03-04 10:20:00'),
                      (?, '2', ?, ?, 'later', timestamp '2024-04-01 00:00:00')""",
            [channel, people[0], f"{channel}:run:1", channel, people[1], f"{channel}:run:1"],
        )
    return paths


def _undescribed_in_duckdb(db: Path) -> tuple[list[str], set[str]]:
    """The relations (schema.name) and columns (schema.name.column) of every schema of the file
    without a comment, and the schemas that hold a relation."""
    con = open_duckdb(str(db), read_only=True)
    try:
        relations = con.execute(
            """select schema_name, table_name, comment from duckdb_tables()
               where database_name = current_database() and not internal and not temporary
               union all
               select schema_name, view_name, comment from duckdb_views()
               where database_name = current_database() and not internal and not temporary"""
        ).fetchall()
        columns = con.execute(
            """select schema_name, table_name, column_name, comment from duckdb_columns()
               where database_name = current_database() and not internal"""
        ).fetchall()
    finally:
        con.close()
    missing = []
    for schema, name, comment in relations:
        # a rebuild fingerprint alone (macros/reusable_table.sql) is no description
        text = "\n".join(line for line in (comment or "").splitlines() if not line.startswith(("beep fingerprint ", "beep docs ")))
        if not text.strip():
            missing.append(f"{schema}.{name}")
    names = {(schema, name) for schema, name, _ in relations}
    missing += [f"{schema}.{table}.{column}" for schema, table, column, comment in columns
                if (schema, table) in names and not (comment or "").strip()]
    return sorted(missing), {schema for schema, _, _ in relations}


def test_every_table_view_and_column_is_described(chain_paths: Paths, built_paths: Paths) -> None:
    missing, schemas = _undescribed_in_duckdb(chain_paths.duckdb)
    # every schema Beep uses is read (not only main): the step tables' and the three layers'
    assert {"main", *LAYER_SCHEMAS} <= schemas, schemas
    assert not missing, f"no COMMENT in DuckDB (describe them in the model's YAML or models/staging/beep/_beep.yml): {missing}"

    manifest = json.loads((Path(dbt_env(built_paths)["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    undescribed = []
    nodes = [n for n in manifest["nodes"].values()
             if n["resource_type"] in ("model", "seed") and n["package_name"] == "beep"]
    for node in [*nodes, *(s for s in manifest["sources"].values() if s["package_name"] == "beep")]:
        if not node["description"].strip():
            undescribed.append(node["name"])
        undescribed += [f"{node['name']}.{name}" for name, col in node["columns"].items() if not col["description"].strip()]
    assert not undescribed, f"no description in dbt's manifest: {undescribed}"
    # the Python steps' tables are sources: the same text dbt docs show is what DuckDB holds
    con = open_duckdb(str(chain_paths.duckdb), read_only=True)
    try:
        stored = dict(con.execute("select table_name, comment from duckdb_tables() where table_name = 'predictions'").fetchall())
    finally:
        con.close()
    assert stored["predictions"] == source_tables()["predictions"].description


def test_comments_follow_the_yaml_and_are_written_once(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    yml = sources / "_t.yml"

    def describe(text: str) -> None:
        yml.write_text(
            "version: 2\nsources:\n  - name: s\n    tables:\n      - name: _beep_migrations\n"
            f"        description: {text}\n        columns:\n          - name: name\n            description: the name\n"
        )

    con = open_duckdb(str(tmp_path / "t.duckdb"))
    con.execute("create table _beep_migrations (name varchar, applied_at timestamp)")
    describe("first")
    assert write_comments(con, sources) == 2
    assert write_comments(con, sources) == 0  # unchanged YAML: nothing written
    describe("second")
    assert write_comments(con, sources) == 2
    comment = con.execute("select comment from duckdb_tables() where table_name = '_beep_migrations'").fetchall()[0][0]
    assert comment.startswith("second\nbeep docs ") and "the version of these descriptions" in comment  # readable
    assert con.execute("select comment from duckdb_columns() where table_name = '_beep_migrations' and column_name = 'name'").fetchall() == [("the name",)]
    con.close()


def test_views_over_a_spark_build_get_their_models_descriptions(tmp_path: Path) -> None:
    """dbt's persist_docs never sees the DuckDB views over a Spark build's Parquet: build.py comments them."""
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"nodes": {"model.beep.user_labels": {
        "resource_type": "model", "name": "user_labels", "description": "The label encoding.",
        "config": {"schema": "marts"},  # on Spark the node's own schema is the target's; the config's is the layer
        "columns": {"label": {"description": "The label."}, "gone": {"description": "Not in the view."}}}}}))
    con = open_duckdb(str(tmp_path / "t.duckdb"))
    con.execute("create schema marts")
    con.execute("create view marts.user_labels as select 1 as label, 'ada' as user_name")
    con.execute("create view main.user_labels as select 1 as label")  # not the layer's: left alone
    assert write_model_comments(con, manifest, ["user_labels", "not_built"]) == 2
    assert con.execute("select schema_name, comment from duckdb_views() where view_name = 'user_labels' order by 1").fetchall() == [
        ("main", None), ("marts", "The label encoding.")]
    assert dict(con.execute("select column_name, comment from duckdb_columns() where schema_name = 'marts' "
                            "and table_name = 'user_labels'").fetchall()) == {"label": "The label.", "user_name": None}
    con.close()


def test_what_moved_names_every_model_in_its_schema(built_paths: Paths) -> None:
    """docs/analysts.md's "What moved" table: each layer schema's row names exactly the models dbt
    builds there (old name main.<model>), so a saved query's old name can always be looked up."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("### What moved"):]
    section = section[: section.index("\n## ")]
    listed: dict[str, set[str]] = {}
    for row in re.findall(r"^\|(.+)\|\s*`(\w+)\.<same name>`\s*\|$", section, flags=re.MULTILINE):
        listed[row[1]] = set(re.findall(r"`main\.(\w+)`", row[0]))
    manifest = json.loads((Path(dbt_env(built_paths)["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    built: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["config"]["materialized"] != "ephemeral":
            built.setdefault(node["schema"], set()).add(node["alias"])
    assert set(built) == set(LAYER_SCHEMAS), f"models outside the layer schemas: {built}"
    assert listed == built


def _guide_queries() -> list[tuple[str, str]]:
    """(the question heading above it, SQL) for every ```sql block of docs/analysts.md."""
    text = GUIDE.read_text(encoding="utf-8")
    queries = []
    for match in re.finditer(r"```sql\n(.*?)```", text, flags=re.DOTALL):
        headings = re.findall(r"^#+ (.+)$", text[: match.start()], flags=re.MULTILINE)
        queries.append((headings[-1] if headings else "?", match.group(1)))
    return queries


def _guide_search_path() -> str:
    """The one line docs/analysts.md tells an analyst to run first (unqualified names in every schema)."""
    lines = re.findall(r"^SET search_path = '[a-z_,]+';?$", GUIDE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert lines, f"{GUIDE} gives no `SET search_path = '...'` line"
    return lines[0]


def test_analyst_guide_queries_run_and_return_rows(chain_paths: Paths) -> None:
    queries = _guide_queries()
    assert len(queries) >= 6
    # the qualified form works without the search path: at least one query names its schema
    assert any(re.search(r"\b(marts|intermediate|staging)\.\w", sql) for _, sql in queries)
    # as an analyst opens the file: a plain connection, then the guide's SET search_path line
    con = duckdb.connect(str(chain_paths.duckdb), read_only=True)
    try:
        con.execute(_guide_search_path())
        for question, sql in queries:
            assert "json" not in sql.lower(), f"{question}: the guide's queries need no JSON functions"
            rows = con.execute(sql).fetchall()
            assert rows, f"{question}: no rows on the sample\n{sql}"
    finally:
        con.close()
