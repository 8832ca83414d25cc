"""What a fine-tune (or an evaluation) reads of an export: the verified files and their rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from beep.config import Paths
from beep.db import connect
from beep.export.api import load_export
from beep.export.render import record_answer, record_prompt
from beep.checksums import sha256_file


class ExportRejected(RuntimeError):
    """The export cannot be used for training: a check failed, or its files changed since."""


def verified_export(paths: Paths, export_id: str) -> dict[str, Any]:
    """The ``exports`` row, after making sure it passed its checks and its files are the ones recorded."""
    export = load_export(paths, export_id)
    if export.get("pruned_at") is not None:
        raise ExportRejected(
            f"the files and example rows of export {export_id} were removed by `beep prune` on "
            f"{export['pruned_at']:%Y-%m-%d %H:%M} UTC: fine-tune on the latest export (`beep export` makes it; it "
            "makes this one again only from the same data and settings)"
        )
    if export["status"] != "ok":
        summary = export.get("check_summary")
        raise ExportRejected(
            f"export {export_id} failed its checks ({summary}) and cannot be fine-tuned on: fix the data and run "
            f"`beep export` again (select * from export_checks where export_id = '{export_id}' shows why)"
        )
    for split in ("train", "valid"):
        path = Path(export[f"{split}_path"])
        if not path.exists():
            raise ExportRejected(f"the {split} file of export {export_id} is missing ({path}): run `beep export` again")
        digest = sha256_file(path)
        if digest != export[f"{split}_sha256"]:
            raise ExportRejected(
                f"{path} changed since export {export_id} wrote it (sha256 {digest[:12]}… instead of "
                f"{export[f'{split}_sha256'][:12]}…): run `beep export` again rather than editing export files"
            )
    return export


def export_rows(paths: Paths, export_id: str, split: str) -> list[dict[str, Any]]:
    """The examples of one split in file order: example_id, prompt, label (text), answer as written,
    conversation_id, channel_id, target_at, responder_user_id, prior_participant_ids, mentioned_user_ids.
    """
    if split not in ("train", "valid"):
        raise ValueError(f"split must be train or valid, got {split!r}")
    export = verified_export(paths, export_id)
    with connect(paths.duckdb) as con:
        cursor = con.execute(
            """
            select example_id, line, label, conversation_id, channel_id, target_at, responder_user_id,
                   prior_participant_ids, mentioned_user_ids
            from export_examples where export_id = ? and split = ? order by line
            """,
            [export_id, split],
        )
        names = [d[0] for d in cursor.description]
        meta = [dict(zip(names, row)) for row in cursor.fetchall()]
    path = Path(export[f"{split}_path"])
    with open(path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    if len(records) != len(meta):
        raise ExportRejected(
            f"{path} has {len(records)} lines but export_examples lists {len(meta)} {split} examples for {export_id}: "
            "run `beep export` again"
        )
    rows = []
    for record, row in zip(records, meta):
        row = dict(row)
        row["prompt"] = record_prompt(record)
        row["answer"] = record_answer(record)
        row["prior_participant_ids"] = list(row["prior_participant_ids"] or [])
        row["mentioned_user_ids"] = list(row["mentioned_user_ids"] or [])
        rows.append(row)
    return rows
