"""POST /v1/chat/completions and POST /v1/completions."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fake_openai.answers import chat_completion, text_completion
from fake_openai.state import FakeState


async def _body(request: Request) -> dict | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def routes(state: FakeState) -> list[Route]:
    async def chat(request: Request) -> Response:
        body = await _body(request)
        if body is None or "messages" not in body:
            return JSONResponse({"error": {"message": "messages is required", "type": "invalid_request_error"}}, 400)
        early, record, headers = await state.gate("POST", "/v1/chat/completions", body, rate_limited=True)
        if early is not None:
            return early
        return await state.finish(record, JSONResponse(chat_completion(state, body), headers=headers))

    async def completions(request: Request) -> Response:
        body = await _body(request)
        if body is None or "prompt" not in body:
            return JSONResponse({"error": {"message": "prompt is required", "type": "invalid_request_error"}}, 400)
        early, record, headers = await state.gate("POST", "/v1/completions", body, rate_limited=True)
        if early is not None:
            return early
        return await state.finish(record, JSONResponse(text_completion(state, body), headers=headers))

    return [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        # AzureOpenAI(azure_endpoint=ROOT) calls ROOT/openai/deployments/<deployment>/...; recorded as the /v1 paths
        Route("/openai/deployments/{deployment}/chat/completions", chat, methods=["POST"]),
        Route("/openai/deployments/{deployment}/completions", completions, methods=["POST"]),
    ]
