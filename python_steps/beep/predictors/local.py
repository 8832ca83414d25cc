"""The local predictors: the responder ranker and the label classifier of `beep finetune --provider local`.

:class:`RankerPredictor` replays the workspace from the DuckDB file and ranks people;
:class:`LocalPredictor` wraps the scikit-learn label model. Both return :class:`ModelOutput` rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console

from beep.labels import NIL_LABEL, OTHER_LABEL, PROMPT_SUFFIX, EvalExample, EvaluationInputError, ExportInfo
from beep.predictors.base import ModelOutput, OnOutputs, PredictorOptions, progress_bar
from beep.predictors.models import ModelRef, verified_artifact

if TYPE_CHECKING:
    from beep.config import Paths
    from beep.predictors.base import Predictor


def make_predictor(ref: ModelRef, export: ExportInfo, options: PredictorOptions, paths: "Paths | None" = None) -> "Predictor":
    """The ranker (which needs the DuckDB file it was trained on) or the label classifier."""
    if is_ranker(ref):
        if paths is None:
            raise EvaluationInputError(f"model {ref.name} is a ranker: it needs the DuckDB file it was trained on")
        return RankerPredictor(ref, export, paths, top_k=options.top_k)
    return LocalPredictor(ref, export, top_k=options.top_k, batch_size=options.batch_size)


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


def is_ranker(ref: ModelRef) -> bool:
    """Whether a local model is the responder ranker (not the label classifier)."""
    from beep.ranker import RANKER_BASE_MODEL

    return ref.base_model == RANKER_BASE_MODEL


def ranker_output(example_id: str, people: Sequence[tuple[str, float, str | None]], nobody: float,
                  label_of: "dict[str, str]", other: str | None, top_k: int) -> ModelOutput:
    """The ranker's answer for one example in an export's labels: each label's probability is the sum over
    its people (``label_of``, else ``other``), ``nil`` the probability that nobody answers; the first
    ``top_k`` labels, best first. The people are every person the ranker ranked, best first, as a
    prediction row stores them: a stored ranking gives again what the ranker gave, in any export's labels
    (beep.evaluate.reuse relabels that way when the export's labels moved)."""
    mass: dict[str, float] = {}
    for user, p, _reason in people:
        label = label_of.get(user, other)
        if label is not None:
            mass[label] = mass.get(label, 0.0) + p
    mass[NIL_LABEL] = nobody
    labels = sorted(mass.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
    ordered = tuple((label, math.log(max(p, 1e-300))) for label, p in labels)
    best = ordered[0][0] if ordered else None
    return ModelOutput(example_id, ordered, best, best, people=tuple(people), nobody=nobody)


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
        self._other = OTHER_LABEL if OTHER_LABEL in export.label_texts else None

    def _output(self, ranked) -> ModelOutput:
        return ranker_output(ranked.example_id, tuple(zip(ranked.user_ids, ranked.probabilities, ranked.reasons)),
                             ranked.nobody_probability, self._label_of, self._other, self.top_k)

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
                separator = PROMPT_SUFFIX.strip()  # a prompt's messages are joined by blank lines, then the suffix
                texts = [t for t in (row.get("prompt") or "").split("\n\n") if t.strip() and t.strip() != separator]
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
