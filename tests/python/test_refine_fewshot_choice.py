"""Which few-shot set a dataset gets, the generic set's behaviour, and `beep fewshot suggest`."""

from __future__ import annotations

import csv
import json

import numpy as np
import typer
from fake_openai.fixtures import fake_openai  # noqa: F401  (fixture)
from refine_testkit import blocks, make_examples_db, verdicts
from typer.testing import CliRunner

from beep.commands import refine_cmd
from beep.config import PROJECT_DIR
from beep.db import open_duckdb
from beep.refine.api import refine
from beep.refine.fewshot import (
    FEWSHOT_COLUMNS,
    choose_fewshot,
    default_fewshot_path,
    generic_fewshot_path,
    load_fewshot,
)
from beep.refine.local import SHAPE_FEATURES, SHAPE_SIGNS, LocalClassifier, is_chatter

SAMPLE = load_fewshot(default_fewshot_path(PROJECT_DIR))
GENERIC = load_fewshot(generic_fewshot_path(PROJECT_DIR))

# Hand-written, in words of no shipped set: what any workspace's chat looks like.
CHATTER = [
    "thank you!!",
    "hahaha",
    "good night folks",
    "cool cool",
    "yes please",
    "see ya",
    "morning all :)",
    "nice, thanks a lot\n\nno worries",
    "lunch at noon?\n\nsure!",
    "ok, got it, thanks\n\n:)",
]
QUESTIONS = [
    "does anyone know why my calendar invites go out with the wrong time zone?",
    "the payroll file for this month is missing two employees, can HR check before it's sent?",
    "who is on call this weekend? the alerts channel is full of disk warnings",
    "I get 'file not found' when I open the shared template from the intranet, is it moved?",
    "what's the difference between the basic and the pro license? a customer wants to upgrade 20 seats",
    "the meeting room screen doesn't detect my laptop over HDMI. any trick?",
    "we should move the release to Thursday, QA found two blockers in the payment flow. agreed?",
    "the sync job stopped at 60% with 'quota exceeded'\n\nwhich account is it running as?\n\nthe default service account, I think",
    "hi all\n\nour checkout page throws 'card declined' for every Visa card since noon",
]


def app() -> typer.Typer:
    cli = typer.Typer()
    refine_cmd.register(cli)
    return cli


def text_of(result) -> str:
    return " ".join(result.output.split())


def test_a_dataset_other_than_the_sample_gets_the_generic_set_and_is_told(tmp_path, monkeypatch):
    monkeypatch.delenv("BEEP_FEWSHOT", raising=False)
    paths = make_examples_db(tmp_path / "beep.duckdb", 30)
    choice = choose_fewshot(paths.duckdb, PROJECT_DIR)
    assert choice.source == "generic" and choice.fewshot.hash == GENERIC.hash != SAMPLE.hash
    assert "generic default" in choice.message and "not curated for this workspace" in choice.message
    assert "beep fewshot suggest" in choice.message and "--fewshot" in choice.message
    ran = CliRunner().invoke(app(), ["refine", "--db", str(paths.duckdb), "--no-progress", "--no-refresh-models"])
    assert ran.exit_code == 0, ran.output
    out = text_of(ran)
    assert "few-shot set: the generic default" in out and "beep fewshot suggest" in out and GENERIC.hash in out
    given = choose_fewshot(paths.duckdb, PROJECT_DIR, default_fewshot_path(PROJECT_DIR))
    assert given.source == "given" and given.fewshot.hash == SAMPLE.hash
    monkeypatch.setenv("BEEP_FEWSHOT", str(default_fewshot_path(PROJECT_DIR)))  # what `beep run` reads too
    from_env = choose_fewshot(paths.duckdb, PROJECT_DIR)
    assert from_env.source == "given" and from_env.fewshot.hash == SAMPLE.hash and "BEEP_FEWSHOT" in from_env.message


def test_the_sample_is_recognised_by_the_examples_its_set_came_from(tmp_path, monkeypatch):
    monkeypatch.delenv("BEEP_FEWSHOT", raising=False)
    paths = make_examples_db(tmp_path / "beep.duckdb", 30)
    ids = [e.example_id for e in SAMPLE.examples if e.example_id]
    con = open_duckdb(str(paths.duckdb))
    for k, example_id in enumerate(ids):  # a dataset holding the examples the sample's set was curated from
        con.execute("update training_examples set example_id = ? where example_id = ?", [example_id, f"ex{k:05d}"])
    con.close()
    choice = choose_fewshot(paths.duckdb, PROJECT_DIR)
    assert choice.source == "sample" and choice.fewshot.hash == SAMPLE.hash and "bundled sample" in choice.message
    assert choose_fewshot(tmp_path / "missing.duckdb", PROJECT_DIR).source == "generic"


def test_generic_set_marks_obvious_chatter_weak_and_questions_strong():
    assert 20 <= GENERIC.count("strong") <= 50 and 20 <= GENERIC.count("weak") <= 50
    shared = {e.text for e in GENERIC.examples} & {e.text for e in SAMPLE.examples}
    assert all(len(t.split()) <= 2 for t in shared), shared  # only universal acks ("ok") in common
    clf = LocalClassifier.fit(GENERIC)
    assert clf.predict([e.text for e in GENERIC.examples])[0] == [e.verdict for e in GENERIC.examples]
    chatter, _ = clf.predict(CHATTER)
    questions, _ = clf.predict(QUESTIONS)
    assert chatter == ["weak"] * len(CHATTER), [t for t, v in zip(CHATTER, chatter) if v != "weak"]
    assert questions == ["strong"] * len(QUESTIONS), [t for t, v in zip(QUESTIONS, questions) if v != "strong"]


def test_shape_coefficients_keep_their_sign_whatever_the_set():
    assert len(SHAPE_SIGNS) == len(SHAPE_FEATURES)
    for fewshot in (GENERIC, SAMPLE):
        clf = LocalClassifier.fit(fewshot)
        shape = clf.coef[-len(SHAPE_FEATURES):]
        assert np.all(shape * SHAPE_SIGNS >= 0), dict(zip(SHAPE_FEATURES, shape.round(3)))
    assert is_chatter("@anna thanks!") and is_chatter("ok") and not is_chatter("is the wiki down for you?")
    assert not is_chatter("login broken")


def test_openai_provider_gets_the_chosen_set_in_its_prompt(fake_openai, tmp_path):  # noqa: F811
    paths = make_examples_db(tmp_path / "beep.duckdb", 6)
    fake_openai.state.chat_responder = lambda body: json.dumps({num: "strong" for num, _ in blocks(body)})
    summary = refine(paths, provider="openai", model="gpt-4o-mini", progress=False, refresh_dbt=False,
                     timeout_seconds=2.0, retry_base_seconds=0.01, retry_cap_seconds=0.05)
    assert summary.fewshot_hash == GENERIC.hash and summary.n_strong == 6
    system = fake_openai.state.requests_to("/v1/chat/completions")[0].body["messages"][0]["content"]
    assert GENERIC.examples[0].text in system and SAMPLE.examples[0].text not in system


def test_fewshot_suggest_writes_a_set_that_refine_accepts(tmp_path):
    paths = make_examples_db(tmp_path / "beep.duckdb", 90)
    out = tmp_path / "cands.csv"
    result = CliRunner().invoke(app(), ["fewshot", "suggest", "--db", str(paths.duckdb), "--out", str(out), "-n", "12"])
    assert result.exit_code == 0, result.output
    assert "12 candidates" in text_of(result) and "beep refine --fewshot" in text_of(result)
    with out.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames[:4]) == FEWSHOT_COLUMNS
        cands = list(reader)
    assert len(cands) == 12 and len({c["example_id"] for c in cands}) == 12
    assert len({c["channel_name"] for c in cands}) == 4 and len({c["kind"] for c in cands}) >= 2
    assert {c["verdict"] for c in cands} == {"strong", "weak"}  # the current verdicts, to correct
    assert all(not c["text"].endswith("###\n\n") for c in cands)
    # as written, the file is a valid few-shot set
    assert load_fewshot(out).count("weak") >= 2
    ran = CliRunner().invoke(app(), ["refine", "--db", str(paths.duckdb), "--fewshot", str(out), "--no-progress",
                                     "--no-refresh-models"])
    assert ran.exit_code == 0, ran.output
    assert "given with --fewshot" in text_of(ran) and load_fewshot(out).hash in text_of(ran)
    assert len(verdicts(paths.duckdb)) == 90
    # deterministic; refuses to overwrite; a given set's examples are not suggested again
    again = CliRunner().invoke(app(), ["fewshot", "suggest", "--db", str(paths.duckdb), "--out", str(out)])
    assert again.exit_code == 1 and "--force" in again.output
    same = tmp_path / "same.csv"
    CliRunner().invoke(app(), ["fewshot", "suggest", "--db", str(paths.duckdb), "--out", str(same), "-n", "12"])
    assert same.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    forced = CliRunner().invoke(app(), ["fewshot", "suggest", "--db", str(paths.duckdb), "--out", str(out), "-n", "12",
                                        "--force", "--fewshot", str(same)])
    assert forced.exit_code == 0, forced.output
    with out.open(newline="", encoding="utf-8") as fh:
        ids = {c["example_id"] for c in csv.DictReader(fh)}
    assert len(ids) == 12 and not ids & {c["example_id"] for c in cands}


def test_fewshot_suggest_help_explains_every_option():
    result = CliRunner().invoke(app(), ["fewshot", "suggest", "--help"])
    assert result.exit_code == 0
    out = text_of(result)
    for option in ("--out", "--n", "--seed", "--force", "--fewshot", "--db"):
        assert option in out
    assert "refine --fewshot" in out
