"""The local provider, the few-shot set, and the refined dbt models (choosing a set and `beep fewshot suggest`: test_refine_fewshot_choice.py)."""

from __future__ import annotations

import csv
import shutil

import pytest
import typer
from refine_testkit import make_examples_db, verdicts
from typer.testing import CliRunner

from beep.commands import refine_cmd
from beep.db import DatabaseUnreadable, open_duckdb
from beep.dbt_runner import run_dbt
from beep.refine.api import refine
from beep.refine.fewshot import FewShotError, default_fewshot_path, load_fewshot
from beep.refine.local import LocalClassifier
from beep.refine.providers import LOCAL_MODEL_NAME


def rows(db, sql, params=()):
    con = open_duckdb(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_local_is_deterministic_and_decides_nothing_twice(tmp_path):
    a = make_examples_db(tmp_path / "a.duckdb", 300)
    (tmp_path / "b").mkdir()
    b = make_examples_db(tmp_path / "b" / "b.duckdb", 300)
    first = refine(a, progress=False, refresh_dbt=False)
    refine(b, progress=False, refresh_dbt=False)
    sql = "select example_id, verdict, confidence from refine_verdicts order by example_id"
    assert rows(a.duckdb, sql) == rows(b.duckdb, sql)
    assert first.n_strong + first.n_weak == 300 and first.n_decided_now == 300 and first.model == LOCAL_MODEL_NAME
    assert first.n_strong == 200 and first.n_weak == 100  # the testkit's small talk is every third example
    again = refine(a, progress=False, refresh_dbt=False)
    assert again.n_decided_now == 0 and again.n_already_decided == 300
    assert len(verdicts(a.duckdb)) == 300


def test_editing_the_fewshot_set_refines_under_a_new_hash_only(tmp_path):
    paths = make_examples_db(tmp_path / "beep.duckdb", 30)
    seed = default_fewshot_path(paths.project_dir)
    first = refine(paths, progress=False, refresh_dbt=False)
    edited = tmp_path / "fewshot.csv"
    shutil.copy(seed, edited)
    with edited.open("a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(["standup in 5", "weak", "added", ""])
    second = refine(paths, fewshot_path=edited, progress=False, refresh_dbt=False)
    assert second.fewshot_hash != first.fewshot_hash and second.n_decided_now == 30
    by_hash = dict(rows(paths.duckdb, "select fewshot_hash, count(*) from refine_verdicts group by 1"))
    assert by_hash == {first.fewshot_hash: 30, second.fewshot_hash: 30}


def test_fewshot_errors_name_the_line(tmp_path):
    bad = tmp_path / "fs.csv"
    bad.write_text("text,verdict,note,example_id\nhello,strong,,\nbye,meh,,\n", encoding="utf-8")
    with pytest.raises(FewShotError, match=r"fs.csv:3: verdict must be strong or weak"):
        load_fewshot(bad)
    few = tmp_path / "few.csv"
    few.write_text("text,verdict\nhello,strong\nbye,weak\n", encoding="utf-8")
    with pytest.raises(FewShotError, match="needs at least 2"):
        load_fewshot(few)
    with pytest.raises(FewShotError, match="not found"):
        load_fewshot(tmp_path / "missing.csv")


def test_shipped_fewshot_set_is_balanced_and_fits_itself():
    from beep.config import PROJECT_DIR

    fewshot = load_fewshot(default_fewshot_path(PROJECT_DIR))
    assert 10 <= fewshot.count("strong") <= 30 and 10 <= fewshot.count("weak") <= 30
    verdicts_, _ = LocalClassifier.fit(fewshot).predict([e.text for e in fewshot.examples])
    assert verdicts_ == [e.verdict for e in fewshot.examples]


def test_refine_cli_dry_run_and_local(tmp_path):
    paths = make_examples_db(tmp_path / "beep.duckdb", 20)
    app = typer.Typer()
    refine_cmd.register(app)
    dry = CliRunner().invoke(app, ["refine", "--db", str(paths.duckdb), "--dry-run"])
    assert dry.exit_code == 0 and "20 examples to decide" in " ".join(dry.output.split())
    ran = CliRunner().invoke(app, ["refine", "--db", str(paths.duckdb), "--no-progress", "--no-refresh-models"])
    assert ran.exit_code == 0, ran.output
    assert "20 examples" in " ".join(ran.output.split()) and len(verdicts(paths.duckdb)) == 20
    missing = CliRunner().invoke(app, ["refine", "--db", str(tmp_path / "nothing.duckdb")])
    assert missing.exit_code == 1 and "beep build" in " ".join(missing.output.split())


def test_refined_models_fresh_db_then_balanced_after_refine(tmp_path):
    from beep.refine.refined_model import view_reads_verdicts

    paths = make_examples_db(tmp_path / "beep.duckdb", 30)
    models = ["refined_training_examples", "refine_verdict_counts", "assert_refine_counts_reconcile"]
    # a plain dbt build before any refine: refine_verdicts does not exist, the views read typed empty inputs
    run_dbt(paths, ["build", "--select", *models], vars={"refine_balance": True}, quiet=True)
    assert rows(paths.duckdb, "select verdict, n_examples from refine_verdict_counts") == [
        ("strong", 0), ("weak", 0), ("refused", 0), ("undecided", 30)
    ]
    summary = refine(paths, progress=False, refresh_dbt=False)
    assert summary.n_strong == 20 and summary.n_weak == 10
    assert not view_reads_verdicts(paths)  # built on the empty fallback: refine would re-run the models
    run_dbt(paths, ["build", "--select", *models], vars={"refine_balance": True, "refine_balance_seed": 3}, quiet=True)
    assert view_reads_verdicts(paths)
    assert rows(paths.duckdb, "select verdict, n_examples from refine_verdict_counts") == [
        ("strong", 10), ("weak", 10), ("refused", 0), ("undecided", 0)
    ]
    assert rows(paths.duckdb, "select distinct completion, target_label from refined_training_examples where verdict = 'weak'") == [
        (" nil", "nil")
    ]
    strong = rows(paths.duckdb, "select count(*) from refined_training_examples where verdict = 'strong' and completion <> original_completion")
    assert strong == [(0,)]


def test_fast_word_features_equal_sklearns_transform():
    from beep.config import PROJECT_DIR
    from refine_testkit import example_text

    clf = LocalClassifier.fit(load_fewshot(default_fewshot_path(PROJECT_DIR)))
    texts = [example_text(i) for i in range(50)] + [e.text for e in load_fewshot(default_fewshot_path(PROJECT_DIR)).examples]
    texts += ["", "Staging STAGING cluster cluster is timing out, the the ÉCOLE 数据", "who owns the sql join? it keeps"]
    expected = clf.vectorizer.transform(texts)
    got = clf.word_features(texts)
    assert abs(expected - got).max() < 1e-12 and expected.nnz == got.nnz


def test_refine_reruns_the_models_only_when_the_view_is_stale(tmp_path, monkeypatch):
    from beep.refine import refined_model

    paths = make_examples_db(tmp_path / "beep.duckdb", 6)
    calls = []
    monkeypatch.setattr(refined_model, "run_dbt", lambda p, args, **kw: calls.append(list(args)))
    refine(paths, progress=False)  # no view yet: the models are (re)built
    assert calls == [["run", "--select", "refined_training_examples", "refine_verdict_counts"]]
    con = open_duckdb(str(paths.duckdb))
    con.execute("create view refined_training_examples as select * from refine_verdicts")
    con.execute("create view refine_verdict_counts as select 1 as x")
    con.close()
    refine(paths, progress=False)  # the views read refine_verdicts: nothing to do
    assert len(calls) == 1


def test_background_writer_stores_as_it_goes_and_surfaces_errors(tmp_path):
    from beep.refine.store import Verdict, VerdictKey, VerdictWriter

    paths = make_examples_db(tmp_path / "beep.duckdb", 3)
    key = VerdictKey("h", "openai", "m")
    with VerdictWriter(paths.duckdb, key, "run", background=True) as writer:
        writer.add([Verdict("ex00000", "strong"), Verdict("ex00001", "weak")])
        writer.add([Verdict("ex00000", "weak")])  # already decided: never overwritten
        assert writer.flush() == 2
    assert sorted(rows(paths.duckdb, "select example_id, verdict from refine_verdicts")) == [("ex00000", "strong"), ("ex00001", "weak")]
    (tmp_path / "not-a-db").mkdir()
    broken = VerdictWriter(tmp_path / "not-a-db", key, "run", background=True)
    broken.add([Verdict("ex00002", "weak")])
    with pytest.raises(DatabaseUnreadable):
        broken.close()
