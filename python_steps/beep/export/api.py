"""`beep export` as a function: read, split, render, check, write, record.

The export id is a hash of the input rows and every setting that shapes the files, so the same
inputs and settings give the same id and byte-identical files; a second call finds the export
recorded with matching checksums and returns it without rendering or rewriting anything.

Nothing holds every example: the rows stream from DuckDB in batches (the split is computed there,
by whole conversations), each is rendered, counted, checked (export/checks.py, CheckAccumulator)
and written to its JSONL file as it comes; the examples' rows of export_examples are inserted from
the same query inside DuckDB. Peak memory is flat in the number of examples (docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from beep.checksums import sha256_file
from beep.config import Paths
from beep.db import connect, table_exists
from beep.export.checks import (
    CheckAccumulator,
    CheckResult,
    Item,
    Thresholds,
    summarize,
)
from beep.export.cost import TokenStats, token_stats_from_counts
from beep.export.models import (
    DEFAULT_BASE_MODEL,
    check_format,
    tokenizer_of,
    training_context_limit,
)
from beep.export.render import (
    DEFAULT_SYSTEM_PROMPT,
    FORMATS,
    chat_record,
    choose_label_prefix,
    LineWriter,
    completion_record,
    record_tokens,
)
from beep.export.source import (
    KNOWN_PROMPT_TOKENS,
    PROMPT_TOKENS_TABLE,
    LabelInfo,
    check_source_tables,
    excluded_counts,
    kept_digests,
    load_labels,
    rows_by_split,
    split_boundary,
    split_counts,
    split_parameters,
    split_sql,
)
from beep.export.split import SPLIT_ANCHOR_TOLERANCE, SPLIT_METHODS
from beep.export.store import insert_rows
from beep.tokens import count_tokens, encoding_name_for

SPLITS = ("train", "valid")
#: The columns of an exported row the files and the checks are made from (the split besides).
_FILE_COLUMNS = ("example_id", "conversation_id", "target_at", "prompt", "label")
#: The progress bar advances once per this many rows (a call per row cost 2 s at 634,517 rows).
_PROGRESS_EVERY = 1_000
#: DuckDB's memory for an export's reads: the sorts of the rows (by example id, by split) spill to
#: disk past it instead of growing with the number of examples (measured: docs/benchmarks.md).
EXPORT_MEMORY_LIMIT = "256MB"


@contextmanager
def _connect(paths: Paths, *, read_only: bool = False) -> Iterator[Any]:
    """A connection to ``paths.duckdb`` whose DuckDB memory is capped at EXPORT_MEMORY_LIMIT: every
    query an export runs over its examples spills past it instead of growing with their number.

    One thread: with two, reading the sorted rows of 1,200,000 examples back failed under the cap
    ("failed to pin block", each thread's share of the sort pinned at once); with one it streamed
    them in 11 s at a 363 MB peak (bench/bench_export.py). The export renders and counts tokens in
    one Python thread anyway.
    """
    with connect(paths.duckdb, read_only=read_only) as con:
        con.execute(f"set memory_limit = '{EXPORT_MEMORY_LIMIT}'")
        con.execute("set threads = 1")
        yield con


class ExportFailed(RuntimeError):
    """An error check fired: nothing was written; the checks are recorded under ``export_id``."""

    def __init__(self, export_id: str, checks: list[CheckResult]) -> None:
        self.export_id = export_id
        self.checks = checks
        failed = [c for c in checks if c.is_blocking]
        lines = "\n".join(
            f"  - {c.check}: {c.message}" + (f" (e.g. {', '.join(c.example_ids[:3])})" if c.example_ids else "")
            for c in failed
        )
        super().__init__(
            f"export {export_id} stopped: {len(failed)} check(s) failed, no file was written:\n{lines}\n"
            f"See every check with: select * from export_checks where export_id = '{export_id}'"
        )


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    status: str
    format: str
    base_model: str
    refined: bool
    split_method: str
    label_prefix: str
    train_path: Path | None
    valid_path: Path | None
    train_sha256: str | None
    valid_sha256: str | None
    n_train: int
    n_valid: int
    n_excluded: int
    excluded: dict[str, int]
    tokens_per_epoch: int
    checks: list[CheckResult]
    label_counts: dict[str, dict[str, int]]
    settings: dict[str, Any]
    reused: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    #: Tokens per training example (min, mean, p95, max), as OpenAI's data-preparation guide shows them.
    token_lengths: TokenStats | None = None
    #: Prompts whose tokens this export counted (the others' were known from earlier exports); None
    #: for an export returned as recorded.
    prompts_counted: int | None = None
    #: How the time split's boundary was chosen (kept from an earlier export, or computed now and why);
    #: None for the conversation split.
    split_note: str | None = None
    #: The earlier export whose train file (and its checks' state) this one copied: its train split is the
    #: same; only the validation split was rendered.
    train_kept_from: str | None = None
    #: With ``train_kept_from``: how many train examples got another label than in that export (a person
    #: entered or left the labels, or a verdict changed), their lines' answers rewritten in the copy; 0
    #: when the file was copied as it was.
    train_relabelled: int = 0


def _render(row: dict[str, Any], fmt: str, label_prefix: str, system_prompt: str | None) -> dict[str, Any]:
    answer = label_prefix + row["label"]
    prompt = row.get("prompt")
    if fmt == "chat":
        return chat_record(prompt, answer, system_prompt)
    return completion_record(prompt, answer)


def _finish_fingerprint(digest: Any, labels: dict[str, LabelInfo], excluded: dict[str, int]) -> str:
    for label in sorted(labels):
        digest.update(json.dumps(asdict(labels[label])).encode())
    digest.update(json.dumps(sorted(excluded.items())).encode())
    return str(digest.hexdigest())


@dataclass
class _Scan:
    """What one pass over the exported rows (by example_id) learns without keeping them."""

    n_rows: int
    used_labels: list[str]
    fingerprint: str
    unknown_labels: list[str]
    unknown_ids: list[str]
    n_unknown: int


def _scan(con: Any, table: str, *, refined: bool, labels: dict[str, LabelInfo], excluded: dict[str, int]) -> _Scan:
    """The input fingerprint (the source table, each row's digest in example_id order, the labels and the
    exclusions), the labels used and the rows whose label user_labels lacks, one batch of rows at a time."""
    digest = hashlib.sha256()
    digest.update(table.encode())
    used: set[str] = set()
    unknown_ids: list[str] = []
    n_rows = n_unknown = 0
    for example_id, label, row_md5 in kept_digests(con, refined=refined):
        n_rows += 1
        digest.update(row_md5.encode())
        used.add(label)
        if label not in labels:
            n_unknown += 1
            if len(unknown_ids) < 20:
                unknown_ids.append(str(example_id))
    return _Scan(n_rows, sorted(used), _finish_fingerprint(digest, labels, excluded),
                 sorted(used - set(labels)), unknown_ids, n_unknown)


def boundary_of(settings: dict[str, Any]) -> tuple[datetime, str] | None:
    """The time split's boundary an export's settings record (``valid_from``), or None."""
    recorded = settings.get("valid_from")
    if not recorded:
        return None
    return datetime.fromisoformat(str(recorded[0])), str(recorded[1])


def _time_boundary(paths: Paths, *, refined: bool, valid_fraction: float,
                   resplit: bool) -> tuple[tuple[datetime, str] | None, str, str | None]:
    """The time split's boundary for today's rows, a line saying how it was chosen, and the export whose
    boundary it kept (None when computed now).

    The boundary of the latest export with the same split settings (refined or not, the valid
    fraction) is kept while validation holds between ``1 - SPLIT_ANCHOR_TOLERANCE`` and ``1 +
    SPLIT_ANCHOR_TOLERANCE`` times ``valid_fraction`` of today's rows and neither side is empty:
    the new day's conversations start after it, so they go to validation and the train split stays
    as it was. Past that (or with ``resplit``, or without such an export) the newest conversations go
    to validation until it holds ``valid_fraction`` of the rows, as a first export does."""
    low, high = valid_fraction * (1 - SPLIT_ANCHOR_TOLERANCE), valid_fraction * (1 + SPLIT_ANCHOR_TOLERANCE)
    with _connect(paths, read_only=True) as con:
        anchor = None if resplit else _previous_boundary(con, refined=refined, valid_fraction=valid_fraction)
        why = "--resplit" if resplit else "no earlier export with these split settings"
        if anchor is not None:
            earlier, boundary = anchor
            counts = split_counts(con, refined=refined, boundary=boundary)
            share = counts.valid_share
            if counts.n_valid_conversations and counts.n_train_conversations and low <= share <= high:
                return boundary, (f"split: the boundary of export {earlier} kept (validation from {boundary[0]:%Y-%m-%d %H:%M}, "
                                  f"{share:.1%} of the examples; computed again outside {low:.1%}–{high:.1%})"), earlier
            why = (f"the boundary of export {earlier} would put {share:.1%} of the examples in validation, "
                   f"outside {low:.1%}–{high:.1%}" if counts.n_valid_conversations and counts.n_train_conversations
                   else f"the boundary of export {earlier} would leave a side without conversations")
        fresh = split_boundary(con, refined=refined, valid_fraction=valid_fraction)
    where = f"validation from {fresh[0]:%Y-%m-%d %H:%M}" if fresh else "fewer than two conversations"
    return fresh, f"split: computed now ({where}): {why}", None


def _previous_boundary(con: Any, *, refined: bool, valid_fraction: float) -> tuple[str, tuple[datetime, str]] | None:
    """(export id, boundary) of the export last asked for with the time split, ``refined`` and
    ``valid_fraction`` that recorded a boundary (a pruned one too: only its settings are read)."""
    if not table_exists(con, "exports"):
        return None
    rows = con.execute(
        """
        select export_id, settings from exports
        where status = 'ok' and split_method = 'time' and refined = ?
        order by coalesce(last_exported_at, created_at) desc, created_at desc
        """,
        [refined],
    ).fetchall()
    for export_id, settings in rows:
        settings = json.loads(settings) if isinstance(settings, str) else (settings or {})
        boundary = boundary_of(settings)
        if boundary is not None and float(settings.get("valid_fraction", -1)) == float(valid_fraction):
            return str(export_id), boundary
    return None


def _check_options(fmt: str, base_model: str, split_method: str, valid_fraction: float) -> None:
    """Refuse unknown formats and split methods and a valid fraction outside (0, 1)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown --format {fmt!r}: choose one of {', '.join(FORMATS)}")
    check_format(base_model, fmt)
    if split_method not in SPLIT_METHODS:
        raise ValueError(f"unknown --split {split_method!r}: choose one of {', '.join(SPLIT_METHODS)}")
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"--valid-fraction must be between 0 and 1 (exclusive), got {valid_fraction}")


@dataclass
class _Inputs:
    """What the first read of ``paths.duckdb`` learns: the source table, labels, exclusions and the scan."""

    table: str
    labels: dict[str, LabelInfo]
    excluded: dict[str, int]
    undecided: int
    scan: _Scan


def _read_inputs(paths: Paths, *, refined: bool) -> _Inputs:
    with _connect(paths, read_only=True) as con:
        table = check_source_tables(con, paths.duckdb, refined=refined)
        labels = load_labels(con)
        excluded, undecided = excluded_counts(con, refined=refined)
        scan = _scan(con, table, refined=refined, labels=labels, excluded=excluded)
    return _Inputs(table, labels, excluded, undecided, scan)


def _export_id(fingerprint: str, settings: dict[str, Any]) -> str:
    return "exp_" + hashlib.sha256(
        json.dumps({"inputs": fingerprint, "settings": settings}, sort_keys=True).encode()
    ).hexdigest()[:16]


def _input_checks(inputs: _Inputs, *, refined: bool) -> list[CheckResult]:
    """The checks decided before rendering: label mapping, excluded rows and (refined) unrefined rows."""
    scan, table, excluded, undecided = inputs.scan, inputs.table, inputs.excluded, inputs.undecided
    mapping = CheckResult(
        "label_mapping", "error", not scan.unknown_labels, scan.n_unknown, scan.unknown_ids,
        "every label is in user_labels (or nil)" if not scan.unknown_labels
        else f"labels {scan.unknown_labels} are not in user_labels: rebuild with `beep build` so both come from the same run",
    )
    n_excluded = sum(excluded.values())
    detail = ", ".join(f"{reason}: {count}" for reason, count in sorted(excluded.items()))
    excluded_check = CheckResult(
        "excluded_examples", "warning", n_excluded == 0, n_excluded, [],
        f"every row of {table} is exported" if n_excluded == 0 else f"{n_excluded} rows of {table} left out ({detail})",
    )
    undecided_check = CheckResult(
        "unrefined_examples", "warning", undecided == 0, undecided, [],
        "every exported example has a refine verdict" if undecided == 0 else
        f"{undecided} examples of {table} have no verdict from the chosen refine run and keep their label: "
        "run `beep refine` to decide them, or export with --unrefined to say so",
    )
    return [mapping, excluded_check] + ([undecided_check] if refined else [])


@dataclass
class _Written:
    """What rendering and writing the rows counted, and every check's result."""

    label_counts: dict[str, dict[str, int]]
    n_split: dict[str, int]
    tokens_per_epoch: int
    train_lengths: Counter[int]
    check_results: list[CheckResult]
    prompts_counted: int = 0


def _render_and_write(
    paths: Paths,
    partial: dict[str, Path],
    counted: Path,
    *,
    settings: dict[str, Any],
    thresholds: Thresholds,
    used_labels: list[str],
    n_rows: int,
    input_checks: list[CheckResult],
    show_progress: bool,
    train_part: _TrainPart | None = None,
    state: tuple[Path, TrainKeys] | None = None,
) -> _Written:
    """Stream the rows by split, render each, count its tokens, check it and write it to its partial file.

    A prompt an earlier export counted in this encoding (table export_prompt_tokens) is not counted
    again: a daily run's export counts only the new day's prompts. The prompts counted here go to
    ``counted`` (md5, tokens per line), which :func:`_record` adds to that table.

    ``train_part``: an earlier export with the same train split: its train file is copied (or, with
    ``relabelled``, was written relabelled already), the checks start from its state, and only the
    validation rows are read and rendered. ``state`` (folder, keys): where to save what the train split
    left in the checks (:data:`TRAIN_STATE`)."""
    fmt, base_model, label_prefix = settings["format"], settings["base_model"], settings["label_prefix"]
    refined, split_method = settings["refined"], settings["split_method"]
    counts: dict[str, dict[str, int]] = {label: {s: 0 for s in SPLITS} for label in used_labels}
    n_split = {s: 0 for s in SPLITS}
    tokens_per_epoch = 0
    train_lengths: Counter[int] = Counter()
    if train_part is not None:
        if train_part.relabelled is None:
            shutil.copyfile(train_part.train_file, partial["train"])
        kept = train_part.counts
        n_split["train"] = int(kept["n_train"])
        tokens_per_epoch = int(kept["tokens_per_epoch"])
        train_lengths.update({int(k): int(v) for k, v in kept["train_lengths"].items()})
        label_counts = (kept["label_counts"] if train_part.relabelled is None
                        else train_part.relabelled.label_counts)
        for label, n in label_counts.items():
            counts.setdefault(label, {s: 0 for s in SPLITS})["train"] = int(n)
    with (_connect(paths, read_only=True) as con,
          CheckAccumulator(fmt=fmt, base_model=base_model, label_prefix=label_prefix,
                           token_limit=settings["token_limit"], split_method=split_method, thresholds=thresholds,
                           spill_dir=paths.workdir / "tmp" / f"export-checks-{os.getpid()}") as checks,
          open(partial["train"], "a" if train_part else "w", encoding="utf-8", newline="\n") as train_file,
          open(partial["valid"], "w", encoding="utf-8", newline="\n") as valid_file,
          open(counted, "w", encoding="utf-8", newline="\n") as counted_file,
          Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True,
                   disable=not show_progress or not sys.stderr.isatty()) as progress):  # a pipe: no blank line
        files = {"train": train_file, "valid": valid_file}
        task = progress.add_task(f"rendering and counting tokens ({tokenizer_of(base_model)})", total=n_rows)
        encoding = encoding_name_for(base_model)
        writer = LineWriter(fmt, settings["system_prompt"])
        n_counted = n_unreported = 0
        saved = state is None
        if train_part is not None:
            checks.load_state(train_part.state)
            if train_part.relabelled is not None:
                checks.relabel(train_part.relabelled.labels_file)
            progress.advance(task, n_split["train"])

        def save_train_state() -> None:
            """What the train rows left (the rows come train first), for a later export with the same train split."""
            assert state is not None
            folder, keys = state
            checks.save_state(folder)
            (folder / "counts.json").write_text(json.dumps({
                "key": keys.key, "rows_key": keys.rows_key, "n_train": n_split["train"],
                "tokens_per_epoch": tokens_per_epoch,
                "train_lengths": {str(k): v for k, v in sorted(train_lengths.items())},
                "label_counts": {label: c["train"] for label, c in counts.items() if c["train"]},
            }))

        for row in rows_by_split(con, refined=refined, method=split_method, valid_fraction=settings["valid_fraction"],
                                 seed=settings["seed"], encoding=encoding, columns=_FILE_COLUMNS,
                                 valid_from=boundary_of(settings), only_split="valid" if train_part else None):
            split = row["split"]
            if not saved and split != "train":
                save_train_state()
                saved = True
            known = row.pop(KNOWN_PROMPT_TOKENS)
            record = _render(row, fmt, label_prefix, settings["system_prompt"])
            prompt = row.get("prompt")
            if known is None and isinstance(prompt, str):
                known = count_tokens(prompt, base_model)
                counted_file.write(f"{hashlib.md5(prompt.encode(), usedforsecurity=False).hexdigest()},{known}\n")
                n_counted += 1
            tokens = record_tokens(record, base_model, prompt_tokens=known)
            if split == "train":
                tokens_per_epoch += tokens
                train_lengths[tokens] += 1
            n_split[split] += 1
            counts[row["label"]][split] += 1
            files[split].write(writer.line(prompt, label_prefix + row["label"]))
            checks.add(Item(row["example_id"], row["conversation_id"], split, row["label"], record,
                            row["target_at"], tokens))
            n_unreported += 1
            if n_unreported == _PROGRESS_EVERY:
                progress.advance(task, n_unreported)
                n_unreported = 0
        if not saved:
            save_train_state()
        progress.advance(task, n_unreported)
        check_results = input_checks + checks.results()
    return _Written(counts, n_split, tokens_per_epoch, train_lengths, check_results, n_counted)


def _unfiled_result(export_id: str, settings: dict[str, Any], inputs: _Inputs, written: _Written) -> ExportResult:
    """The export's result before any file is in place (paths and checksums still None)."""
    summary = summarize(written.check_results)
    return ExportResult(
        export_id=export_id,
        status="failed" if summary["errors"] else "ok",
        format=settings["format"],
        base_model=settings["base_model"],
        refined=settings["refined"],
        split_method=settings["split_method"],
        label_prefix=settings["label_prefix"],
        train_path=None,
        valid_path=None,
        train_sha256=None,
        valid_sha256=None,
        n_train=written.n_split["train"],
        n_valid=written.n_split["valid"],
        n_excluded=sum(inputs.excluded.values()),
        excluded=dict(inputs.excluded),
        tokens_per_epoch=written.tokens_per_epoch,
        checks=written.check_results,
        label_counts=written.label_counts,
        settings=settings,
        summary=summary,
        token_lengths=token_stats_from_counts(written.train_lengths),
        prompts_counted=written.prompts_counted,
    )


def _move_into_place(folder: Path, partial: dict[str, Path], targets: dict[str, Path]) -> dict[str, str]:
    """Create the export folder, move each partial file to its target and return their checksums."""
    digests: dict[str, str] = {}
    folder.mkdir(exist_ok=True)
    for split in SPLITS:
        partial[split].replace(targets[split])
        digests[split] = sha256_file(targets[split])
    return digests


def export(
    paths: Paths,
    *,
    format: str = "chat",
    base_model: str = DEFAULT_BASE_MODEL,
    refined: bool = True,
    split_method: str = "time",
    valid_fraction: float = 0.2,
    seed: int = 0,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    max_example_tokens: int | None = None,
    thresholds: Thresholds | None = None,
    show_progress: bool = True,
    resplit: bool = False,
) -> ExportResult:
    """Export the examples of ``paths.duckdb`` as validated train/valid JSONL; see the module doc.

    The examples stream from DuckDB in batches, are rendered, counted, checked and written as they
    come, so memory does not grow with their number. A first pass over them computes the export id
    (inputs and settings): when that export is recorded and its files are there with their recorded
    checksums, it is returned as it was recorded, without rendering or writing anything.
    The time split keeps the boundary of the latest export with the same split settings while the
    share of the examples it puts in validation stays within SPLIT_ANCHOR_TOLERANCE of
    ``valid_fraction`` (:func:`_time_boundary`): a new day's examples then only add to validation, and
    the train split, the model trained on it and what an evaluation learnt from it stay the same.
    ``resplit`` computes the boundary anew.
    Raises :class:`ExportFailed` (after recording the checks) when an error check fires.
    """
    thresholds = thresholds or Thresholds()
    _check_options(format, base_model, split_method, valid_fraction)
    token_limit = training_context_limit(base_model, max_example_tokens)
    inputs = _read_inputs(paths, refined=refined)
    settings: dict[str, Any] = {
        "format": format,
        "base_model": base_model,
        "tokenizer": tokenizer_of(base_model),
        "refined": refined,
        "split_method": split_method,
        "valid_fraction": valid_fraction,
        "seed": seed,
        "system_prompt": system_prompt if format == "chat" else None,
        "token_limit": token_limit,
        "label_prefix": choose_label_prefix(inputs.scan.used_labels, base_model),
        "thresholds": asdict(thresholds),
    }
    valid_from, split_note, kept_from = (_time_boundary(paths, refined=refined, valid_fraction=valid_fraction,
                                                        resplit=resplit)
                                         if split_method == "time" else (None, None, None))
    if split_method == "time":  # (the conversation split has none: its export ids stay what they were)
        settings["valid_from"] = [valid_from[0].isoformat(), valid_from[1]] if valid_from else None
    export_id = _export_id(inputs.scan.fingerprint, settings)
    folder = paths.exports_dir / "jsonl" / export_id
    targets = {s: folder / f"{s}.jsonl" for s in SPLITS}
    recorded = _recorded_unchanged(paths, export_id, targets)
    if recorded is not None:
        return replace(recorded, split_note=split_note)
    input_checks = _input_checks(inputs, refined=refined)

    # written beside the export folders, which only a successful export creates
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = {s: folder.parent / f".{export_id}.{s}.jsonl.tmp{os.getpid()}" for s in SPLITS}
    # the prompts counted now (md5, tokens), streamed to a file and recorded with the export
    counted = folder.parent / f".{export_id}.prompt-tokens.csv.tmp{os.getpid()}"
    # what the train split left in the checks, for a later export with the same train split
    state = folder.parent / f".{export_id}.{TRAIN_STATE}.tmp{os.getpid()}"
    # the train split's labels of today, when its earlier file is copied with them (_relabel_train)
    labels_file = folder.parent / f".{export_id}.train-labels.parquet.tmp{os.getpid()}"
    keys = train_key(paths, settings) if valid_from is not None else None
    train_part = _train_part(paths, kept_from, keys) if kept_from and keys else None
    try:
        if train_part is not None and train_part.relabel:
            train_part = _relabel_train(paths, train_part, settings, partial["train"], labels_file)
        written = _render_and_write(
            paths, partial, counted, settings=settings, thresholds=thresholds, used_labels=inputs.scan.used_labels,
            n_rows=inputs.scan.n_rows, input_checks=input_checks, show_progress=show_progress,
            train_part=train_part, state=(state, keys) if keys else None,
        )
        result = replace(_unfiled_result(export_id, settings, inputs, written), split_note=split_note,
                         train_kept_from=train_part.export_id if train_part else None,
                         train_relabelled=train_part.relabelled.n_moved if train_part and train_part.relabelled else 0)
        if result.status == "failed":
            _record(paths, result, inputs.labels, counted)
            raise ExportFailed(export_id, written.check_results)
        digests = _move_into_place(folder, partial, targets)
        if state.is_dir():
            shutil.rmtree(folder / TRAIN_STATE, ignore_errors=True)
            state.replace(folder / TRAIN_STATE)
        result = _with_files(result, targets, digests, reused=False)
        _record(paths, result, inputs.labels, counted)
    finally:
        for split in SPLITS:
            partial[split].unlink(missing_ok=True)
        counted.unlink(missing_ok=True)
        labels_file.unlink(missing_ok=True)
        shutil.rmtree(state, ignore_errors=True)
    return result


#: The folder, inside an export's folder, with what its train split left in the checks
#: (CheckAccumulator.save_state) and the train file's counts, keyed by :func:`train_key`: a later export
#: whose train split is the same (the time split kept its boundary) copies the train file and starts its
#: checks from it, rendering only the validation split. When only the labels of the train examples
#: differ (a person entered or left the export's labels, which moves every label after theirs), the copy
#: gets those lines' answers rewritten and the checks their labels (:func:`_relabel_train`).
TRAIN_STATE = "train-state"


@dataclass(frozen=True)
class TrainKeys:
    """:func:`train_key`'s digests of a train split: ``key`` of everything its file and checks are made
    from; ``rows_key`` of the same but the labels."""

    key: str
    rows_key: str


@dataclass(frozen=True)
class _Relabelled:
    """The train split's labels now (``labels_file``: seq, example_id, label, one row per line in file
    order), how many train examples each label has, and how many (``n_moved``) differ from the earlier
    export's."""

    labels_file: Path
    label_counts: dict[str, int]
    n_moved: int


@dataclass(frozen=True)
class _TrainPart:
    """An earlier export whose train file and checks' state this export's train split equals (``relabel``:
    but for the labels; ``relabelled`` once :func:`_relabel_train` wrote the relabelled file)."""

    export_id: str
    train_file: Path
    state: Path
    counts: dict[str, Any]
    relabel: bool = False
    relabelled: _Relabelled | None = None


#: Bumped when what a train state holds, or how lines and checks are made from the rows, changes: an
#: older state then has another key, and the train split is rendered again.
TRAIN_STATE_VERSION = 1


def train_key(paths: Paths, settings: dict[str, Any]) -> TrainKeys | None:
    """Digests of everything the train file and its checks are made from: the train rows of the bounded
    time split (every column the lines and checks read, in file order) and the settings that render and
    check them; and the same without the labels. None without a boundary. (DuckDB's ``hash`` may change
    between its versions: then no state matches, and the train split is rendered again.)"""
    boundary = boundary_of(settings)
    if boundary is None:
        return None
    with _connect(paths, read_only=True) as con:
        n, total, xor, rows_total, rows_xor = con.execute(
            f"""
            select count(*), cast(sum(cast(h as hugeint)) as varchar), bit_xor(h),
                   cast(sum(cast(r as hugeint)) as varchar), bit_xor(r)
            from (select hash(example_id, conversation_id, target_at, prompt, label) as h,
                         hash(example_id, conversation_id, target_at, prompt) as r
                  from ({split_sql(settings["refined"], "time", bounded=True)}) where split = 'train')
            """,
            split_parameters("time", settings["valid_fraction"], settings["seed"], boundary),
        ).fetchone()
    render = {k: settings.get(k) for k in ("format", "base_model", "tokenizer", "system_prompt", "token_limit",
                                           "label_prefix", "split_method")}

    def digest(*parts: Any) -> str:
        return hashlib.sha256(json.dumps([TRAIN_STATE_VERSION, n, *map(str, parts), render],
                                         sort_keys=True).encode()).hexdigest()

    return TrainKeys(digest(total, xor), digest("rows", rows_total, rows_xor))


def _train_part(paths: Paths, export_id: str, keys: TrainKeys) -> _TrainPart | None:
    """The train part of ``export_id`` when its state has ``keys.key`` (or ``keys.rows_key``: the same
    rows with other labels, ``relabel``) and its train file is there unchanged (the checksum recorded
    with it); None otherwise (then the train split is rendered)."""
    folder = paths.exports_dir / "jsonl" / export_id
    try:
        counts = json.loads((folder / TRAIN_STATE / "counts.json").read_text())
    except (OSError, ValueError):
        return None
    relabel = counts.get("key") != keys.key
    if relabel and counts.get("rows_key") != keys.rows_key:
        return None
    existing = _existing_ok(paths, export_id)
    train = folder / "train.jsonl"
    if not existing or not train.is_file() or existing["train"] != sha256_file(train):
        return None
    if not CheckAccumulator.state_ok(folder / TRAIN_STATE, n_items=int(counts.get("n_train", -1))):
        return None  # a state missing a file, damaged or of another make: rendered again
    return _TrainPart(export_id, train, folder / TRAIN_STATE, counts, relabel=relabel)


def _plain_label(label: Any) -> bool:
    """Whether an answer of ``label`` is checked for nothing but its text (CheckAccumulator.add: not
    missing, not blank, no leading whitespace)."""
    return isinstance(label, str) and bool(label.strip()) and not label[:1].isspace()


def _relabel_train(paths: Paths, part: _TrainPart, settings: dict[str, Any], target: Path,
                   labels_file: Path) -> _TrainPart | None:
    """Write ``part``'s train file to ``target`` with today's labels of its examples, and return the part
    with them (``relabelled``: written to ``labels_file``, one row per line); None when that would not give
    what rendering gives (then the train split is rendered).

    The rows are the same but for their labels (``part.relabel``: :func:`train_key`'s ``rows_key``), so a
    line changes only in its answer, and the checks only in what they keep per label and answer, as long
    as every old and new label is plain text (:func:`_plain_label`) whose answer has as many tokens as
    the other's (the token counts, lengths and limits then stay). A line is rewritten from its old answer
    (LineWriter.with_answer), byte for byte what rendering it writes. The labels are compared, joined and
    read back in DuckDB, in batches: memory does not grow with the examples, as the export's does not."""
    import duckdb

    prefix, base_model = settings["label_prefix"], settings["base_model"]
    boundary = boundary_of(settings)
    if boundary is None:
        return None
    with _connect(paths, read_only=True) as con:  # today's labels of the train rows in file order, numbered as the items
        literal = "'" + str(labels_file).replace("'", "''") + "'"
        con.execute(
            f"""
            copy (select row_number() over (order by example_id) - 1 as seq, example_id, label
                  from ({split_sql(settings["refined"], "time", bounded=True)}) where split = 'train')
            to {literal} (format parquet)
            """, split_parameters("time", settings["valid_fraction"], settings["seed"], boundary))
    with duckdb.connect() as mem:
        mem.execute(f"set memory_limit = '{EXPORT_MEMORY_LIMIT}'")
        mem.execute("set threads = 1")
        items = "'" + str(part.state / "items.parquet").replace("'", "''") + "'"
        mem.execute(f"create view old as select * from read_parquet({items})")
        mem.execute(f"create view now as select * from read_parquet({literal})")
        n_lines, n_other, n_moved = mem.execute(
            """
            select count(*), count(*) filter (where old.example_id is distinct from now.example_id),
                   count(*) filter (where old.label_key is distinct from now.label)
            from old full join now using (seq)
            """).fetchone()
        if n_other or n_lines != int(part.counts.get("n_train", -1)):
            return None
        pairs = mem.execute("select distinct old.label_key, now.label from old join now using (seq) "
                            "where old.label_key <> now.label").fetchall()
        answers = {label for pair in pairs for label in pair}
        if not all(_plain_label(label) for label in answers) or any(
                count_tokens(prefix + was, base_model) != count_tokens(prefix + label, base_model) for was, label in pairs):
            return None
        label_counts = dict(mem.execute("select label, count(*) from now group by label").fetchall())
        if not all(_plain_label(label) for label in label_counts):
            return None
        writer = LineWriter(settings["format"], settings["system_prompt"])
        cursor = mem.execute("select old.label_key, now.label from old join now using (seq) order by seq")
        written = 0
        with (part.train_file.open(encoding="utf-8", newline="\n") as lines,
              target.open("w", encoding="utf-8", newline="\n") as out):
            while batch := cursor.fetchmany(_RELABEL_BATCH):
                for was, label in batch:
                    line = next(lines, None)
                    if line is None:
                        return None
                    if label != was:
                        line = writer.with_answer(line, prefix + was, prefix + label)
                        if line is None:
                            return None
                    out.write(line)
                    written += 1
            if written != n_lines or next(lines, None) is not None:
                return None
    return replace(part, relabelled=_Relabelled(labels_file, label_counts, int(n_moved)))


#: Lines relabelled per batch of labels read back from DuckDB.
_RELABEL_BATCH = 20_000


def _recorded_unchanged(paths: Paths, export_id: str, targets: dict[str, Path]) -> ExportResult | None:
    """The export recorded under ``export_id``, when it succeeded and its files are there unchanged
    (same checksums), as it was recorded; None otherwise (then it is written again). An export
    recorded by an older Beep (without its token lengths) is written again too."""
    existing = _existing_ok(paths, export_id)
    if not existing or not all(targets[s].exists() and existing[s] == sha256_file(targets[s]) for s in SPLITS):
        return None
    with _connect(paths) as con:
        row = load_export_row(con, export_id)
        if row is None:
            return None
        summary = row["check_summary"] if isinstance(row["check_summary"], dict) else json.loads(row["check_summary"] or "{}")
        if "token_lengths" not in summary:
            return None
        checks = [CheckResult(c, sev, bool(ok), int(n), list(ids or []), msg or "") for c, sev, ok, n, ids, msg in con.execute(
            'select "check", severity, passed, count, example_ids, message from export_checks where export_id = ? order by rowid',
            [export_id]).fetchall()]
        con.execute("update exports set last_exported_at = current_timestamp where export_id = ?", [export_id])
    settings = row["settings"] if isinstance(row["settings"], dict) else json.loads(row["settings"] or "{}")
    label_counts = row["label_counts"] if isinstance(row["label_counts"], dict) else json.loads(row["label_counts"] or "{}")
    lengths = summary.pop("token_lengths")
    excluded = summary.pop("excluded", {})
    result = ExportResult(
        export_id=export_id, status="ok", format=row["format"], base_model=row["base_model"], refined=row["refined"],
        split_method=row["split_method"], label_prefix=row["label_prefix"] or "", train_path=None, valid_path=None,
        train_sha256=None, valid_sha256=None, n_train=row["n_train"], n_valid=row["n_valid"],
        n_excluded=row["n_excluded"], excluded=dict(excluded), tokens_per_epoch=row["estimated_training_tokens"] or 0,
        checks=checks, label_counts=label_counts, settings=settings, summary=summary,
        token_lengths=TokenStats(**lengths) if lengths else None,
    )
    return _with_files(result, targets, existing, reused=True)


def _with_files(result: ExportResult, targets: dict[str, Path], digests: dict[str, str], *, reused: bool) -> ExportResult:
    values = asdict(result)
    values.update(
        train_path=targets["train"],
        valid_path=targets["valid"],
        train_sha256=digests["train"],
        valid_sha256=digests["valid"],
        reused=reused,
        checks=result.checks,
        token_lengths=result.token_lengths,
    )
    return ExportResult(**values)


def _existing_ok(paths: Paths, export_id: str) -> dict[str, str] | None:
    with _connect(paths) as con:
        row = con.execute(
            "select train_sha256, valid_sha256 from exports where export_id = ? and status = 'ok'", [export_id]
        ).fetchone()
    return {"train": row[0], "valid": row[1]} if row else None


def _record(paths: Paths, result: ExportResult, labels: dict[str, LabelInfo], counted: Path | None = None) -> None:
    """Replace whatever was recorded under this export id, in one transaction. The examples'
    rows come from the same query the files were written from, inside DuckDB (never a Python list).
    ``counted``: the prompts' token counts this export made (md5,tokens lines), added to
    export_prompt_tokens where the table lacks them."""
    eid = result.export_id
    settings = result.settings
    with _connect(paths) as con:  # the examples' rows are numbered per split: a sort of every example
        con.execute("begin transaction")
        try:
            for table in ("export_checks", "export_examples", "export_labels", "exports"):
                con.execute(f"delete from {table} where export_id = ?", [eid])
            lengths = asdict(result.token_lengths) if result.token_lengths else None
            con.execute(
                """
                insert into exports (export_id, status, format, base_model, refined, split_method, label_prefix,
                    settings, train_path, valid_path, train_sha256, valid_sha256, n_train, n_valid, n_excluded,
                    estimated_training_tokens, label_counts, check_summary)
                values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    eid, result.status, result.format, result.base_model, result.refined, result.split_method,
                    result.label_prefix, json.dumps(result.settings),
                    str(result.train_path) if result.train_path else None,
                    str(result.valid_path) if result.valid_path else None,
                    result.train_sha256, result.valid_sha256, result.n_train, result.n_valid, result.n_excluded,
                    result.tokens_per_epoch, json.dumps(result.label_counts),
                    json.dumps({**result.summary, "excluded": result.excluded, "token_lengths": lengths}),
                ],
            )
            insert_rows(
                con, "export_checks", ("export_id", "check", "severity", "passed", "count", "example_ids", "message"),
                [(eid, c.check, c.severity, c.passed, c.count, c.example_ids, c.message) for c in result.checks],
            )
            boundary = boundary_of(settings)
            params = {"eid": eid, **split_parameters(settings["split_method"], settings["valid_fraction"], settings["seed"],
                                                     boundary)}
            con.execute(
                f"""
                insert into export_examples (export_id, example_id, split, line, conversation_id, label, channel_id,
                    target_at, responder_user_id, prior_participant_ids, mentioned_user_ids)
                select $eid, example_id, split, row_number() over (partition by split order by example_id),
                    conversation_id, label, channel_id, target_at, responder_user_id,
                    coalesce(prior_participant_ids, []), coalesce(mentioned_user_ids, [])
                from ({split_sql(result.refined, settings["split_method"], bounded=boundary is not None)})
                """,
                params,
            )
            label_rows = []
            for label, counts in result.label_counts.items():
                info = labels.get(label, LabelInfo(label, None, None))
                label_rows.append((eid, label, info.user_id, info.user_name, counts["train"], counts["valid"]))
            insert_rows(con, "export_labels", ("export_id", "label", "user_id", "user_name", "n_train", "n_valid"), label_rows)
            if counted is not None and counted.is_file() and counted.stat().st_size:
                con.execute(
                    f"""
                    insert into {PROMPT_TOKENS_TABLE} (encoding, prompt_md5, tokens)
                    select distinct $encoding, new.prompt_md5, new.tokens
                    from read_csv($path, header = false, delim = ',', quote = '',
                                  columns = {{'prompt_md5': 'varchar', 'tokens': 'integer'}}) as new
                    where not exists (select 1 from {PROMPT_TOKENS_TABLE} as known
                                      where known.encoding = $encoding and known.prompt_md5 = new.prompt_md5)
                    """,
                    {"encoding": encoding_name_for(result.base_model), "path": str(counted)},
                )
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise


def load_export_row(con: Any, export_id: str) -> dict[str, Any] | None:
    cursor = con.execute("select * from exports where export_id = ?", [export_id])
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    return None if row is None else dict(zip(names, row))


def load_export(paths: Paths, export_id: str) -> dict[str, Any]:
    """The recorded ``exports`` row as a dict; a clear error when the id is unknown."""
    with connect(paths.duckdb) as con:
        cursor = con.execute("select * from exports where export_id = ?", [export_id])
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
        if row is None:
            known = [r[0] for r in con.execute(
                "select export_id from exports where status = 'ok' order by created_at desc limit 5").fetchall()]
            raise LookupError(
                f"no export {export_id!r} in {paths.duckdb}: run `beep export` first"
                + (f" (recent exports: {', '.join(known)})" if known else "")
            )
    return dict(zip(names, row))


def latest_export_id(paths: Paths) -> str:
    """The id of the successful export the user asked for last (a reused export counts as asked for)."""
    with connect(paths.duckdb) as con:
        row = con.execute(
            "select export_id from exports where status = 'ok' "
            "order by coalesce(last_exported_at, created_at) desc, created_at desc, export_id limit 1"
        ).fetchone()
    if row is None:
        raise LookupError(f"no successful export in {paths.duckdb}: run `beep export` first")
    return row[0]
