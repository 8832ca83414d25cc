"""`beep export` end to end on small hand-made tables: split, files, records, reruns, failures."""

from __future__ import annotations

import json

import pytest
from export_testdata import make_paths, make_rows, write_tables

from beep.db import open_duckdb
from beep.export.api import ExportFailed, export, latest_export_id, load_export


@pytest.fixture
def paths(tmp_path):
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows())
    return paths


def _query(paths, sql, params=()):
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_time_split_sends_the_newest_conversations_to_validation(paths) -> None:
    result = export(paths)
    assert result.status == "ok" and result.n_train == 27 and result.n_valid == 9
    rows = _query(paths, "select conversation_id, split, min(target_at) from export_examples where export_id = ? group by all",
                  [result.export_id])
    splits_per_conv = {}
    for conv, split, _ in rows:
        splits_per_conv.setdefault(conv, set()).add(split)
    assert all(len(s) == 1 for s in splits_per_conv.values())
    newest_train = max(t for _, s, t in rows if s == "train")
    oldest_valid = min(t for _, s, t in rows if s == "valid")
    assert newest_train < oldest_valid
    assert {c for c, s, _ in rows if s == "valid"} == {"conv009", "conv010", "conv011"}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_conversation_split_never_puts_a_conversation_on_both_sides(tmp_path, seed: int) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=30, per_conversation=4, seed=seed))
    result = export(paths, split_method="conversation", seed=seed, valid_fraction=0.25)
    crossing = _query(paths, "select conversation_id from export_examples where export_id = ? group by 1 "
                             "having count(distinct split) > 1", [result.export_id])
    assert crossing == []
    assert result.n_valid >= 0.25 * 120 and result.n_train > 0
    # and the files agree with the table, line by line
    for split, path in (("train", result.train_path), ("valid", result.valid_path)):
        lines = path.read_text(encoding="utf-8").splitlines()
        ids = [r[0] for r in _query(paths, "select example_id from export_examples where export_id = ? and split = ? order by line",
                                     [result.export_id, split])]
        assert len(lines) == len(ids)


def test_the_seed_changes_the_conversation_split(tmp_path) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=30))
    a = export(paths, split_method="conversation", seed=1)
    b = export(paths, split_method="conversation", seed=2)
    assert a.export_id != b.export_id
    valid = lambda r: {x[0] for x in _query(paths, "select conversation_id from export_examples where export_id = ? and split = 'valid'", [r.export_id])}  # noqa: E731
    assert valid(a) != valid(b)


def test_a_rerun_is_byte_identical_and_rewrites_nothing(paths, tmp_path) -> None:
    first = export(paths)
    train_bytes, valid_bytes = first.train_path.read_bytes(), first.valid_path.read_bytes()
    mtime = first.train_path.stat().st_mtime_ns
    again = export(paths)
    assert again.reused and again.export_id == first.export_id
    assert again.train_path.stat().st_mtime_ns == mtime
    # deleting the files and exporting again gives the same bytes, in a fresh DuckDB file too
    first.train_path.unlink()
    rebuilt = export(paths)
    assert not rebuilt.reused and rebuilt.train_path.read_bytes() == train_bytes
    other = make_paths(tmp_path / "elsewhere")
    write_tables(other.duckdb, make_rows())
    elsewhere = export(other)
    assert elsewhere.export_id == first.export_id
    assert elsewhere.train_path.read_bytes() == train_bytes and elsewhere.valid_path.read_bytes() == valid_bytes
    assert elsewhere.train_sha256 == first.train_sha256
    assert _query(paths, "select count(*) from exports")[0][0] == 1


def test_other_settings_or_inputs_give_another_export(paths) -> None:
    base = export(paths)
    assert export(paths, valid_fraction=0.3).export_id != base.export_id
    assert export(paths, format="completion", base_model="babbage-002").export_id != base.export_id
    rows = make_rows()
    rows[0]["prompt"] = "changed" + rows[0]["prompt"]
    write_tables(paths.duckdb, rows)
    assert export(paths).export_id != base.export_id


@pytest.mark.parametrize(("column", "value"), [
    ("conversation_id", "conv999"), ("channel_id", "C9"), ("responder_user_id", "U_other"),
    ("prior_participant_ids", ["U9", "U_other"]), ("mentioned_user_ids", ["U_other"]),
])
def test_every_exported_column_is_in_the_export_id(paths, column: str, value: object) -> None:
    """The export id hashes each exported row inside DuckDB (beep.export.source.kept_digests): a change
    in any column the files or export_examples are made from gives another export."""
    base = export(paths)
    rows = make_rows()
    rows[-1][column] = value
    write_tables(paths.duckdb, rows)
    assert export(paths).export_id != base.export_id
    write_tables(paths.duckdb, make_rows())
    assert export(paths).export_id == base.export_id  # and back: the same id, the files kept


def test_records_checks_label_mapping_and_counts(paths) -> None:
    result = export(paths)
    row = load_export(paths, result.export_id)
    assert row["status"] == "ok" and row["format"] == "chat" and row["label_prefix"] == ""
    assert row["estimated_training_tokens"] == result.tokens_per_epoch > 0
    assert json.loads(row["label_counts"]) == {"0": {"train": 9, "valid": 3}, "1": {"train": 9, "valid": 3}, "2": {"train": 9, "valid": 3}}
    checks = _query(paths, 'select "check", passed from export_checks where export_id = ?', [result.export_id])
    assert len(checks) == 18 and all(passed for _, passed in checks)
    labels = _query(paths, "select label, user_id, user_name, n_train, n_valid from export_labels where export_id = ? order by label",
                    [result.export_id])
    assert labels == [("0", "U0", "ana", 9, 3), ("1", "U1", "bo", 9, 3), ("2", "U2", "cy", 9, 3)]
    assert latest_export_id(paths) == result.export_id
    first = json.loads(result.train_path.read_text(encoding="utf-8").splitlines()[0])
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["messages"][1]["content"].endswith("\n\n###\n\n")
    assert first["messages"][2]["content"] in {"0", "1", "2"}


def test_refined_weak_examples_become_nil_and_unrefined_ones_are_counted(tmp_path) -> None:
    paths = make_paths(tmp_path)
    rows = make_rows()
    verdicts = {r["example_id"]: "weak" for r in rows[::4]}
    verdicts[rows[1]["example_id"]] = "refused"  # the refiner would not judge it: left out, counted
    verdicts[rows[2]["example_id"]] = "undecided"  # no verdict yet: kept with its label, counted
    write_tables(paths.duckdb, rows, refined_verdicts=verdicts)
    result = export(paths)
    assert result.n_train + result.n_valid == len(rows) - 1
    assert result.excluded == {"verdict: refused": 1}
    checks = {c.check: c for c in result.checks}
    excluded, undecided = checks["excluded_examples"], checks["unrefined_examples"]
    assert not excluded.passed and excluded.severity == "warning" and excluded.count == 1
    assert not undecided.passed and undecided.count == 1 and "beep refine" in undecided.message
    nil = _query(paths, "select user_id, user_name, n_train + n_valid from export_labels where export_id = ? and label = 'nil'",
                 [result.export_id])
    assert nil == [(None, "nobody (no alert)", len(verdicts) - 2)]
    answers = {json.loads(line)["messages"][-1]["content"] for line in result.train_path.read_text().splitlines()}
    assert "nil" in answers
    unrefined = export(paths, refined=False)
    assert unrefined.n_train + unrefined.n_valid == len(rows) and unrefined.excluded == {}


def test_completion_format_uses_single_token_labels_for_the_tokenizer(paths) -> None:
    result = export(paths, format="completion", base_model="babbage-002")
    record = json.loads(result.train_path.read_text().splitlines()[0])
    assert set(record) == {"prompt", "completion"}
    # " 3" is two cl100k tokens, "3" is one: the export writes the form that is one token, and says so
    assert record["completion"] in {"0", "1", "2"} and result.label_prefix == ""
    assert {c.check: c for c in result.checks}["label_single_token"].passed


def test_an_error_stops_the_export_records_why_and_writes_nothing(tmp_path) -> None:
    paths = make_paths(tmp_path)
    rows = make_rows(n_conversations=3, per_conversation=2)  # 6 examples: too few to train
    rows[0]["prompt"] = "no separator"
    write_tables(paths.duckdb, rows)
    with pytest.raises(ExportFailed) as caught:
        export(paths)
    message = str(caught.value)
    assert "min_examples" in message and "prompt_suffix" in message and "no file was written" in message
    export_id = caught.value.export_id
    assert _query(paths, "select status, train_path from exports where export_id = ?", [export_id]) == [("failed", None)]
    failed = {r[0] for r in _query(paths, 'select "check" from export_checks where export_id = ? and not passed', [export_id])}
    assert {"min_examples", "prompt_suffix"} <= failed
    assert not (paths.exports_dir / "jsonl" / export_id).exists()
    with pytest.raises(LookupError, match="no successful export"):
        latest_export_id(paths)


def test_missing_tables_and_bad_options_are_explained(tmp_path) -> None:
    paths = make_paths(tmp_path)
    open_duckdb(str(paths.duckdb)).close()
    with pytest.raises(LookupError, match="beep refine"):
        export(paths)
    with pytest.raises(LookupError, match="beep build"):
        export(paths, refined=False)
    write_tables(paths.duckdb, make_rows())
    with pytest.raises(ValueError, match="--format"):
        export(paths, format="parquet")
    with pytest.raises(ValueError, match="--max-example-tokens"):
        export(paths, base_model="some-open-model")
    assert export(paths, base_model="some-open-model", max_example_tokens=4096).status == "ok"


def test_a_format_the_base_model_cannot_train_on_is_refused(tmp_path) -> None:
    import pytest

    from beep.export.models import check_format

    with pytest.raises(ValueError, match="cannot be fine-tuned on"):
        check_format("gpt-4.1-nano-2025-04-14", "completion")
    with pytest.raises(ValueError, match="use --format completion"):
        check_format("davinci-002", "chat")
    check_format("babbage-002", "completion")
    check_format("my-server-model", "completion")  # unknown models: the user knows


def test_the_latest_export_is_the_one_asked_for_last_even_when_reused(paths) -> None:
    chat = export(paths)
    completion = export(paths, format="completion", base_model="babbage-002")
    assert latest_export_id(paths) == completion.export_id
    again = export(paths)  # same inputs and settings: the chat export is reused, not recreated
    assert again.reused and again.export_id == chat.export_id
    assert latest_export_id(paths) == chat.export_id  # what `beep finetune` / `beep evaluate` pick
