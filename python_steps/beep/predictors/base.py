"""What every predictor is: :class:`Predictor`, its outputs (:class:`ModelOutput`), its options, and the
helpers the implementations share (the progress bar, label decoding, a label ranking read as people).

A predictor ranks an export's labels (and, for the ranker, people) for a batch of examples. The
implementations live beside this module, one per provider kind, and :func:`beep.predictors.make_predictor`
picks one through the provider registry (:mod:`beep.providers`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from beep.labels import OTHER_USER_ID, EvalExample, ExportInfo


@dataclass(frozen=True)
class ModelOutput:
    """What a model said about one example."""

    example_id: str
    ranked: tuple[tuple[str, float | None], ...]  # known labels, best first, with log-probabilities
    predicted_label: str | None  # the label the output decodes to; None = no known label
    raw_output: str | None  # what the model literally produced
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: People ranked (user id, probability, reason), best first — a model that ranks people (the ranker)
    #: says so itself; for a label model they are read from its labels when stored.
    people: tuple[tuple[str, float | None, str | None], ...] = ()
    nobody: float | None = None  # P(nobody should be alerted), when the model gives one


#: Called with every batch of outputs as it arrives, and what that batch cost in USD.
OnOutputs = Callable[[list[ModelOutput], float], None]


class Predictor(Protocol):
    """Anything that ranks an export's labels for examples, reporting outputs as they arrive."""

    provider: str

    def run(self, examples: Sequence[EvalExample], on_outputs: OnOutputs) -> None: ...

    def predict(self, rows: Sequence[dict], example_ids: Sequence[str] | None = None) -> list[ModelOutput]: ...


@dataclass(frozen=True)
class PredictorOptions:
    """How to ask a model (what a predictor reads; evaluation's options extend these)."""

    provider: str | None = None  # override the job's provider (e.g. azure for an openai-named model)
    top_k: int = 10  # labels ranked per example (the OpenAI path is capped by the API: 5 / 20)
    batch_size: int = 256  # local model: examples per batch
    base_url: str | None = None  # OpenAI-compatible server (else OPENAI_BASE_URL / the SDK default)
    concurrency: int = 4
    rpm: int | None = None
    tpm: int | None = None
    timeout: float = 30.0
    max_retries: int = 6
    max_wait: float = 60.0  # longest single wait between retries, seconds
    azure_endpoint: str | None = None
    api_version: str | None = None
    flush_every: int = 20  # OpenAI path: store answers at least every this many ...
    flush_seconds: float = 1.0  # ... or this many seconds; and always before a freed slot sends a new request
    #: OpenAI path: USD this run may spend; no request is sent unless what it spent, plus the most the
    #: requests in flight and this one could cost, stays within it (None: no budget)
    max_cost: float | None = None


def progress_bar(transient: bool = False) -> Progress:
    """The progress bar the evaluation steps show (on stderr; hidden when that is no terminal)."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
        console=console,
        disable=not console.is_terminal,
    )


def decode_label(text: str | None, known: Iterable[str]) -> str | None:
    """The export label an output text stands for (whitespace ignored), None when none."""
    if text is None:
        return None
    cleaned = text.strip()
    return cleaned if cleaned in set(known) else None


def merge_logprobs(pairs: Iterable[tuple[str | None, float]]) -> list[tuple[str, float]]:
    """Known labels with their log-probabilities, best first; several tokens decoding to the same
    label (``" 3"`` and ``"3"``) add up their probabilities. ``None`` labels are ignored."""
    total: dict[str, float] = {}
    for label, logprob in pairs:
        if label is None:
            continue
        p = math.exp(logprob)
        total[label] = total.get(label, 0.0) + p
    return sorted(((label, math.log(p) if p > 0 else -math.inf) for label, p in total.items()), key=lambda x: -x[1])


def people_of_labels(export: ExportInfo, ranked: Sequence[tuple[str, float | None]]) -> list[tuple[str, float | None, str | None]]:
    """A label model's ranking read as people: each label's user (``nil`` and ``other`` name nobody)."""
    user_of = {lab.label: lab.user_id for lab in export.labels if lab.user_id and lab.user_id != OTHER_USER_ID}
    out = []
    for label, logprob in ranked:
        user = user_of.get(label)
        if user:
            out.append((user, None if logprob is None else math.exp(logprob), None))
    return out
