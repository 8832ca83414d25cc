"""Run the fake server with uvicorn on 127.0.0.1, on a free port, in a background thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import openai
import uvicorn

from fake_openai.app import create_app
from fake_openai.state import FakeState

API_KEY = "sk-fake-test-key"


class FakeOpenAI:
    """``with FakeOpenAI() as server: ...`` — see the package docstring."""

    def __init__(self, state: FakeState | None = None) -> None:
        self.state = state or FakeState()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.state),
            log_level="critical",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """An SDK client pointed at this server, SDK retries off."""
        kwargs.setdefault("timeout", 5.0)
        return openai.OpenAI(api_key=API_KEY, base_url=self.base_url, max_retries=0, **kwargs)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for a subprocess that should talk to this server."""
        env = dict(os.environ if base is None else base)
        env["OPENAI_API_KEY"] = API_KEY
        env["OPENAI_BASE_URL"] = self.base_url
        return env
