"""A small OpenAI-compatible HTTP server for tests: real SDK, real HTTP, 127.0.0.1 only, no network.

Interface (stable; other test modules rely on it):

- ``FakeOpenAI`` (server.py): ``with FakeOpenAI() as server:`` starts uvicorn on a free port of
  127.0.0.1 in a background thread. ``server.base_url`` ("http://127.0.0.1:PORT/v1"),
  ``server.state`` (a :class:`FakeState`), ``server.client(**kw)`` (an ``openai.OpenAI`` with
  ``max_retries=0``), ``server.env()`` (OPENAI_API_KEY / OPENAI_BASE_URL for subprocesses).
- Fixture ``fake_openai`` (fixtures.py; function-scoped, fresh state per test): a running
  ``FakeOpenAI``. Import it into a conftest with ``from fake_openai.fixtures import fake_openai``.
- ``FakeState`` (state.py), inspectable and steerable from tests:
  ``requests`` (``RecordedRequest``: method, path, at (time.monotonic at arrival), body, model,
  prompt_tokens, rate_tokens (prompt + max_tokens), status), ``files``, ``batches``, ``extras``
  (a dict other route modules keep their state in, e.g. fine-tuning jobs);
  ``chat_responder(body) -> str | ChatAnswer`` and ``completion_responder(body) -> str | ChatAnswer``
  (pluggable, deterministic); ``faults`` — ``state.inject(Fault(...), times=1, path=...)`` scripts
  429 + retry-after, 500/503, slow answers, dropped connections and truncated bodies for the next
  matching requests, before the endpoint does its work or, with ``Fault(after=True)``, after it
  (the job / file / batch exists, the client sees the failure); ``state.set_rate_limit(rpm=, tpm=, window_seconds=)`` enforces a sliding-window
  limit with ``x-ratelimit-*`` headers and 429s; ``latency_seconds`` delays every answer;
  ``batch_polls_to_complete`` (a batch completes on its Nth GET).
- Routes: POST /v1/chat/completions (``logprobs``/``top_logprobs``, ``max_tokens``), POST
  /v1/completions (``logprobs``), POST/GET /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content,
  POST/GET /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel. The app assembles its
  routes from ``app.ROUTE_MODULES`` (modules with ``routes(state) -> list[Route]``): add a module
  there to add endpoints (e.g. ``fine_tuning``), using ``state.gate(...)`` for faults/limits,
  ``await state.finish(record, response)`` to answer (it applies after-faults and stamps
  ``record.answered_at``) and ``state.files`` for uploaded files.
"""

from fake_openai.server import FakeOpenAI
from fake_openai.state import ChatAnswer, FakeState, Fault, RecordedRequest, StoredFile

__all__ = ["ChatAnswer", "FakeOpenAI", "FakeState", "Fault", "RecordedRequest", "StoredFile"]
