"""The Starlette app, assembled from route modules that share one :class:`FakeState`."""

from __future__ import annotations

import importlib

from starlette.applications import Starlette
from starlette.routing import Route

from fake_openai.state import FakeState

#: Modules of this package with ``routes(state) -> list[Route]``. Add yours here (one line).
ROUTE_MODULES: tuple[str, ...] = (
    "fake_openai.chat",
    "fake_openai.files",
    "fake_openai.batches",
    "fake_openai.fine_tuning",
)


def create_app(state: FakeState) -> Starlette:
    routes: list[Route] = []
    for name in ROUTE_MODULES:
        routes.extend(importlib.import_module(name).routes(state))
    return Starlette(routes=routes)
