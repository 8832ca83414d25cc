"""`beep export` and the local `beep finetune` on the dataset dbt built from the bundled sample."""

from __future__ import annotations

from beep.db import open_duckdb
from beep.export.api import export
from beep.finetune.api import PollSettings, finetune


def test_sample_exports_cleanly_and_trains(fresh_paths) -> None:
    result = export(fresh_paths)
    assert result.status == "ok" and result.summary["errors"] == 0
    assert result.n_train > 1000 and result.n_valid > 200
    assert 0.15 < result.n_valid / (result.n_train + result.n_valid) < 0.3
    checks = {c.check: c for c in result.checks}
    for name in ("conversation_leakage", "prompt_suffix", "label_single_token", "record_shape", "prompt_too_long",
                 "completion_leading_space", "required_fields", "label_mapping"):
        assert checks[name].passed, checks[name].message
    con = open_duckdb(str(fresh_paths.duckdb), read_only=True)
    try:
        n_examples = con.execute("select count(*) from training_examples").fetchone()[0]
        newest_train, oldest_valid = con.execute(
            """
            with conv as (
                select e.split, min(t.target_at) as started
                from export_examples e join training_examples t using (example_id)
                where e.export_id = ? group by e.split, e.conversation_id
            )
            select max(started) filter (where split = 'train'), min(started) filter (where split = 'valid') from conv
            """,
            [result.export_id],
        ).fetchone()
    finally:
        con.close()
    assert result.n_train + result.n_valid + result.n_excluded == n_examples
    assert newest_train <= oldest_valid
    job = finetune(fresh_paths, export_id=result.export_id)
    assert job.status == "succeeded" and job.fine_tuned_model == f"local:{job.job_id}"


def test_sample_fine_tunes_on_an_openai_compatible_server(fresh_paths, fake_openai) -> None:
    result = export(fresh_paths, refined=False, format="completion", base_model="babbage-002")
    assert result.status == "ok" and result.label_prefix == ""
    job = finetune(fresh_paths, export_id=result.export_id, provider="openai", n_epochs=1,
                   poll=PollSettings(interval_seconds=0.01, show_progress=False))
    assert job.status == "succeeded" and job.fine_tuned_model.startswith("ft:babbage-002:")
    uploaded = {f.content for f in fake_openai.state.files.values() if f.purpose == "fine-tune"}
    assert uploaded == {result.train_path.read_bytes(), result.valid_path.read_bytes()}
