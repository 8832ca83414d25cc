"""Predictors: a model's ranked labels (with log-probabilities) for a batch of examples.

The local one wraps the scikit-learn responder model of `beep finetune --provider local`; the
OpenAI-compatible one lives in :mod:`beep.evaluate.openai_predictor`. Both return
:class:`ModelOutput` rows that :mod:`beep.evaluate.api` stores as predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from beep.evaluate.dataset import EvalExample, EvaluationInputError, ExportInfo
from beep.evaluate.models import ModelRef, verified_artifact


@dataclass(frozen=True)
class ModelOutput:
    """What a model said about one example."""

    example_id: str
    ranked: tuple[tuple[str, float | None], ...]  # known labels, best first, with log-probabilities
    predicted_label: str | None  # the label the output decodes to; None = no known label
    raw_output: str | None  # what the model literally produced
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


#: Called with every batch of outputs as it arrives, and what that batch cost in USD.
OnOutputs = Callable[[list[ModelOutput], float], None]


class Predictor(Protocol):
    """Anything that ranks an export's labels for examples, reporting outputs as they arrive."""

    provider: str

    def run(self, examples: Sequence[EvalExample], on_outputs: OnOutputs) -> None: ...

    def predict(self, rows: Sequence[dict], example_ids: Sequence[str] | None = None) -> list[ModelOutput]: ...


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


class LocalPredictor:
    """The local responder model (its artifact verified by sha256 before loading)."""

    provider = "local"

    def __init__(self, ref: ModelRef, export: ExportInfo, *, top_k: int = 10, batch_size: int = 256) -> None:
        from beep.finetune.local_model import LocalResponderModel

        self.ref = ref
        self.export = export
        self.model = LocalResponderModel.load(verified_artifact(ref))
        self.top_k = max(1, min(top_k, len(self.model.labels) or 1))
        self.batch_size = max(1, batch_size)
        known = set(export.label_texts)
        foreign = [label for label in self.model.labels if label not in known]
        if foreign:
            raise EvaluationInputError(
                f"model {ref.name} knows labels {foreign[:5]} that export {export.export_id} does not map: "
                "evaluate it on the export it was trained on (--export) or retrain it"
            )

    def run(self, examples: Sequence[EvalExample], on_outputs: OnOutputs) -> None:
        """Predict in batches, handing each batch to ``on_outputs`` (which stores it)."""
        with progress_bar() as progress:
            task = progress.add_task(f"local model {self.ref.name}", total=len(examples), rate="")
            for start in range(0, len(examples), self.batch_size):
                batch = examples[start : start + self.batch_size]
                outputs = self.predict([ex.as_model_row() for ex in batch], [ex.example_id for ex in batch])
                on_outputs(outputs, 0.0)
                progress.advance(task, len(batch))

    def predict(self, rows: Sequence[dict], example_ids: Sequence[str] | None = None) -> list[ModelOutput]:
        """Ranked labels for model rows (prompt, channel_id, prior_participant_ids, mentioned_user_ids)."""
        tops = self.model.predict_top_k(list(rows), self.top_k)
        ids = list(example_ids) if example_ids is not None else [""] * len(tops)
        return [
            ModelOutput(
                example_id=eid,
                ranked=tuple((label, float(lp)) for label, lp in top),
                predicted_label=top[0][0] if top else None,
                raw_output=top[0][0] if top else None,
            )
            for eid, top in zip(ids, tops)
        ]


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
