"""The portability rules that keep one dbt project building on DuckDB and on Spark (docs/spark.md).

Cheap checks of the SQL text: each rule is something that once broke (or silently changed) the
Spark build. Only what Spark builds is checked: the models outside the folders dbt_project.yml
disables on Spark (those read the Python steps' DuckDB tables), the singular tests, the macros
outside duckdb__ bodies. Each checker is also run on a bad snippet, so a rule that stopped
matching anything would fail here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from beep.config import PROJECT_DIR

MODELS = PROJECT_DIR / "models"
MACROS = PROJECT_DIR / "macros"

#: DuckDB spellings with no Spark equivalent (or another meaning there): only inside duckdb__ macros.
DUCKDB_ONLY = {
    r"\blist_(?:filter|transform|reduce|distinct|position|reverse|value|sort)\s*\(": "DuckDB list function",
    r"\bregexp_(?:full_match|matches)\s*\(": "DuckDB regex function (regex_matches() is dispatched)",
    r"\bjson_extract(?:_string)?\s*\(|->>": "DuckDB JSON access (json_string() is dispatched)",
    r"\bread_(?:json|blob|parquet|csv)\s*\(": "DuckDB file reader (macros/slack_export_files.sql dispatches them)",
    r"\bmake_timestamp\s*\(|\bto_timestamp\s*\(": "DuckDB timestamp constructor (slack_ts_to_timestamp / epoch_to_timestamp)",
    r"\bstring_agg\s*\(|\blist\s*\(": "DuckDB aggregate (dbt.listagg / list_agg_ordered)",
    r"\bunnest\s*\(": "DuckDB unnest (unnest_list() is dispatched)",
    r"\blen\s*\(": "DuckDB len (list_length() is dispatched)",
    r"\bgroup by all\b|\border by all\b": "DuckDB's GROUP BY ALL",
    r"\blambda\s+\w+\s*:": "DuckDB lambda syntax",
}
#: Spellings that are wrong on Spark wherever they occur (models, tests, fixtures, macros).
NOT_PORTABLE = {
    r'"user"\s+as\b': '"user" is a string literal on Spark (the text \'user\' in every row): use {{ adapter.quote(\'user\') }}',
    r"::\s*varchar\b": "::varchar does not parse on Spark: cast(x as {{ dbt.type_string() }}) (or `string` in YAML)",
    r"\bas\s+varchar\b": "Spark's varchar needs a length: cast(x as {{ dbt.type_string() }}) (or `string` in YAML)",
    r"\[\s*\]\s*::": "a DuckDB list literal: in a fixture write regexp_extract_all('', 'x', 0) (an empty list of strings)",
    r"dbt\.type_float\s*\(": "dbt.type_float() is 32-bit on Spark (and DuckDB): use beep_type_double()",
}

#: In models and singular tests: text literals built by hand are escaped DuckDB's way only.
HAND_BUILT_LITERALS = {
    r"""replace\(\s*"'"\s*,\s*"''"\s*\)""": "a literal quoted by doubling quotes: Spark reads 'it''s' as two literals (\"its\") "
                                        "and unescapes backslashes; use sql_string(), dispatched",
}


def _disabled_on_spark() -> list[Path]:
    """Model folders dbt_project.yml disables on Spark (`+enabled: ... target.type != 'spark'`)."""
    config = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["models"]["beep"]
    found: list[Path] = []

    def walk(node: dict[str, object], parts: list[str]) -> None:
        for key, value in node.items():
            if key == "+enabled" and "target.type != 'spark'" in str(value):
                found.append(MODELS.joinpath(*parts))
            elif isinstance(value, dict) and not key.startswith("+"):
                walk(value, [*parts, key])

    walk(config, [])
    return found


def _spark_model_files(suffixes: tuple[str, ...]) -> list[Path]:
    disabled = _disabled_on_spark()
    return sorted(p for p in MODELS.rglob("*") if p.suffix in suffixes and not any(d in p.parents for d in disabled))


def _macro_bodies(path: Path) -> list[tuple[str, str]]:
    """(name, body) of every macro of a file."""
    text = path.read_text()
    return re.findall(r"{%-?\s*macro\s+(\w+)\s*\(.*?%}(.*?){%-?\s*endmacro\s*-?%}", text, flags=re.S)


def _strip_comments(text: str) -> str:
    return re.sub(r"{#.*?#}", "", re.sub(r"--[^\n]*", "", text), flags=re.S)


def _violations(text: str, rules: dict[str, str]) -> list[str]:
    return [why for pattern, why in rules.items() if re.search(pattern, _strip_comments(text), flags=re.I)]


def _spark_sql_sources() -> dict[str, str]:
    """Every text Spark compiles: its models, singular tests and macro bodies other than duckdb__."""
    sources = {str(p.relative_to(PROJECT_DIR)): p.read_text() for p in _spark_model_files((".sql",))}
    sources.update({str(p.relative_to(PROJECT_DIR)): p.read_text() for p in (PROJECT_DIR / "tests").glob("*.sql")})
    for path in sorted(MACROS.rglob("*.sql")):
        for name, body in _macro_bodies(path):
            if not name.startswith("duckdb__"):
                sources[f"{path.relative_to(PROJECT_DIR)}:{name}"] = body
    return sources


def test_the_checkers_catch_what_they_are_for() -> None:
    assert _violations('select "user" as user_id from t', NOT_PORTABLE)
    assert _violations("select null::varchar as x", NOT_PORTABLE)
    assert _violations("select cast(label as varchar)", NOT_PORTABLE)
    assert _violations("select []::varchar[] as ids", NOT_PORTABLE)
    assert _violations("cast(null as {{ dbt.type_float() }})", NOT_PORTABLE)
    assert _violations("select list_filter(xs, lambda x: x > 1)", DUCKDB_ONLY)
    assert _violations("select regexp_matches(t, 'x') from m group by all", DUCKDB_ONLY)
    assert not _violations("select {{ adapter.quote('user') }} as user_id, cast(x as {{ dbt.type_string() }})", NOT_PORTABLE)
    assert not _violations("-- list(x) in a comment\nselect 1", DUCKDB_ONLY)
    assert _violations("""{%- set s = "'" ~ var('x') | replace("'", "''") ~ "'" %}""", HAND_BUILT_LITERALS)
    assert not _violations("{%- set s = sql_string(var('x')) %}", HAND_BUILT_LITERALS)
    assert _disabled_on_spark(), "dbt_project.yml no longer disables the DuckDB-side folders on Spark"


def test_what_spark_compiles_uses_no_duckdb_only_spelling() -> None:
    problems = [f"{name}: {why}" for name, text in _spark_sql_sources().items() for why in _violations(text, DUCKDB_ONLY)]
    assert not problems, f"DuckDB-only SQL outside a duckdb__ macro (dispatch it, macros/spark/ holds the spark__ side): {problems}"


def test_models_tests_and_fixtures_are_portable() -> None:
    texts = _spark_sql_sources()
    texts.update({str(p.relative_to(PROJECT_DIR)): p.read_text() for p in _spark_model_files((".yml",))})
    texts["seeds/_seeds.yml"] = (PROJECT_DIR / "seeds" / "_seeds.yml").read_text()
    problems = [f"{name}: {why}" for name, text in texts.items() for why in _violations(text, NOT_PORTABLE)]
    assert not problems, f"not portable to Spark: {problems}"


def test_models_build_text_literals_with_sql_string() -> None:
    files = [*_spark_model_files((".sql",)), *(PROJECT_DIR / "tests").glob("*.sql")]
    problems = [f"{p.relative_to(PROJECT_DIR)}: {why}" for p in files for why in _violations(p.read_text(), HAND_BUILT_LITERALS)]
    assert not problems, problems


def test_seed_column_types_are_portable() -> None:
    seeds = yaml.safe_load((PROJECT_DIR / "seeds" / "_seeds.yml").read_text())["seeds"]
    wrong = {(s["name"], col, t) for s in seeds for col, t in (s.get("config", {}).get("column_types") or {}).items()
             if str(t).lower().startswith("varchar")}
    assert not wrong, f"seed column_types say varchar, which Spark refuses without a length: use string ({wrong})"


@pytest.mark.parametrize("path", sorted(MACROS.rglob("*.sql")), ids=lambda p: str(p.relative_to(MACROS)))
def test_every_dispatched_macro_has_a_spark_implementation(path: Path) -> None:
    dispatched = re.findall(r"adapter\.dispatch\(\s*'(\w+)'\s*,\s*'beep'\s*\)", path.read_text())
    defined = {name for p in MACROS.rglob("*.sql") for name, _ in _macro_bodies(p)}
    missing = [name for name in dispatched if f"spark__{name}" not in defined and f"default__{name}" not in defined]
    assert not missing, f"{path.name}: dispatched without a spark__ (or default__) implementation: {missing} (add it under macros/spark/)"


def test_spark_macros_spell_regexes_for_spark() -> None:
    """Spark replaces every match (a 4th argument is a position, not DuckDB's 'g'), and a group is $1 (\\1 is a literal 1)."""
    for path in sorted((MACROS / "spark").glob("*.sql")):
        text = _strip_comments(path.read_text())
        assert not re.search(r",\s*'g'\s*\)", text), f"{path.name}: a DuckDB 'g' flag"
        assert not re.search(r"'[^']*\\\\[1-9][^']*'\s*\)", text), f"{path.name}: a \\1 back-reference (use $1)"
