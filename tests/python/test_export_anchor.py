"""The time split keeps its boundary from one export to the next (issue 25): a new day's examples land
in validation and the train split, its file and what was learnt from it stay the same, until
validation grows past SPLIT_ANCHOR_TOLERANCE of --valid-fraction (then, or with --resplit, the
boundary is computed anew)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict

import pytest
from beep.db import open_duckdb
from beep.export import source
from beep.export import api
from beep.export.api import TRAIN_STATE, export
from beep.export.split import SPLIT_ANCHOR_TOLERANCE, split_examples
from datetime import timedelta

from export_testdata import SUFFIX, USERS, make_paths, make_rows, write_tables


def _splits(paths, export_id: str) -> dict[str, str]:
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        return dict(con.execute("select example_id, split from export_examples where export_id = ?",
                                [export_id]).fetchall())


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_the_boundary_of_a_fresh_split_gives_that_split(tmp_path, fraction: float) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=23))
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        rows = list(source.kept_rows(con, refined=False))
        boundary = source.split_boundary(con, refined=False, valid_fraction=fraction)
        bounded = {str(r["example_id"]): r["split"] for r in source.rows_by_split(
            con, refined=False, method="time", valid_fraction=fraction, seed=0, valid_from=boundary)}
    assert boundary is not None
    assert bounded == split_examples(rows, method="time", valid_fraction=fraction)


def test_a_new_day_adds_to_validation_and_leaves_the_train_split_as_it_was(tmp_path) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=40))
    first = export(paths, refined=False)
    assert first.split_note and "computed now" in first.split_note
    assert first.settings["valid_from"] is not None

    write_tables(paths.duckdb, make_rows(n_conversations=42))  # two newer conversations, the rest unchanged
    second = export(paths, refined=False)
    assert second.export_id != first.export_id and not second.reused
    assert second.split_note and f"the boundary of export {first.export_id} kept" in second.split_note
    assert second.settings["valid_from"] == first.settings["valid_from"]
    before, after = _splits(paths, first.export_id), _splits(paths, second.export_id)
    assert {e for e, s in after.items() if s == "train"} == {e for e, s in before.items() if s == "train"}
    assert {e for e, s in after.items() if s == "valid"} > {e for e, s in before.items() if s == "valid"}
    assert second.train_path.read_bytes() == first.train_path.read_bytes()
    assert set(first.valid_path.read_text().splitlines()) < set(second.valid_path.read_text().splitlines())
    assert second.n_valid == first.n_valid + 6

    assert second.train_kept_from == first.export_id and first.train_kept_from is None

    # the same data again: the same export, returned as recorded
    again = export(paths, refined=False)
    assert again.reused and again.export_id == second.export_id


def test_a_kept_train_split_is_copied_and_the_export_equals_one_rendered_whole(tmp_path, monkeypatch) -> None:
    """Only validation is rendered when the train split is the earlier export's: the files, checks, counts
    and token lengths equal those of the same export rendered whole."""
    paths = make_paths(tmp_path / "a")
    rows = make_rows(n_conversations=40)
    rows[0]["prompt"] = rows[1]["prompt"]  # a duplicate in train: a flagged id the copied state must carry
    write_tables(paths.duckdb, rows)
    first = export(paths, refined=False)
    assert (first.train_path.parent / TRAIN_STATE / "counts.json").is_file()
    grown = make_rows(n_conversations=42)
    grown[0]["prompt"] = grown[1]["prompt"]
    grown[-1]["prompt"] = grown[1]["prompt"]  # and one in validation that duplicates a train prompt
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    write_tables(paths.duckdb, grown)
    kept = export(paths, refined=False)
    assert kept.train_kept_from == first.export_id

    whole_paths = make_paths(tmp_path / "b")
    write_tables(whole_paths.duckdb, grown)
    monkeypatch.setattr(api, "_train_part", lambda *args: None)
    whole = export(whole_paths, refined=False)
    assert whole.export_id == kept.export_id and whole.train_kept_from is None
    assert whole.train_path.read_bytes() == kept.train_path.read_bytes()
    assert whole.valid_path.read_bytes() == kept.valid_path.read_bytes()
    for field in ("n_train", "n_valid", "tokens_per_epoch", "label_counts", "summary", "token_lengths"):
        assert getattr(whole, field) == getattr(kept, field), field
    assert [asdict(c) for c in whole.checks] == [asdict(c) for c in kept.checks]
    flagged = {c.check: c.count for c in kept.checks}
    assert flagged["exact_duplicates"] == 2 and flagged["conflicting_duplicates"] == 3


def test_a_changed_train_example_or_file_renders_the_train_split_again(tmp_path) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=40))
    first = export(paths, refined=False)
    grown = make_rows(n_conversations=41)
    grown[0]["prompt"] = "message 0-0: edited\n\n###\n\n"  # an old train example changed
    write_tables(paths.duckdb, grown)
    edited = export(paths, refined=False)
    assert edited.split_note and "kept" in edited.split_note and edited.train_kept_from is None
    assert edited.train_path.read_bytes() != first.train_path.read_bytes()

    # the state is there, but the earlier train file was changed on disk: rendered again
    write_tables(paths.duckdb, make_rows(n_conversations=41))
    plain = export(paths, refined=False, resplit=True)
    with plain.train_path.open("a") as f:
        f.write("{}\n")
    write_tables(paths.duckdb, make_rows(n_conversations=42))
    again = export(paths, refined=False)
    assert again.train_kept_from is None and "kept" in (again.split_note or "")
    assert b"{}\n" not in again.train_path.read_bytes()

    # a state missing a file is not started from (and nothing fails): rendered again
    write_tables(paths.duckdb, make_rows(n_conversations=41))
    other = export(paths, refined=False, valid_fraction=0.3, resplit=True)
    write_tables(paths.duckdb, make_rows(n_conversations=42))
    (other.train_path.parent / TRAIN_STATE / "items.parquet").unlink()
    damaged = export(paths, refined=False, valid_fraction=0.3)
    assert damaged.status == "ok" and damaged.train_kept_from is None and "kept" in (damaged.split_note or "")
    assert damaged.train_path.read_bytes() == other.train_path.read_bytes()


def test_validation_past_the_tolerance_is_split_again(tmp_path) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=40))
    first = export(paths, refined=False)
    write_tables(paths.duckdb, make_rows(n_conversations=50))  # validation would hold 18 of 50 conversations
    grown = export(paths, refined=False)
    assert 18 / 50 > 0.2 * (1 + SPLIT_ANCHOR_TOLERANCE)
    assert grown.split_note and "computed now" in grown.split_note and "outside 15.0%–25.0%" in grown.split_note
    assert grown.settings["valid_from"] != first.settings["valid_from"]
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        rows = list(source.kept_rows(con, refined=False))
    assert _splits(paths, grown.export_id) == split_examples(rows, method="time", valid_fraction=0.2)


def test_resplit_and_other_settings_compute_the_boundary_anew(tmp_path) -> None:
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=40))
    first = export(paths, refined=False)
    write_tables(paths.duckdb, make_rows(n_conversations=42))
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        rows = list(source.kept_rows(con, refined=False))

    resplit = export(paths, refined=False, resplit=True)
    assert resplit.split_note and "computed now" in resplit.split_note and "--resplit" in resplit.split_note
    assert _splits(paths, resplit.export_id) == split_examples(rows, method="time", valid_fraction=0.2)
    assert resplit.settings["valid_from"] != first.settings["valid_from"]

    # another valid fraction never takes this one's boundary
    other = export(paths, refined=False, valid_fraction=0.3)
    assert other.split_note and "no earlier export with these split settings" in other.split_note
    assert _splits(paths, other.export_id) == split_examples(rows, method="time", valid_fraction=0.3)
    # the conversation split has no boundary
    drawn = export(paths, refined=False, split_method="conversation", seed=3)
    assert drawn.split_note is None and "valid_from" not in drawn.settings


def test_the_cli_says_how_the_split_was_chosen(tmp_path) -> None:
    from beep.cli import app
    from typer.testing import CliRunner

    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=40))
    runner = CliRunner()
    out = runner.invoke(app, ["export", "--db", str(paths.duckdb), "--unrefined", "--json"])
    assert out.exit_code == 0, out.output
    first = json.loads(out.stdout)
    write_tables(paths.duckdb, make_rows(n_conversations=41))
    out = runner.invoke(app, ["export", "--db", str(paths.duckdb), "--unrefined"])
    assert out.exit_code == 0, out.output
    said = " ".join(out.stdout.split())
    assert f"the boundary of export {first['export_id']} kept" in said
    assert f"train split: that of export {first['export_id']}: its file and checks copied" in said
    out = runner.invoke(app, ["export", "--db", str(paths.duckdb), "--unrefined", "--resplit", "--json"])
    assert out.exit_code == 0, out.output
    assert "--resplit" in json.loads(out.stdout)["split"]


def _moved(rows: list[dict], n_new: int) -> list[dict]:
    """``rows`` after a person ("al", U3) entered the labels between ana and bo: bo's and cy's labels move
    up by one (LabelEncoder order), and ``n_new`` newer conversations are al's."""
    moved = [{**row, "label": {0: 0, 1: 2, 2: 3}[row["label"]]} for row in rows]
    last = max(row["target_at"] for row in rows)
    for c in range(n_new):
        for k in range(3):
            moved.append({**rows[k], "example_id": f"al{c}-{k}", "conversation_id": f"al{c}", "channel_id": "C1",
                          "target_at": last + timedelta(hours=c + 1, minutes=k), "responder_user_id": "U3",
                          "label": 1, "prompt": f"al {c}-{k}: a question for al{SUFFIX}"})
    return moved


MOVED_USERS = {0: ("U0", "ana"), 1: ("U3", "al"), 2: ("U1", "bo"), 3: ("U2", "cy")}


def test_a_label_move_relabels_the_kept_train_split_and_equals_an_export_rendered_whole(tmp_path, monkeypatch) -> None:
    """A person entering the labels moves the labels after theirs, and a verdict turned weak makes one
    train example nil: the train file is copied with those lines' answers rewritten and the checks'
    state relabelled, and everything equals the same export rendered whole."""
    paths = make_paths(tmp_path / "a")
    rows = make_rows(n_conversations=50)
    rows[0]["prompt"] = rows[1]["prompt"]  # an exact duplicate in train (conversation 0: label 0 both)
    rows[3]["prompt"] = rows[6]["prompt"]  # a conflicting one (labels 1 and 2), labels that both move
    write_tables(paths.duckdb, rows)
    first = export(paths)
    assert first.train_kept_from is None and first.train_relabelled == 0

    grown = _moved(rows, n_new=2)
    weak = {rows[1]["example_id"]: "weak"}  # now nil: the exact duplicate becomes a conflicting one
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    write_tables(paths.duckdb, grown, refined_verdicts=weak, users=MOVED_USERS)
    kept = export(paths)
    assert kept.split_note and f"the boundary of export {first.export_id} kept" in kept.split_note
    assert kept.train_kept_from == first.export_id
    train_ids = {e for e, s in _splits(paths, first.export_id).items() if s == "train"}
    assert kept.train_relabelled == sum(1 for r in rows if r["example_id"] in train_ids and r["label"] != 0) + 1

    whole_paths = make_paths(tmp_path / "b")
    write_tables(whole_paths.duckdb, grown, refined_verdicts=weak, users=MOVED_USERS)
    monkeypatch.setattr(api, "_train_part", lambda *args: None)
    whole = export(whole_paths)
    assert whole.export_id == kept.export_id and whole.train_kept_from is None
    assert whole.train_path.read_bytes() == kept.train_path.read_bytes()
    assert whole.valid_path.read_bytes() == kept.valid_path.read_bytes()
    assert b'"content":"nil"' in kept.train_path.read_bytes()
    assert not [f.name for f in kept.train_path.parent.parent.iterdir() if f.name.startswith(".")]  # no file left behind
    for field in ("n_train", "n_valid", "tokens_per_epoch", "label_counts", "summary", "token_lengths"):
        assert getattr(whole, field) == getattr(kept, field), field
    assert [asdict(c) for c in whole.checks] == [asdict(c) for c in kept.checks]
    flagged = {c.check: c.count for c in kept.checks}
    assert flagged["exact_duplicates"] == 0 and flagged["conflicting_duplicates"] == 4
    # the state it saved is that of the relabelled split: a next day copies it as it is
    monkeypatch.undo()
    write_tables(paths.duckdb, _moved(rows, n_new=3), refined_verdicts=weak, users=MOVED_USERS)
    after = export(paths)
    assert after.train_kept_from == kept.export_id and after.train_relabelled == 0
    assert after.train_path.read_bytes() == kept.train_path.read_bytes()


def test_a_label_whose_answer_has_other_tokens_is_not_relabelled(tmp_path, monkeypatch) -> None:
    """Relabelling keeps the token counts, so it is done only when each new answer is as many tokens as
    the old one; otherwise the train split is rendered (and here the export fails its label check, as
    one rendered whole does)."""
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=40))
    export(paths)
    made: list = []
    relabel = api._relabel_train
    monkeypatch.setattr(api, "_relabel_train", lambda *args: made.append(relabel(*args)) or made[-1])
    grown = [{**row, "label": 100_000 + row["label"]} for row in make_rows(n_conversations=41)]  # not one token
    write_tables(paths.duckdb, grown, users={100_000 + k: v for k, v in USERS.items()})
    with pytest.raises(api.ExportFailed, match="label_single_token"):
        export(paths)
    assert made == [None]
