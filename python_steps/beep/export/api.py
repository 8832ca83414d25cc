"""`beep export` as a function: read, split, render, check, write, record.

The export id is a hash of the input rows and every setting that shapes the files, so the same
inputs and settings give the same id and byte-identical files; a second call finds the export
recorded with matching checksums and returns it without rewriting anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from beep.config import Paths
from beep.db import connect
from beep.export.checks import CheckResult, Item, Thresholds, run_checks, summarize
from beep.export.cost import TokenStats, token_stats
from beep.export.models import DEFAULT_BASE_MODEL, check_format, tokenizer_of, training_context_limit
from beep.export.render import (
    DEFAULT_SYSTEM_PROMPT,
    FORMATS,
    chat_record,
    choose_label_prefix,
    completion_record,
    dumps,
    record_tokens,
)
from beep.export.source import LabelInfo, SourceData, load_source
from beep.export.split import SPLIT_METHODS, split_examples
from beep.export.store import insert_rows
from beep.checksums import sha256_file

SPLITS = ("train", "valid")


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


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _fingerprint(source: SourceData) -> str:
    digest = hashlib.sha256()
    digest.update(source.table.encode())
    for row in source.rows:
        digest.update(json.dumps({k: _canonical(v) for k, v in sorted(row.items())}, ensure_ascii=False).encode())
        digest.update(b"\n")
    for label in sorted(source.labels):
        digest.update(json.dumps(asdict(source.labels[label])).encode())
    digest.update(json.dumps(sorted(source.excluded.items())).encode())
    return digest.hexdigest()


def _render(row: dict[str, Any], fmt: str, label_prefix: str, system_prompt: str | None) -> dict[str, Any]:
    answer = label_prefix + row["label"]
    prompt = row.get("prompt")
    if fmt == "chat":
        return chat_record(prompt, answer, system_prompt)
    return completion_record(prompt, answer)


def _mapping_check(source: SourceData) -> CheckResult:
    unknown = sorted({r["label"] for r in source.rows if r["label"] not in source.labels})
    ids = [r["example_id"] for r in source.rows if r["label"] not in source.labels]
    return CheckResult(
        "label_mapping",
        "error",
        not unknown,
        len(ids),
        [str(i) for i in ids[:20]],
        "every label is in user_labels (or nil)"
        if not unknown
        else f"labels {unknown} are not in user_labels: rebuild with `beep build` so both come from the same run",
    )


def _excluded_check(source: SourceData) -> CheckResult:
    n = sum(source.excluded.values())
    detail = ", ".join(f"{reason}: {count}" for reason, count in sorted(source.excluded.items()))
    return CheckResult(
        "excluded_examples",
        "warning",
        n == 0,
        n,
        [],
        f"every row of {source.table} is exported" if n == 0 else f"{n} rows of {source.table} left out ({detail})",
    )


def _undecided_check(source: SourceData) -> CheckResult:
    n = source.undecided
    return CheckResult(
        "unrefined_examples",
        "warning",
        n == 0,
        n,
        [],
        "every exported example has a refine verdict" if n == 0 else
        f"{n} examples of {source.table} have no verdict from the chosen refine run and keep their label: "
        "run `beep refine` to decide them, or export with --unrefined to say so",
    )


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
    thresholds: Thresholds = Thresholds(),
    show_progress: bool = True,
) -> ExportResult:
    """Export the examples of ``paths.duckdb`` as validated train/valid JSONL; see the module doc.

    Raises :class:`ExportFailed` (after recording the checks) when an error check fires.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown --format {format!r}: choose one of {', '.join(FORMATS)}")
    check_format(base_model, format)
    if split_method not in SPLIT_METHODS:
        raise ValueError(f"unknown --split {split_method!r}: choose one of {', '.join(SPLIT_METHODS)}")
    token_limit = training_context_limit(base_model, max_example_tokens)
    source = load_source(paths.duckdb, refined=refined)
    split_of = split_examples(source.rows, method=split_method, valid_fraction=valid_fraction, seed=seed)
    used_labels = sorted({r["label"] for r in source.rows})
    label_prefix = choose_label_prefix(used_labels, base_model)
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
        "label_prefix": label_prefix,
        "thresholds": asdict(thresholds),
    }
    export_id = "exp_" + hashlib.sha256(
        json.dumps({"inputs": _fingerprint(source), "settings": settings}, sort_keys=True).encode()
    ).hexdigest()[:16]

    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for row in source.rows:  # already ordered by example_id
        by_split[split_of[str(row["example_id"])]].append(row)
    items: list[Item] = []
    records: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    tokens_per_epoch = 0
    train_lengths: list[int] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True,
                  disable=not show_progress or not sys.stderr.isatty()) as progress:  # a pipe: no blank line
        task = progress.add_task(f"rendering and counting tokens ({tokenizer_of(base_model)})", total=len(source.rows))
        for split in SPLITS:
            for row in by_split[split]:
                record = _render(row, format, label_prefix, system_prompt)
                tokens = record_tokens(record, base_model)
                if split == "train":
                    tokens_per_epoch += tokens
                    train_lengths.append(tokens)
                records[split].append(record)
                items.append(Item(row["example_id"], row["conversation_id"], split, row["label"], record,
                                  row["target_at"], tokens))
                progress.advance(task)
    checks = [_mapping_check(source), _excluded_check(source)] + ([_undecided_check(source)] if refined else []) + run_checks(
        items,
        fmt=format,
        base_model=base_model,
        label_prefix=label_prefix,
        token_limit=token_limit,
        split_method=split_method,
        thresholds=thresholds,
    )
    summary = summarize(checks)
    label_counts = {
        label: {s: sum(r["label"] == label for r in by_split[s]) for s in SPLITS} for label in used_labels
    }
    status = "failed" if summary["errors"] else "ok"

    result = ExportResult(
        export_id=export_id,
        status=status,
        format=format,
        base_model=base_model,
        refined=refined,
        split_method=split_method,
        label_prefix=label_prefix,
        train_path=None,
        valid_path=None,
        train_sha256=None,
        valid_sha256=None,
        n_train=len(by_split["train"]),
        n_valid=len(by_split["valid"]),
        n_excluded=sum(source.excluded.values()),
        excluded=dict(source.excluded),
        tokens_per_epoch=tokens_per_epoch,
        checks=checks,
        label_counts=label_counts,
        settings=settings,
        summary=summary,
        token_lengths=token_stats(train_lengths),
    )
    if status == "failed":
        _record(paths, result, source, by_split)
        raise ExportFailed(export_id, checks)

    folder = paths.exports_dir / "jsonl" / export_id
    targets = {s: folder / f"{s}.jsonl" for s in SPLITS}
    existing = _existing_ok(paths, export_id)
    if existing and all(
        targets[s].exists() and existing[s] == sha256_file(targets[s]) for s in SPLITS
    ):
        with connect(paths.duckdb) as con:
            con.execute("update exports set last_exported_at = current_timestamp where export_id = ?", [export_id])
        return _with_files(result, targets, existing, reused=True)

    folder.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    for split in SPLITS:
        tmp = targets[split].with_name(targets[split].name + f".tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            for record in records[split]:
                handle.write(dumps(record))
        tmp.replace(targets[split])
        digests[split] = sha256_file(targets[split])
    result = _with_files(result, targets, digests, reused=False)
    _record(paths, result, source, by_split)
    return result


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
    with connect(paths.duckdb) as con:
        row = con.execute(
            "select train_sha256, valid_sha256 from exports where export_id = ? and status = 'ok'", [export_id]
        ).fetchone()
    return {"train": row[0], "valid": row[1]} if row else None


def _record(paths: Paths, result: ExportResult, source: SourceData, by_split: dict[str, list[dict[str, Any]]]) -> None:
    """Replace whatever was recorded under this export id, in one transaction."""
    eid = result.export_id
    with connect(paths.duckdb) as con:
        con.execute("begin transaction")
        try:
            for table in ("export_checks", "export_examples", "export_labels", "exports"):
                con.execute(f"delete from {table} where export_id = ?", [eid])
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
                    json.dumps({**result.summary, "excluded": result.excluded}),
                ],
            )
            insert_rows(
                con, "export_checks", ("export_id", "check", "severity", "passed", "count", "example_ids", "message"),
                [(eid, c.check, c.severity, c.passed, c.count, c.example_ids, c.message) for c in result.checks],
            )
            example_rows = []
            for split in SPLITS:
                for line, row in enumerate(by_split[split], start=1):
                    example_rows.append((
                        eid, row["example_id"], split, line, row["conversation_id"], row["label"], row["channel_id"],
                        row["target_at"], row["responder_user_id"], row["prior_participant_ids"],
                        row["mentioned_user_ids"],
                    ))
            insert_rows(
                con, "export_examples",
                ("export_id", "example_id", "split", "line", "conversation_id", "label", "channel_id", "target_at",
                 "responder_user_id", "prior_participant_ids", "mentioned_user_ids"),
                example_rows,
            )
            label_rows = []
            for label, counts in result.label_counts.items():
                info = source.labels.get(label, LabelInfo(label, None, None))
                label_rows.append((eid, label, info.user_id, info.user_name, counts["train"], counts["valid"]))
            insert_rows(con, "export_labels", ("export_id", "label", "user_id", "user_name", "n_train", "n_valid"), label_rows)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise


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
