"""The `--provider hf` predictor: the LoRA adapter of `beep finetune --provider hf`, run in-process.

Each example's prompt is built exactly as in training (the export's own JSONL line when its file is
intact, else the prompt with the export's system prompt), and every label's log-probability is read
from the next-token distribution after it (:mod:`beep.finetune.hf.scoring`): the export's labels and
``nil``, ranked, the top k kept. Nothing is sampled, so there is no unreadable output; the best label
is the prediction. Outputs are stored batch by batch, so a killed evaluation resumes where it was.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from beep.labels import EvalExample, EvaluationInputError, ExportInfo
from beep.predictors.base import ModelOutput, OnOutputs, PredictorOptions, progress_bar
from beep.predictors.models import ModelRef
from beep.progress import HEARTBEAT_SECONDS


if TYPE_CHECKING:
    from beep.config import Paths


def make_predictor(ref: ModelRef, export: ExportInfo, options: PredictorOptions,
                   paths: "Paths | None" = None) -> "HFPredictor":
    """The LoRA adapter's predictor (at most 16 examples a batch: a forward pass holds them all)."""
    return HFPredictor(ref, export, top_k=options.top_k, batch_size=min(options.batch_size, 16))


class HFPredictor:
    """Ranks an export's labels with a LoRA adapter trained by `beep finetune --provider hf`."""

    provider = "hf"
    priced = True  # it runs here: every example costs 0 USD

    def __init__(self, ref: ModelRef, export: ExportInfo, *, top_k: int = 10, batch_size: int = 16,
                 device: str = "auto") -> None:
        from beep.finetune.hf.artifacts import ArtifactError, load_adapter
        from beep.finetune.hf.loading import BaseModelError, MissingExtra

        if not ref.artifact_path:
            raise EvaluationInputError(f"fine-tune job {ref.job_id} records no adapter: retrain it with "
                                       "`beep finetune --provider hf`")
        try:
            self.loaded = load_adapter(Path(ref.artifact_path), ref.artifact_sha256, device=device)
        except (ArtifactError, BaseModelError, MissingExtra) as err:
            raise EvaluationInputError(str(err)) from err
        self.ref = ref
        self.export = export
        manifest = self.loaded.manifest
        self.forms = manifest.forms
        unknown = [label for label in export.label_texts if label not in self.forms.ids]
        if unknown:
            raise EvaluationInputError(
                f"export {export.export_id} has labels {unknown[:5]} that {ref.name} (trained on {manifest.export_id}) "
                "has no answer token for: evaluate it on the export it was trained on, or fine-tune on this one"
            )
        self.top_k = max(1, min(top_k, len(self.forms.ids)))
        self.batch_size = max(1, batch_size)
        self.format = manifest.format
        self.system_prompt = manifest.system_prompt
        self._lines: dict[str, dict[int, dict]] = {}

    def _split_lines(self, split: str) -> dict[int, dict]:
        """The export's records of ``split`` by line number (read once)."""
        if split not in self._lines:
            self._lines[split] = self.export.split_records(split)
        return self._lines[split]

    def _record(self, prompt: str, split: str | None = None, line: int | None = None) -> dict[str, Any]:
        from beep.finetune.hf.data import record_for

        record = self._split_lines(split).get(line) if split and line else None
        return record if record is not None else record_for(prompt, self.format, self.system_prompt)

    def _outputs(self, ids: Sequence[str], records: Sequence[dict[str, Any]]) -> list[ModelOutput]:
        from beep.finetune.hf.data import encode_prompt
        from beep.finetune.hf.scoring import score_batches

        tokenizer = self.loaded.tokenizer
        prompts = [encode_prompt(tokenizer, r, self.loaded.manifest.max_length) for r in records]
        ranked = score_batches(self.loaded.model, prompts, self.forms, pad_id=int(tokenizer.pad_token_id),
                               device=self.loaded.device, top_k=self.top_k, batch_size=self.batch_size)
        return [
            ModelOutput(example_id=eid, ranked=tuple(top), predicted_label=top[0][0] if top else None,
                        raw_output=(self.forms.prefix + top[0][0]) if top else None, prompt_tokens=len(p),
                        completion_tokens=0)
            for eid, top, p in zip(ids, ranked, prompts)
        ]

    def run(self, examples: Sequence[EvalExample], on_outputs: OnOutputs) -> None:
        """Score in batches, handing each to ``on_outputs`` (stored at once); a line every 10 s in a pipe."""
        console = Console(stderr=True)
        started = last = time.monotonic()
        with progress_bar() as progress:
            task = progress.add_task(f"{self.ref.name} ({self.loaded.device})", total=len(examples), rate="")
            for start in range(0, len(examples), self.batch_size):
                batch = examples[start: start + self.batch_size]
                records = [self._record(ex.prompt, ex.split, ex.line) for ex in batch]
                on_outputs(self._outputs([ex.example_id for ex in batch], records), 0.0)
                progress.advance(task, len(batch))
                done = start + len(batch)
                if not console.is_terminal and (time.monotonic() - last >= HEARTBEAT_SECONDS or done == len(examples)):
                    last = time.monotonic()
                    console.print(f"  {last - started:5.0f} s: scored {done:,}/{len(examples):,} examples with "
                                  f"{self.ref.name}", markup=False, highlight=False)

    def predict(self, rows: Sequence[dict], example_ids: Sequence[str] | None = None) -> list[ModelOutput]:
        """Ranked labels for conversations given as rows (their ``prompt``), e.g. `beep predict`."""
        ids = list(example_ids) if example_ids is not None else [""] * len(rows)
        return self._outputs(ids, [self._record(row.get("prompt") or "") for row in rows])
