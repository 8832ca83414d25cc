"""Files: POST /v1/files (multipart: file, purpose), GET /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content."""

from __future__ import annotations

import time
from email.parser import BytesParser
from email.policy import HTTP

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fake_openai.state import FakeState, StoredFile


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """form field name -> (filename, bytes), without python-multipart."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def store_file(state: FakeState, filename: str, purpose: str, content: bytes) -> StoredFile:
    """Keep a file (also used by other route modules, e.g. batch output files)."""
    stored = StoredFile(state.new_id("file"), filename, purpose, content, int(time.time()))
    with state.lock:
        state.files[stored.id] = stored
    return stored


def _not_found(file_id: str) -> JSONResponse:
    return JSONResponse({"error": {"message": f"No such File object: {file_id}", "type": "invalid_request_error"}}, 404)


def routes(state: FakeState) -> list[Route]:
    async def create(request: Request) -> Response:
        body = await request.body()
        early, record, _ = await state.gate("POST", "/v1/files", None)
        if early is not None:
            return early
        fields = parse_multipart(request.headers.get("content-type", ""), body)
        if "file" not in fields or "purpose" not in fields:
            return JSONResponse({"error": {"message": "file and purpose are required", "type": "invalid_request_error"}}, 400)
        filename, content = fields["file"]
        stored = store_file(state, filename or "upload.jsonl", fields["purpose"][1].decode(), content)
        return await state.finish(record, JSONResponse(stored.as_json()))

    async def listing(request: Request) -> Response:
        early, _, _ = await state.gate("GET", "/v1/files", None)
        if early is not None:
            return early
        purpose = request.query_params.get("purpose")
        with state.lock:
            data = [f.as_json() for f in state.files.values() if purpose is None or f.purpose == purpose]
        return JSONResponse({"object": "list", "data": data, "has_more": False})

    async def retrieve(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        early, _, _ = await state.gate("GET", "/v1/files/{id}", None)
        if early is not None:
            return early
        stored = state.files.get(file_id)
        return JSONResponse(stored.as_json()) if stored else _not_found(file_id)

    async def content(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        early, _, _ = await state.gate("GET", "/v1/files/{id}/content", None)
        if early is not None:
            return early
        stored = state.files.get(file_id)
        return Response(stored.content, media_type="application/octet-stream") if stored else _not_found(file_id)

    return [
        Route("/v1/files", create, methods=["POST"]),
        Route("/v1/files", listing, methods=["GET"]),
        Route("/v1/files/{file_id}", retrieve, methods=["GET"]),
        Route("/v1/files/{file_id}/content", content, methods=["GET"]),
    ]
