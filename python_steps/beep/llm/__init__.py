"""Shared plumbing for every call Beep makes to an OpenAI-compatible API (refine, evaluate, ...).

One implementation, used by every step that pays per request:

- :mod:`beep.llm.client` — ``make_client(ClientSettings)``: an ``openai.OpenAI`` (any
  OpenAI-compatible server through ``base_url`` / ``OPENAI_BASE_URL``) or ``openai.AzureOpenAI``
  client, always with the SDK's own retries OFF (``max_retries=0``) so they never multiply with ours.
- :mod:`beep.llm.retry` — ``RetryPolicy`` and ``call_with_retry(fn, policy, on_wait=...)``: retries
  with the ``backoff`` library on 429 (honouring ``retry-after`` / ``retry-after-ms``), 5xx, timeouts
  and connection errors; anything else (400, 401, 404 ...) is raised at once.
- :mod:`beep.llm.pacer` — ``Pacer(rpm=..., tpm=..., window_seconds=60)``: a thread-safe
  sliding-window limiter; ``acquire(tokens)`` blocks until a request of that many tokens fits under
  the limits, ``observe_headers(headers)`` follows ``x-ratelimit-remaining-*`` / ``reset-*``,
  ``pause_for(seconds)`` holds every worker (used on a 429).
- :mod:`beep.llm.calls` — ``CallResult`` (value, headers, usage) and ``chat_call(client, **kwargs)``
  / ``completion_call(client, **kwargs)`` that go through ``with_raw_response`` to keep the headers;
  ``chat_prompt_tokens(messages, model)`` and ``completion_prompt_tokens(prompt, model)``: the token
  counts (beep.tokens) the pacer and dry-runs use, the same the test server reports.
- :mod:`beep.llm.pricing` — ``load_prices(csv)`` / ``PriceTable.cost(model, usage, batch=False)`` from
  ``seeds/model_prices.csv`` (USD per 1M tokens).
- :mod:`beep.llm.runner` — ``RequestRunner(client, pacer=..., retry=..., concurrency=...)`` and
  ``runner.run(jobs, on_result=..., on_error=...)``. A :class:`~beep.llm.runner.Job` knows its
  ``key``, its ``estimated_tokens`` (what the pacer reserves), its ``weight`` (items it carries, for
  progress) and ``send(client) -> CallResult``. ``on_result(job, result)`` runs in the caller's
  thread, one at a time, as results arrive (write them to DuckDB there, in a short transaction) and
  may return follow-up jobs (e.g. re-ask the ids an answer missed). A rich progress bar shows rate,
  spend and ETA. Returns ``RunStats`` (requests, usage, cost, failures).
"""
