"""`beep refine` on the bundled sample with both providers (openai against the fake server)."""

from __future__ import annotations

import json

from refine_testkit import blocks

from beep.config import PROJECT_DIR
from beep.db import open_duckdb
from beep.refine.api import refine
from beep.refine.fewshot import default_fewshot_path, load_fewshot


def query(db, sql):
    con = open_duckdb(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_local_on_the_sample_then_refined_model(fresh_paths):
    summary = refine(fresh_paths, progress=False)  # refreshes the refine views if dbt built them before refine_verdicts existed
    n = query(fresh_paths.duckdb, "select count(*) from training_examples")[0][0]
    assert summary.n_examples == n and summary.n_strong + summary.n_weak == n and summary.n_undecided == 0
    assert 0.1 < summary.n_weak / n < 0.6  # small talk is a minority of the sample, not nothing
    assert summary.fewshot_hash == load_fewshot(default_fewshot_path(PROJECT_DIR)).hash  # the sample gets its own set
    counts = dict(query(fresh_paths.duckdb, "select verdict, n_examples from refine_verdict_counts"))
    assert counts == {"strong": summary.n_strong, "weak": summary.n_weak, "refused": 0, "undecided": 0}
    assert query(fresh_paths.duckdb, "select count(*) from refined_training_examples where verdict = 'weak' and completion <> ' nil'") == [(0,)]


def test_openai_on_the_sample_against_the_fake_server(fresh_paths, fake_openai):
    fake_openai.state.chat_responder = lambda body: json.dumps(
        {num: ("strong" if len(text) > 60 else "weak") for num, text in blocks(body)}
    )
    dry = refine(fresh_paths, provider="openai", dry_run=True, progress=False, refresh_dbt=False)
    summary = refine(fresh_paths, provider="openai", progress=False, refresh_dbt=False, timeout_seconds=5)
    n = query(fresh_paths.duckdb, "select count(*) from training_examples")[0][0]
    assert summary.n_strong + summary.n_weak == n and summary.requests == dry.estimate.requests
    assert summary.prompt_tokens == dry.estimate.prompt_tokens and summary.cost <= dry.estimate.cost_upper
    per_example = query(
        fresh_paths.duckdb,
        "select count(*), count(distinct example_id) from refine_verdicts where provider = 'openai'",
    )
    assert per_example == [(n, n)]
