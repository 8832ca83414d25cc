"""pytest fixtures for the fake OpenAI server. In a conftest: ``from fake_openai.fixtures import fake_openai``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_openai.server import FakeOpenAI


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A running fake server with fresh state; OPENAI_API_KEY / OPENAI_BASE_URL point at it."""
    with FakeOpenAI() as server:
        for key, value in server.env({}).items():
            monkeypatch.setenv(key, value)
        yield server
