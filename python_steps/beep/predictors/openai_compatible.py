"""The OpenAI-compatible predictor: a fine-tuned model asked for one token with its log-probabilities.

* chat-format exports: ``chat.completions`` with ``logprobs=True``, ``top_logprobs`` (≤ 20),
  ``max_tokens=1``, ``temperature=0``, the same system prompt the export trained with;
* completion-format exports (babbage-002 / davinci-002 style): legacy ``completions`` with
  ``logprobs`` (≤ 5), ``max_tokens=1``, ``temperature=0`` — the seed's call.

The messages / prompt of an example are taken from the export's own JSONL line when the file is
still there with its recorded sha256 (exactly what the model was validated on), else rebuilt from
the prompt and the export's system prompt. Answers decode with the export's label mapping
(whitespace ignored, several tokens for one label add up); an answer that is no label is stored
as an unknown output. Pacing, retries, concurrency, progress and cost are the shared
:mod:`beep.llm` runner's — the same implementation `beep refine` uses. Each answer is stored as it
arrives, and every round of answers is stored before the request slots it freed send anything new,
so a killed run resumes without asking for any stored example again and loses at most the answers
of the requests in flight (``--concurrency``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import openai

from beep.config import PROJECT_DIR
from beep.labels import EvalExample, EvaluationInputError, ExportInfo
from beep.predictors.base import ModelOutput, OnOutputs, PredictorOptions, decode_label, merge_logprobs
from beep.predictors.models import ModelRef
from beep.llm.calls import CallResult, chat_call, chat_prompt_tokens, completion_call, completion_prompt_tokens
from beep.llm.client import ClientSettings, MissingCredentials, make_client
from beep.llm.pacer import Pacer
from beep.llm.pricing import load_prices
from beep.llm.retry import RetryPolicy, call_with_retry
from beep.llm.runner import Job, RequestRunner, RunAborted

if TYPE_CHECKING:
    from beep.config import Paths

#: API caps on the number of alternatives returned per token.
MAX_TOP_LOGPROBS_CHAT = 20
MAX_LOGPROBS_COMPLETIONS = 5


def make_predictor(ref: ModelRef, export: ExportInfo, options: PredictorOptions,
                   paths: "Paths | None" = None) -> "OpenAIPredictor":
    """The predictor of a model served by an OpenAI-compatible API (the registry's ``openai`` / ``azure``)."""
    return OpenAIPredictor(ref, export, options)


class OpenAIPredictor:
    """Ranks an export's labels with a model served by an OpenAI-compatible API (or Azure)."""

    def __init__(self, ref: ModelRef, export: ExportInfo, options: PredictorOptions, *,
                 project_dir: Path | None = None) -> None:
        self.ref = ref
        self.export = export
        self.options = options
        self.provider = ref.provider
        self.known = set(export.label_texts)
        self.format = export.format
        if self.format not in ("chat", "completion"):
            raise EvaluationInputError(f"export {export.export_id} has format {export.format!r}: expected chat or completion")
        cap = MAX_TOP_LOGPROBS_CHAT if self.format == "chat" else MAX_LOGPROBS_COMPLETIONS
        self.top_n = max(1, min(int(options.top_k), cap))
        try:
            self.client = make_client(
                ClientSettings(
                    provider=ref.provider,
                    base_url=options.base_url,
                    timeout_seconds=options.timeout,
                    azure_endpoint=options.azure_endpoint,
                    api_version=options.api_version,
                )
            )
        except MissingCredentials as err:
            raise EvaluationInputError(str(err)) from err
        self.retry = RetryPolicy(max_tries=int(options.max_retries) + 1, cap_seconds=float(options.max_wait),
                                 base_seconds=min(1.0, float(options.max_wait)))
        self.system_prompt = export.settings.get("system_prompt") if isinstance(export.settings, dict) else None
        self._lines: dict[str, dict[int, dict]] = {}
        self._price = None
        root = project_dir or PROJECT_DIR
        prices_csv = root / "seeds" / "model_prices.csv"
        if prices_csv.exists():
            table = load_prices(prices_csv)
            self._price = table.find(ref.name) or (table.find(ref.base_model) if ref.base_model else None)

    # -- requests --------------------------------------------------------------------------------
    def _split_lines(self, split: str) -> dict[int, dict]:
        """The export's records of ``split`` by line number (read once)."""
        if split not in self._lines:
            self._lines[split] = self.export.split_records(split)
        return self._lines[split]

    def request_input(self, prompt: str, *, split: str | None = None, line: int | None = None) -> list[dict] | str:
        """The chat messages (or completion prompt) for one example, without the answer."""
        record = self._split_lines(split).get(line) if split and line else None
        if self.format == "chat":
            if record and isinstance(record.get("messages"), list):
                return [m for m in record["messages"] if m.get("role") != "assistant"]
            messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            return messages + [{"role": "user", "content": prompt}]
        if record and isinstance(record.get("prompt"), str):
            return record["prompt"]
        return prompt

    def _send(self, request: list[dict] | str):
        def send(client: openai.OpenAI) -> CallResult:
            if self.format == "chat":
                return chat_call(client, model=self.ref.name, messages=request, max_tokens=1, temperature=0,
                                 logprobs=True, top_logprobs=self.top_n)
            return completion_call(client, model=self.ref.name, prompt=request, max_tokens=1, temperature=0,
                                   logprobs=self.top_n)

        return send

    def _tokens(self, request: list[dict] | str) -> int:
        model = self.ref.base_model or self.ref.name
        n = chat_prompt_tokens(request, model) if isinstance(request, list) else completion_prompt_tokens(request, model)
        return n + 1

    # -- answers ---------------------------------------------------------------------------------
    def decode(self, example_id: str, result: CallResult) -> ModelOutput:
        """A model answer as ranked known labels, the decoded label and the raw text."""
        choice = result.value.choices[0]
        pairs: list[tuple[str | None, float]] = []
        if self.format == "chat":
            raw = choice.message.content if choice.message is not None else None
            content = (choice.logprobs.content or []) if choice.logprobs is not None else []
            if content:
                first = content[0]
                for alt in first.top_logprobs or []:
                    pairs.append((decode_label(alt.token, self.known), float(alt.logprob)))
                if not first.top_logprobs:
                    pairs.append((decode_label(first.token, self.known), float(first.logprob)))
        else:
            raw = choice.text
            logprobs = choice.logprobs
            tops = (logprobs.top_logprobs or []) if logprobs is not None else []
            if tops and tops[0]:
                for token, lp in tops[0].items():
                    pairs.append((decode_label(token, self.known), float(lp)))
        ranked = tuple(merge_logprobs(pairs))
        return ModelOutput(
            example_id=example_id,
            ranked=ranked,
            predicted_label=decode_label(raw, self.known),
            raw_output=raw,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
        )

    def _cost(self, usage) -> float:
        return self._price.cost(usage) if self._price is not None else 0.0

    # -- the two entry points --------------------------------------------------------------------
    @property
    def priced(self) -> bool:
        """Whether seeds/model_prices.csv knows this model (else the run's cost stays unknown)."""
        return self._price is not None

    def run(self, examples: Sequence[EvalExample], on_outputs: OnOutputs) -> None:
        """Ask for every example (paced, retried, concurrent), storing each answer as it arrives.

        An example the API rejects for good with a 400 (too long, content policy) is stored as an
        unknown output with the error as its raw output (counted, not dropped); one that failed on
        retryable errors until the policy gave up stays unpredicted, for the next run to retry.
        """
        budget = self.options.max_cost
        if budget is not None and self._price is None:
            raise EvaluationInputError(
                f"--max-cost ${budget:.4f} cannot be kept: seeds/model_prices.csv has no price for {self.ref.name} "
                "(add a row for the model or a prefix of its id), so what its answers cost is unknown")
        runner = RequestRunner(
            self.client,
            pacer=Pacer(rpm=self.options.rpm, tpm=self.options.tpm),
            retry=self.retry,
            concurrency=self.options.concurrency,
            cost_of=self._cost if self._price is not None else None,
            description=f"evaluating {self.ref.name}",
            unit="examples",
            budget=budget,
        )

        def jobs():
            for ex in examples:
                request = self.request_input(ex.prompt, split=ex.split, line=ex.line)
                yield Job(key=ex.example_id, estimated_tokens=self._tokens(request), send=self._send(request), payload=ex)

        # Answers are stored in small groups (at most flush_every answers or flush_seconds old), and
        # every group is stored before the slots its answers freed send anything new (on_settled):
        # a kill loses at most the answers of the requests in flight (at most --concurrency).
        buffer: list[ModelOutput] = []
        pending_cost = 0.0
        oldest = 0.0

        def flush() -> None:
            nonlocal pending_cost
            if buffer:
                on_outputs(list(buffer), pending_cost)
                buffer.clear()
                pending_cost = 0.0

        def keep(output: ModelOutput, cost: float) -> None:
            nonlocal pending_cost, oldest
            if not buffer:
                oldest = time.monotonic()
            buffer.append(output)
            pending_cost += cost
            if len(buffer) >= self.options.flush_every or time.monotonic() - oldest >= self.options.flush_seconds:
                flush()

        def on_result(job: Job, result: CallResult) -> None:
            keep(self.decode(job.key, result), self._cost(result.usage))

        def on_error(job: Job, exc: BaseException) -> None:
            if isinstance(exc, openai.BadRequestError):
                keep(ModelOutput(job.key, (), None, f"error: {type(exc).__name__}: {exc}"[:500]), 0.0)

        try:
            stats = runner.run(jobs(), on_result=on_result, on_error=on_error, total_items=len(examples),
                               on_settled=flush)
        except RunAborted as err:
            raise EvaluationInputError(str(err)) from err
        finally:
            flush()
        if stats.stopped_by_budget:
            raise EvaluationInputError(
                f"stopped at --max-cost ${budget:.4f} (${stats.cost:.4f} spent): {stats.unsent_items} example(s) not "
                "sent; the answers so far are stored: run it again with a larger --max-cost to ask only the rest")

    def predict(self, rows: Sequence[dict], example_ids: Sequence[str] | None = None) -> list[ModelOutput]:
        """Answers for a few rows right away (`beep predict`), with the same retries."""
        ids = list(example_ids) if example_ids is not None else [""] * len(rows)
        out = []
        for eid, row in zip(ids, rows):
            request = self.request_input(row.get("prompt") or "")
            try:
                result = call_with_retry(lambda request=request: self._send(request)(self.client), self.retry)
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as err:
                raise EvaluationInputError(
                    f"{type(err).__name__} from the API ({err}): check the key, the base URL and the model name"
                ) from err
            out.append(self.decode(eid, result))
        return out
