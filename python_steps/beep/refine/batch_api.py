"""``--batch-api``: the same questions through OpenAI's Batch API (half price), resumable across runs.

A submission is recorded in DuckDB (``refine_batches`` + ``refine_batch_items``) *before* its JSONL is
uploaded, then updated with the file id and the batch id. So whatever happens (Ctrl-C, kill -9,
a closed laptop), the next ``beep refine --batch-api`` finds it: a batch created but not recorded
is found again by its ``beep_submission_id`` metadata; a submission that never reached the provider
is dropped and its examples become pending again. Examples in an open submission are never sent
twice. Collected answers are parsed like synchronous ones; ids missing from an answer become
pending again and go into the next submission.

Neither the upload nor the batch is ever created twice by a retry: when a create fails (a dropped
connection, a 500 or a timeout may come after the provider did the work), the provider's files
(by the submission's file name and size) or batches (by ``beep_submission_id``) are listed first,
and what the failed attempt made is adopted (beep.llm.retry.create_once).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import openai

from beep.db import connect
from beep.llm.calls import Usage
from beep.llm.retry import RetryPolicy, call_with_retry, create_once
from beep.refine.prompting import Question, confidences, parse_answer, request_body
from beep.refine.store import Verdict, VerdictKey, VerdictWriter

TERMINAL = ("completed", "failed", "expired", "cancelled")
MAX_REQUESTS_PER_BATCH = 50_000


@dataclass
class BatchOutcome:
    submitted: int = 0  # submissions created this run
    collected: int = 0  # submissions collected this run
    open_submissions: int = 0  # still running at the provider when we returned
    open_examples: int = 0
    requests: int = 0
    usage: Usage = field(default_factory=Usage)
    refused: int = 0


def _open_submissions(db: Path, key: VerdictKey) -> list[dict]:
    with connect(db) as con:
        rows = con.execute(
            """
            select submission_id, batch_id, input_file_id, status, n_examples from refine_batches
            where fewshot_hash = ? and provider = ? and model = ? and status <> 'collected'
            order by created_at
            """,
            [key.fewshot_hash, key.provider, key.model],
        ).fetchall()
    return [dict(zip(("submission_id", "batch_id", "input_file_id", "status", "n_examples"), r)) for r in rows]


def _update(db: Path, submission_id: str, **values: object) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    with connect(db) as con:
        con.execute(f"update refine_batches set {sets} where submission_id = ?", [*values.values(), submission_id])


def _drop(db: Path, submission_id: str) -> None:
    with connect(db) as con:
        con.execute("begin transaction")
        con.execute("delete from refine_batch_items where submission_id = ?", [submission_id])
        con.execute("delete from refine_batches where submission_id = ?", [submission_id])
        con.execute("commit")


def submit(
    db: Path,
    key: VerdictKey,
    client: openai.OpenAI,
    system: str,
    questions: Sequence[Question],
    *,
    retry: RetryPolicy,
    logprobs: bool = False,
) -> list[str]:
    """Record, upload and create batches for ``questions``; return the submission ids."""
    submission_ids = []
    for start in range(0, len(questions), MAX_REQUESTS_PER_BATCH):
        chunk = questions[start : start + MAX_REQUESTS_PER_BATCH]
        submission_id = uuid.uuid4().hex
        lines, items = [], []
        for n, q in enumerate(chunk):
            custom_id = f"{submission_id[:12]}-{n}"
            lines.append(json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": request_body(system, q, key.model, logprobs=logprobs)}))
            items += [(submission_id, custom_id, eid, short) for short, eid, _ in q.items]
        with connect(db) as con:
            con.execute("begin transaction")
            con.execute(
                """insert into refine_batches (submission_id, fewshot_hash, provider, model, status, n_requests, n_examples)
                   values (?, ?, ?, ?, 'preparing', ?, ?)""",
                [submission_id, key.fewshot_hash, key.provider, key.model, len(chunk), len(items)],
            )
            con.execute(
                "insert into refine_batch_items select unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[])",
                [list(col) for col in zip(*items)],
            )
            con.execute("commit")
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        filename = f"beep-refine-{submission_id}.jsonl"
        input_file_id = create_once(
            lambda filename=filename, payload=payload: client.files.create(file=(filename, io.BytesIO(payload)), purpose="batch").id,
            lambda filename=filename, payload=payload: _find_file(client, filename, len(payload)),
            retry,
        )
        _update(db, submission_id, input_file_id=input_file_id)
        batch = create_once(
            lambda input_file_id=input_file_id, submission_id=submission_id: client.batches.create(
                input_file_id=input_file_id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"beep_submission_id": submission_id, "beep_fewshot_hash": key.fewshot_hash},
            ),
            lambda submission_id=submission_id: _find_batch(client, submission_id),
            retry,
        )
        _update(db, submission_id, batch_id=batch.id, status="submitted")
        submission_ids.append(submission_id)
    return submission_ids


def _find_file(client: openai.OpenAI, filename: str, size: int) -> str | None:
    """The id of the batch input file a failed upload may have stored (same name, same size)."""
    for info in client.files.list(purpose="batch"):
        if info.filename == filename and info.bytes == size:
            return info.id
    return None


def _find_batch(client: openai.OpenAI, submission_id: str, max_batches: int = 500):
    """The provider's batch carrying ``beep_submission_id`` (newest first), or None."""
    for n, batch in enumerate(client.batches.list(limit=100)):
        if n >= max_batches:
            break
        if (batch.metadata or {}).get("beep_submission_id") == submission_id:
            return batch
    return None


def _collect(db: Path, key: VerdictKey, client: openai.OpenAI, sub: dict, batch, writer: VerdictWriter,
             retry: RetryPolicy, outcome: BatchOutcome) -> None:
    with connect(db) as con:
        rows = con.execute(
            "select custom_id, example_id, short_id from refine_batch_items where submission_id = ?", [sub["submission_id"]]
        ).fetchall()
    by_custom: dict[str, list[tuple[str, str, str]]] = {}
    for custom_id, eid, short in rows:
        by_custom.setdefault(custom_id, []).append((short, eid, ""))
    for file_id, is_error in ((batch.output_file_id, False), (batch.error_file_id, True)):
        if not file_id:
            continue
        text = call_with_retry(lambda file_id=file_id: client.files.content(file_id), retry).text
        for line in text.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            q = Question(tuple(sorted(by_custom.get(item.get("custom_id"), []), key=lambda x: int(x[0]))))
            if not q.items:
                continue
            response = item.get("response") or {}
            body = response.get("body") or {}
            if is_error or response.get("status_code") != 200:
                error = (body.get("error") or item.get("error") or {}) if isinstance(body, dict) else {}
                if response.get("status_code") == 400 and len(q.items) == 1:
                    writer.add([Verdict(q.items[0][1], "refused", reason=f"{error.get('code') or 'bad_request'}: {error.get('message')}")])
                    outcome.refused += 1
                continue  # anything else: the examples become pending again
            outcome.requests += 1
            usage = Usage.from_api(body.get("usage"))
            outcome.usage = outcome.usage + usage
            choice = (body.get("choices") or [{}])[0]
            message = choice.get("message") or {}
            if message.get("refusal") or choice.get("finish_reason") == "content_filter":
                if len(q.items) == 1:
                    writer.add([Verdict(q.items[0][1], "refused", reason=f"refusal: {message.get('refusal') or 'content_filter'}",
                                        raw_answer=message.get("content"), request_id=body.get("id"))])
                    outcome.refused += 1
                continue  # several examples: they are asked again (and split) in the next submission
            found, _missing = parse_answer(message.get("content"), q)
            tokens = [(t.get("token", ""), float(t.get("logprob", 0.0))) for t in ((choice.get("logprobs") or {}).get("content") or [])]
            confidence = confidences(message.get("content"), tokens, q)
            k = len(q.items)
            writer.add(
                [
                    Verdict(eid, found[eid], confidence=confidence.get(eid), raw_answer=f'"{short}": "{found[eid]}"',
                            prompt_tokens=usage.prompt_tokens // k, completion_tokens=usage.completion_tokens // k,
                            cached_tokens=usage.cached_tokens // k, request_id=body.get("id"))
                    for short, eid, _ in q.items
                    if eid in found
                ]
            )
    writer.flush()
    _update(db, sub["submission_id"], status="collected", output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id, collected_at=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()))
    outcome.collected += 1


def resume_and_collect(
    db: Path,
    key: VerdictKey,
    client: openai.OpenAI,
    writer: VerdictWriter,
    *,
    wait: bool,
    poll_seconds: float,
    retry: RetryPolicy,
    outcome: BatchOutcome,
    on_poll: Callable[[list[dict]], None] | None = None,
) -> None:
    """Poll every open submission of ``key`` (until all are terminal when ``wait``) and collect the finished ones."""
    while True:
        open_subs = []
        for sub in _open_submissions(db, key):
            if not sub["batch_id"]:
                found = call_with_retry(lambda sub=sub: _find_batch(client, sub["submission_id"]), retry)
                if found is None:
                    _drop(db, sub["submission_id"])  # never reached the provider: its examples are pending again
                    continue
                _update(db, sub["submission_id"], batch_id=found.id, status="submitted")
                sub["batch_id"] = found.id
            batch = call_with_retry(lambda sub=sub: client.batches.retrieve(sub["batch_id"]), retry)
            if batch.status in TERMINAL:
                _collect(db, key, client, sub, batch, writer, retry, outcome)
            else:
                if batch.status != sub["status"]:
                    _update(db, sub["submission_id"], status=batch.status)
                sub["status"] = batch.status
                open_subs.append(sub)
        if on_poll is not None:
            on_poll(open_subs)
        if not open_subs or not wait:
            outcome.open_submissions = len(open_subs)
            outcome.open_examples = sum(s["n_examples"] for s in open_subs)
            return
        time.sleep(poll_seconds)
