"""Responses that misbehave on purpose: a connection cut mid-body, a JSON body cut in half."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class DroppedResponse(Response):
    """Announces 1000 bytes, sends a few, then aborts: the client sees the connection drop."""

    def __init__(self) -> None:
        super().__init__(content=b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-drop', "more_body": True})
        raise ConnectionAbortedError("fake_openai: injected dropped connection")


class TruncatedJSONResponse(Response):
    """A complete HTTP 200 whose JSON body stops half-way."""

    media_type = "application/json"

    def __init__(self) -> None:
        super().__init__(content=b'{"id": "chatcmpl-truncated", "object": "chat.completion", "choices": [{"ind', status_code=200)
