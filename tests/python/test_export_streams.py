"""`beep export` streams: the split computed in DuckDB equals split_examples, batches of any size
write the same bytes, the streamed checks equal the checks over the whole list, and an unchanged
export is returned as recorded without rendering anything."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict

import pytest
from beep.db import open_duckdb
from beep.export import api, source
from beep.export.api import export
from beep.export.checks import MAX_IDS, CheckAccumulator, Item, run_checks
from beep.export.render import DEFAULT_SYSTEM_PROMPT, chat_record, record_prompt
from beep.export.split import split_examples
from export_testdata import make_paths, make_rows, write_tables


@pytest.fixture
def paths(tmp_path):
    paths = make_paths(tmp_path)
    write_tables(paths.duckdb, make_rows(n_conversations=23))
    return paths


@pytest.mark.parametrize(("method", "fraction", "seed"), [("time", 0.2, 0), ("time", 0.5, 0), ("conversation", 0.2, 3),
                                                          ("conversation", 0.35, 11)])
def test_the_split_in_sql_is_split_examples(paths, method: str, fraction: float, seed: int) -> None:
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        rows = list(source.kept_rows(con, refined=False))
        streamed = {str(r["example_id"]): r["split"] for r in source.rows_by_split(
            con, refined=False, method=method, valid_fraction=fraction, seed=seed)}
    assert len(rows) > 40
    expected = split_examples(rows, method=method, valid_fraction=fraction, seed=seed)
    assert streamed == expected
    assert set(expected.values()) == {"train", "valid"}


def test_batches_of_any_size_write_the_same_export(paths, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = export(paths, refined=False)
    other = make_paths(tmp_path / "small-batches")
    write_tables(other.duckdb, make_rows(n_conversations=23))
    monkeypatch.setattr(source, "BATCH_ROWS", 7)
    small = export(other, refined=False)
    assert small.export_id == whole.export_id and not small.reused
    assert small.train_path.read_bytes() == whole.train_path.read_bytes()
    assert small.valid_path.read_bytes() == whole.valid_path.read_bytes()
    assert [asdict(c) for c in small.checks] == [asdict(c) for c in whole.checks]


def test_an_unchanged_export_is_returned_as_recorded_without_rendering(paths, monkeypatch: pytest.MonkeyPatch) -> None:
    first = export(paths, refined=False)
    mtime = first.train_path.stat().st_mtime_ns

    def no_render(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged export rendered its examples again")

    monkeypatch.setattr(api, "_render", no_render)
    again = export(paths, refined=False)
    assert again.reused and again.train_path.stat().st_mtime_ns == mtime
    for field in ("export_id", "n_train", "n_valid", "n_excluded", "excluded", "tokens_per_epoch", "label_counts",
                  "settings", "summary", "token_lengths", "label_prefix", "train_sha256", "valid_sha256"):
        assert getattr(again, field) == getattr(first, field), field
    assert [asdict(c) for c in again.checks] == [asdict(c) for c in first.checks]
    # another setting is another export: rendered
    with pytest.raises(AssertionError, match="rendered its examples again"):
        export(paths, refined=False, valid_fraction=0.3)


def _reference_duplicates(items: list[Item]) -> tuple[list[str], list[str]]:
    """The whole-list algorithm the streamed check replaced (exact ids, conflicting ids, in order)."""
    by_prompt: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_prompt[record_prompt(item.record) or ""].append(item)
    exact: list[str] = []
    conflicting: list[str] = []
    for group in by_prompt.values():
        if len(group) < 2:
            continue
        labels = Counter(i.label for i in group)
        if len(labels) > 1:
            conflicting += [str(i.example_id) for i in group]
        for label, n in labels.items():
            if n > 1:
                exact += [str(i.example_id) for i in group if i.label == label]
    return exact, conflicting


def test_streamed_checks_keep_the_first_ids_and_every_count(tmp_path) -> None:
    """Duplicates and leakage past the in-memory buffer (a flush) and past MAX_IDS flagged ids, as the
    whole-list algorithm finds them."""
    suffix = "\n\n###\n\n"
    items = []
    for i in range(30_000):
        shared = i % 997 == 0  # 31 items share one of 4 prompts; labels 0-2
        prompt = f"the same question {i % 4}{suffix}" if shared else f"question {i}{suffix}"
        label = str(i % 3) if shared else str(i % 2)
        conv = "c-shared" if i in (5, 29_999) else f"c{i}"
        split = "valid" if i >= 29_000 else "train"
        items.append(Item(f"e{i:05d}", conv, split, label, chat_record(prompt, label, DEFAULT_SYSTEM_PROMPT), None, 60))
    kwargs = {"fmt": "chat", "base_model": "gpt-4.1-nano-2025-04-14", "label_prefix": "", "token_limit": 65_536,
              "split_method": "conversation"}
    results = {r.check: r for r in run_checks(items, **kwargs)}
    exact, conflicting = _reference_duplicates(items)
    assert len(exact) > MAX_IDS and len(conflicting) > MAX_IDS
    assert (results["exact_duplicates"].count, results["exact_duplicates"].example_ids) == (len(exact), exact[:MAX_IDS])
    assert (results["conflicting_duplicates"].count, results["conflicting_duplicates"].example_ids) == (
        len(conflicting), conflicting[:MAX_IDS])
    assert results["conversation_leakage"].count == 2
    assert results["conversation_leakage"].example_ids == ["e00005", "e29999"]
    with CheckAccumulator(spill_dir=tmp_path / "spill", memory_limit="64MB", **kwargs) as checks:
        for item in items:
            checks.add(item)
        assert [asdict(r) for r in checks.results()] == [asdict(r) for r in results.values()]
        assert (tmp_path / "spill").is_dir()
    assert not (tmp_path / "spill").exists()  # the spill folder it made is gone with it


def test_every_connection_of_an_export_caps_duckdbs_memory(paths, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reads, the checks' private database and the recording write (which numbers every example
    per split: a sort of all of them) each run under a memory cap, past which DuckDB spills: the
    export's peak does not grow with its examples (docs/benchmarks.md, bench_export)."""
    import contextlib

    import duckdb

    limits: list[tuple[str, int]] = []
    real_connect, real_duckdb_connect = api.connect, duckdb.connect

    def _limit(con: duckdb.DuckDBPyConnection) -> int:
        return con.execute("select current_setting('memory_limit')").fetchone()[0]

    @contextlib.contextmanager
    def watched(*args, **kwargs):
        with real_connect(*args, **kwargs) as con:
            yield con
            limits.append(("beep.db.connect" + (" (read-only)" if kwargs.get("read_only") else ""), _limit(con)))

    class WatchedDuckDB:  # the checks' private database: duckdb.connect(config=...) in beep.export.checks
        @staticmethod
        def connect(*args, **kwargs):
            con = real_duckdb_connect(*args, **kwargs)
            limits.append(("checks", _limit(con)))
            return con

    monkeypatch.setattr(api, "connect", watched)
    monkeypatch.setattr("beep.export.checks.duckdb", WatchedDuckDB)
    result = export(paths, refined=False)
    assert result.status == "ok" and result.n_train > 0
    kinds = [kind for kind, _ in limits]
    assert "beep.db.connect" in kinds and "checks" in kinds and "beep.db.connect (read-only)" in kinds, limits
    cap = api.EXPORT_MEMORY_LIMIT
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '{cap}'")
        cap_value = _limit(con)

    def mib(value: str) -> float:
        number, unit = value.split()
        return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]

    assert all(mib(value) <= mib(cap_value) for _, value in limits), limits


def test_an_export_counts_only_the_prompts_no_export_counted(paths, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daily run's export counts the tokens of the new day's prompts only: the others' counts come
    from export_prompt_tokens, and the files, token estimate and token lengths equal an export that
    counted everything."""
    calls: list[str] = []
    real = api.count_tokens

    def counting(text: str, model: str) -> int:
        calls.append(text)
        return real(text, model)

    monkeypatch.setattr(api, "count_tokens", counting)
    first = export(paths, refined=False)
    n_rows = first.n_train + first.n_valid
    assert len(calls) == n_rows  # every prompt counted once
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        assert con.execute("select count(*), count(distinct prompt_md5), min(encoding), max(encoding) "
                           "from export_prompt_tokens").fetchone() == (len(set(calls)), len(set(calls)), "o200k_base",
                                                                      "o200k_base")

    calls.clear()
    assert first.prompts_counted == n_rows
    again = export(paths, refined=False, valid_fraction=0.35)  # another export of the same prompts
    assert not again.reused and calls == [] and again.prompts_counted == 0
    fresh = make_paths(tmp_path / "fresh")  # the same, counting every prompt
    write_tables(fresh.duckdb, make_rows(n_conversations=23))
    counted = export(fresh, refined=False, valid_fraction=0.35)
    assert len(calls) == n_rows
    for field in ("export_id", "tokens_per_epoch", "token_lengths", "n_train", "n_valid"):
        assert getattr(again, field) == getattr(counted, field), field
    assert again.train_path.read_bytes() == counted.train_path.read_bytes()
    assert again.valid_path.read_bytes() == counted.valid_path.read_bytes()

    # one prompt changes (a message edited, a late reply): only it is counted, and its new count is kept
    with open_duckdb(str(paths.duckdb)) as con:
        [(example_id,)] = con.execute("select example_id from training_examples order by example_id limit 1").fetchall()
        con.execute("update training_examples set prompt = 'edited: ' || prompt where example_id = ?", [example_id])
        [(edited,)] = con.execute("select prompt from training_examples where example_id = ?", [example_id]).fetchall()
    calls.clear()
    export(paths, refined=False)
    assert calls == [edited]
    with open_duckdb(str(paths.duckdb), read_only=True) as con:
        assert con.execute("select tokens from export_prompt_tokens where prompt_md5 = md5(?)", [edited]).fetchone() == (
            real(edited, "gpt-4.1-mini-2025-04-14"),)
    # a base model of another encoding counts its own
    calls.clear()
    export(paths, refined=False, format="completion", base_model="davinci-002")
    assert len(calls) == n_rows
