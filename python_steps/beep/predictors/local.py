"""Predictors: a model's ranked labels (with log-probabilities) for a batch of examples.

The local one wraps the scikit-learn responder model of `beep finetune --provider local`; the
OpenAI-compatible one lives in :mod:`beep.evaluate.openai_predictor`. Both return
:class:`ModelOutput` rows that :mod:`beep.evaluate.api` stores as predictions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from beep.evaluate.dataset import EvalExample, EvaluationInputError, ExportInfo
from beep.evaluate.models import ModelRef, verified_artifact

if TYPE_CHECKING:
    from beep.config import Paths


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


def is_ranker(ref: ModelRef) -> bool:
    """Whether a local model is the responder ranker (not the label classifier)."""
    from beep.finetune.local import RANKER_BASE_MODEL

    return ref.base_model == RANKER_BASE_MODEL


class RankerPredictor:
    """The responder ranker: replays the workspace from the DuckDB file and ranks people for each
    example right after its last context message; labels are read from the people (their export
    labels, ``other`` for the rest) plus ``nil`` with the nobody probability."""

    provider = "local"

    def __init__(self, ref: ModelRef, export: ExportInfo, paths: "Paths", *, top_k: int = 10) -> None:
        from beep.ranker.model import ResponderRanker

        self.ref = ref
        self.export = export
        self.paths = paths
        try:
            self.model = ResponderRanker.load(verified_artifact(ref))
        except ValueError as err:
            raise EvaluationInputError(str(err)) from err
        self.top_k = max(1, top_k)
        self._label_of = export.label_of_user
        self._other = "other" if "other" in export.label_texts else None

    def _output(self, ranked) -> ModelOutput:
        from beep.evaluate.metrics import NIL_LABEL

        mass: dict[str, float] = {}
        for user, p in zip(ranked.user_ids, ranked.probabilities):
            label = self._label_of.get(user, self._other)
            if label is not None:
                mass[label] = mass.get(label, 0.0) + p
        mass[NIL_LABEL] = ranked.nobody_probability
        labels = sorted(mass.items(), key=lambda kv: (-kv[1], kv[0]))[: self.top_k]
        ordered = tuple((label, math.log(max(p, 1e-300))) for label, p in labels)
        people = tuple(zip(ranked.user_ids, ranked.probabilities, ranked.reasons))
        best = ordered[0][0] if ordered else None
        return ModelOutput(ranked.example_id, ordered, best, best, people=people, nobody=ranked.nobody_probability)

    def run(self, examples: Sequence[EvalExample], on_outputs: OnOutputs) -> None:
        """Replay once and hand each batch of outputs over as it is ranked (stored right away: memory
        does not grow with the split). The replay reads through a connection of this process, so the
        batches' writes (other connections of the same process) go in between its reads."""
        from beep.db import connect
        from beep.ranker.model import every
        from beep.ranker.stream import load_queries

        console = Console(stderr=True)
        started = time.monotonic()
        piped = every(10.0, lambda done, total: console.print(
            f"  {time.monotonic() - started:4.0f} s: ranked {done:,}/{total:,} examples", highlight=False))
        with progress_bar() as progress, connect(self.paths.duckdb) as con:
            task = progress.add_task(f"ranker {self.ref.name}", total=len(examples), rate="")

            def show(done: int, total: int) -> None:
                progress.update(task, completed=done)
                if not console.is_terminal:  # the bar is hidden in a pipe: a line every 10 s instead
                    piped(done, total)

            found = load_queries(con, (ex.example_id for ex in examples))
            missing = [ex.example_id for ex in examples if ex.example_id not in found]
            if missing:
                raise EvaluationInputError(
                    f"{len(missing)} example(s) to evaluate are not in the built dataset (e.g. {missing[0]}): "
                    "rebuild it as it was, or export and train again"
                )
            self.model.score(con, list(found.values()), lambda batch: on_outputs([self._output(r) for r in batch], 0.0),
                             progress=show, batch=5000)

    def predict(self, rows: Sequence[dict], example_ids: Sequence[str] | None = None) -> list[ModelOutput]:
        """Rank people for conversations given as rows (``messages``: [(author, text, mentions, at)],
        oldest first; or just a ``prompt``) against the workspace as of the end of the data."""
        from beep.ranker.features import candidates

        out = []
        ids = list(example_ids) if example_ids is not None else [""] * len(rows)
        state = self.model.state
        assert state is not None
        for eid, row in zip(ids, rows):
            messages = row.get("messages")
            if not messages:
                texts = [t for t in (row.get("prompt") or "").split("\n\n") if t.strip() and t.strip() != "###"]
                messages = [(None, t, (), None) for t in texts]
                if messages:
                    messages[-1] = (None, messages[-1][1], tuple(row.get("mentioned_user_ids") or ()), None)
            now = state.now
            ats = [float(m[3]) if m[3] is not None else now for m in messages]
            conv = self.model.conversation(row.get("channel_id"), [m[0] for m in messages], [m[1] for m in messages],
                                           [m[2] for m in messages], ats)
            cands = candidates(state, conv, ats[-1] if ats else now, channel_name=row.get("channel_name"))
            out.append(self._output(self.model.rank(eid, cands)))
        return out
