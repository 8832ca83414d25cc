"""Batches: POST /v1/batches, GET /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel.

A batch is ``validating`` when created, ``in_progress`` from its first GET, and ``completed`` on
GET number ``state.batch_polls_to_complete``: then every line of the input file is answered with the
chat responder (custom ids in ``state.batch_error_custom_ids`` go to the error file instead).
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fake_openai.answers import chat_completion, text_completion
from fake_openai.files import store_file
from fake_openai.state import FakeState


def _complete(state: FakeState, batch: dict[str, Any]) -> None:
    source = state.files[batch["input_file_id"]].content.decode()
    out_lines, err_lines = [], []
    for line in source.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        custom_id = item["custom_id"]
        if custom_id in state.batch_error_custom_ids:
            err_lines.append(
                {
                    "id": state.new_id("batch_req"),
                    "custom_id": custom_id,
                    "response": {"status_code": 400, "request_id": state.new_id("req"), "body": {"error": {"message": "injected batch error", "type": "invalid_request_error"}}},
                    "error": None,
                }
            )
            continue
        body = item["body"]
        answer = chat_completion(state, body) if item["url"].endswith("chat/completions") else text_completion(state, body)
        out_lines.append(
            {
                "id": state.new_id("batch_req"),
                "custom_id": custom_id,
                "response": {"status_code": 200, "request_id": state.new_id("req"), "body": answer},
                "error": None,
            }
        )
    now = int(time.time())
    if out_lines:
        out = store_file(state, f"{batch['id']}_output.jsonl", "batch_output", "".join(json.dumps(x) + "\n" for x in out_lines).encode())
        batch["output_file_id"] = out.id
    if err_lines:
        err = store_file(state, f"{batch['id']}_error.jsonl", "batch_output", "".join(json.dumps(x) + "\n" for x in err_lines).encode())
        batch["error_file_id"] = err.id
    batch.update(
        status="completed",
        finalizing_at=now,
        completed_at=now,
        request_counts={"total": len(out_lines) + len(err_lines), "completed": len(out_lines), "failed": len(err_lines)},
    )


def routes(state: FakeState) -> list[Route]:
    async def create(request: Request) -> Response:
        body = json.loads(await request.body())
        early, record, _ = await state.gate("POST", "/v1/batches", body)
        if early is not None:
            return early
        input_file_id = body.get("input_file_id")
        if input_file_id not in state.files:
            return JSONResponse({"error": {"message": f"No such File object: {input_file_id}", "type": "invalid_request_error"}}, 400)
        now = int(time.time())
        batch = {
            "id": state.new_id("batch"),
            "object": "batch",
            "endpoint": body.get("endpoint", "/v1/chat/completions"),
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": body.get("completion_window", "24h"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "completed_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        with state.lock:
            state.batches[batch["id"]] = batch
            state.batch_polls[batch["id"]] = 0
        return await state.finish(record, JSONResponse(batch))

    async def retrieve(request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        early, record, _ = await state.gate("GET", "/v1/batches/{id}", None)
        if early is not None:
            return early
        with state.lock:
            batch = state.batches.get(batch_id)
            if batch is None:
                return JSONResponse({"error": {"message": f"No such batch: {batch_id}", "type": "invalid_request_error"}}, 404)
            if batch["status"] in ("validating", "in_progress"):
                state.batch_polls[batch_id] += 1
                batch["status"] = "in_progress"
                batch["in_progress_at"] = batch["in_progress_at"] or int(time.time())
                if state.batch_polls[batch_id] >= state.batch_polls_to_complete:
                    _complete(state, batch)
            response = JSONResponse(batch)
        return await state.finish(record, response)

    async def listing(request: Request) -> Response:
        early, _, _ = await state.gate("GET", "/v1/batches", None)
        if early is not None:
            return early
        with state.lock:
            data = sorted(state.batches.values(), key=lambda b: b["id"], reverse=True)
        return JSONResponse({"object": "list", "data": data, "has_more": False})

    async def cancel(request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        early, _, _ = await state.gate("POST", "/v1/batches/{id}/cancel", None)
        if early is not None:
            return early
        with state.lock:
            batch = state.batches.get(batch_id)
            if batch is None:
                return JSONResponse({"error": {"message": f"No such batch: {batch_id}", "type": "invalid_request_error"}}, 404)
            if batch["status"] not in ("completed", "failed", "expired"):
                batch["status"] = "cancelled"
                batch["cancelled_at"] = int(time.time())
            return JSONResponse(batch)

    return [
        Route("/v1/batches", create, methods=["POST"]),
        Route("/v1/batches", listing, methods=["GET"]),
        Route("/v1/batches/{batch_id}", retrieve, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel, methods=["POST"]),
    ]
