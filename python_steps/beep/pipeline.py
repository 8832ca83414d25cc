"""`beep run`: the whole chain — ingest → dbt build → refine → export → fine-tune → evaluate → report.

Each step is the same function its own command calls. Steps are idempotent: the dataset is rebuilt
only when the export, the dbt project or its vars changed; refine decides only undecided examples;
export, fine-tune and evaluate return the existing result for the same inputs and settings. So a
rerun does no step twice, and a run that failed resumes from the step that failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console

from beep.build import (DatasetSummary, build, build_fingerprint, build_is_current, incremental_line, resolve_export,
                        summarize, warned_test_lines)
from beep.config import DEFAULT_KEEP_EXPORTS, SAMPLE_EXPORT, Paths
from beep.db import DatabaseBusy
from beep.ingest import IngestResult, ingest, last_export
from beep.interrupts import interruption
from beep.prune import PrunePlan, prune

if TYPE_CHECKING:  # the steps' modules are imported where they run: a step's worker imports its own only
    from beep.evaluate.api import EvalResult
    from beep.export.api import ExportResult
    from beep.finetune.api import FinetuneResult
    from beep.refine.api import RefineSummary

T = TypeVar("T")

class StepFailed(RuntimeError):
    """A step of `beep run` failed; the message names the step and how to resume."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(
            f"step '{step}' failed: {error}\n"
            f"Fix the cause and run the same `beep run` again: finished steps are skipped, and "
            f"'{step}' resumes where it stopped."
        )
        self.step = step


@dataclass
class RunOptions:
    """What `beep run` does; defaults run everything offline with the local provider."""

    export: Path | None = None  # a .zip or folder; default: the DB's last export (the sample on a fresh DB)
    provider: str = "local"  # local | openai, for refine, fine-tune and evaluate
    refine_model: str | None = None  # the few-shot classifier's model (openai provider)
    base_model: str | None = None  # the model to fine-tune (openai provider)
    export_format: str = "chat"
    run_tests: bool = True  # dbt data and unit tests as part of the build
    rebuild: bool = False  # rebuild the dataset even when nothing changed
    dbt_vars: dict[str, Any] = field(default_factory=dict)
    #: A budget in USD for the paid steps (openai provider): refine must fit in it before it sends
    #: anything, fine-tuning in what refine left of it before it uploads anything.
    max_cost: float | None = None
    poll_interval: float = 15.0  # seconds between polls of a remote fine-tuning job
    #: Run the heavy steps (build, refine, export, finetune, evaluate, report) each in a process of
    #: its own, so one run's peak memory is its largest step's, not the sum of what every step kept
    #: (measured on ubuntu-irc: docs/benchmarks.md, "Responder model on real data").
    isolate_steps: bool = True
    #: Train a new local ranker even when the model of an earlier export could be kept (beep.finetune.keep).
    retrain: bool = False
    #: Compute the time split's boundary anew instead of keeping the previous export's (beep.export.api._time_boundary).
    resplit: bool = False
    #: After the run, keep this many of the newest exports and remove what older ones left (beep.prune); 0: keep all.
    keep: int = DEFAULT_KEEP_EXPORTS


@dataclass
class RunResult:
    """The ids and numbers each step produced, and how long it took."""

    ingest: IngestResult | None = None
    dataset: DatasetSummary | None = None
    refine: RefineSummary | None = None
    export: ExportResult | None = None
    finetune: FinetuneResult | None = None
    evaluation: EvalResult | None = None
    report_path: Path | None = None
    pruned: PrunePlan | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def default_run_source(paths: Paths) -> Path:
    """What `beep run` without an export ingests: the export this DuckDB file was last ingested or
    built from (its original zip or folder while it exists), the bundled sample only on a fresh DB;
    :class:`BuildRefused` naming the export when the last ingest was refused or the export is gone."""
    last = last_export(paths)
    if last is None:
        return SAMPLE_EXPORT
    if last.kind != "refused" and last.source_path.exists():
        return last.source_path
    return resolve_export(paths, None)  # the prepared folder while it exists; else it refuses, naming it


def _console_for_child(width: int | None) -> Console:
    return Console(stderr=True, width=width) if width else Console(stderr=True)


def _child(step_fn: str, width: int | None, kwargs: dict[str, Any]) -> Any:
    """Run one step in a worker (:mod:`beep.worker`): ``step_fn`` names a function of this module."""
    return globals()[step_fn](console=_console_for_child(width), **kwargs)


def _build_in_child(*, console: Console, paths: Paths, export_path: Path, run_tests: bool,
                    dbt_vars: dict[str, Any], full_refresh: bool) -> DatasetSummary:
    return build(paths, export_path, run_tests=run_tests, quiet=True, dbt_vars=dbt_vars, full_refresh=full_refresh)


def _refine_in_child(*, console: Console, paths: Paths, **kwargs: Any) -> RefineSummary:
    from beep.refine.api import refine

    return refine(paths, console=console, **kwargs)


def _export_in_child(*, console: Console, paths: Paths, **kwargs: Any) -> ExportResult:
    from beep.export.api import export

    return export(paths, **kwargs)


def _finetune_in_child(*, console: Console, paths: Paths, **kwargs: Any) -> FinetuneResult:
    from beep.finetune.api import finetune

    return finetune(paths, console=console, **kwargs)


def _evaluate_in_child(*, console: Console, paths: Paths, **kwargs: Any) -> EvalResult:
    from beep.evaluate.api import evaluate

    return evaluate(paths, console=console, **kwargs)


def _report_in_child(*, console: Console, paths: Paths, eval_run_id: str) -> Path:
    from beep.evaluate.report import write_report

    return write_report(paths, eval_run_id)


def _isolated(options: RunOptions, console: Console, step_fn: str, **kwargs: Any) -> Any:
    """``step_fn(**kwargs)`` in a worker process of its own when options.isolate_steps, else here.
    The worker dies with this process, whatever kills it, and is stopped (its run recorded
    ``interrupted``) when this process is interrupted (:mod:`beep.worker`)."""
    if not options.isolate_steps:
        return globals()[step_fn](console=console, **kwargs)
    from beep.worker import run_in_worker

    width = None if console.is_terminal else console.width
    return run_in_worker("beep.pipeline:_child", {"step_fn": step_fn, "width": width, "kwargs": kwargs})


class _Steps:
    """One `beep run`: each method runs one step (reported as the step's on failure), fills ``result``
    and says what happened; run_pipeline calls them in order."""

    def __init__(self, paths: Paths, options: RunOptions, console: Console) -> None:
        self.paths = paths
        self.options = options
        self.console = console
        self.result = RunResult()

    def _step(self, name: str, fn: Callable[[], T]) -> T:
        console = self.console
        console.rule(f"[bold]{name}") if console.is_terminal else console.print(f"── {name} ──", style="bold")
        started = time.monotonic()
        try:
            value = fn()
        except BaseException as err:
            stopped = interruption(err)
            if stopped is not None:
                console.print(f"interrupted during '{name}' ({stopped or 'Ctrl-C'}): what it finished is kept and its "
                              f"run is recorded as interrupted; the same `beep run` resumes from '{name}'",
                              highlight=False)
                if stopped is err:
                    raise
                raise stopped from err
            if isinstance(err, Exception):  # every failure is reported as the step's, with how to resume
                raise StepFailed(name, err) from err
            raise
        self.result.seconds[name] = time.monotonic() - started
        return value

    def _in_child(self, step_fn: str, **kwargs: Any) -> Any:
        return _isolated(self.options, self.console, step_fn, paths=self.paths, **kwargs)

    def ingest(self) -> IngestResult:
        paths, options, console = self.paths, self.options, self.console

        def ingest_step() -> IngestResult:
            source = Path(options.export) if options.export else default_run_source(paths)
            if not options.export:
                console.print(f"no export given: {source}"
                              + (" (the bundled sample: this DuckDB file has seen no other export)" if source == SAMPLE_EXPORT
                                 else " (the export this DuckDB file was last built from)"))
            return ingest(paths, source)

        ingested = self.result.ingest = self._step("ingest", ingest_step)
        console.print(f"{ingested.n_messages:,} messages in {ingested.n_day_files:,} day files; "
                      f"{len(ingested.issues)} handled problems")
        if ingested.n_day_files_unchanged:
            console.print(f"incremental ingest: {ingested.describe_reuse()}")
        return ingested

    def build(self, export_path: Path) -> None:
        paths, options, console = self.paths, self.options, self.console

        def build_step() -> DatasetSummary:
            fingerprint = build_fingerprint(paths, export_path, options.dbt_vars, options.run_tests)
            if not options.rebuild and build_is_current(paths, fingerprint):
                self.result.skipped.append("build")
                console.print("dataset unchanged since the last build: skipped (--rebuild forces it)")
                return summarize(paths, export_path)
            return self._in_child("_build_in_child", export_path=export_path, run_tests=options.run_tests,
                                  dbt_vars=options.dbt_vars, full_refresh=options.rebuild)

        dataset = self.result.dataset = self._step("build", build_step)
        folded = (f" (the {dataset.n_folded_responders:,} least frequent responders share the label `other`: var "
                  "max_labels)" if dataset.n_folded_responders else "")
        console.print(f"{dataset.n_examples:,} training examples, {dataset.n_labels} labels{folded}")
        left_out = [(reason or "?", n) for fate, reason, n in dataset.fates if fate == "excluded" and n]
        if left_out:
            console.print(f"left out of the dataset: {sum(n for _, n in left_out):,} of {dataset.n_raw_messages:,} raw "
                          "messages (" + ", ".join(f"{reason} {n:,}" for reason, n in left_out)
                          + "; table message_fate_counts, `beep build` prints every fate)")
        for warned in warned_test_lines(dataset.warned_tests):
            console.print(f"[yellow]warning:[/yellow] {warned}", highlight=False)
        incremental = incremental_line(dataset)
        if incremental:
            console.print(incremental, highlight=False, markup=False)

    def refine(self) -> RefineSummary:
        options, console = self.options, self.console

        def refine_step() -> RefineSummary:
            summary = self._in_child("_refine_in_child", provider=options.provider,
                                     model=options.refine_model, max_cost=options.max_cost)
            if summary.n_failed or summary.n_unsent:
                # fine-tuning on a half-refined dataset would spend money on the wrong labels
                raise RuntimeError(f"{summary.n_failed + summary.n_unsent} examples were left undecided "
                                   f"({'; '.join(summary.failures[:3])})")
            return summary

        refined = self.result.refine = self._step("refine", refine_step)
        console.print(f"strong {refined.n_strong:,} · weak {refined.n_weak:,} · "
                      f"refused {refined.n_refused:,} · decided now {refined.n_decided_now:,}")
        asked = (f"asked only the {refined.n_decided_now:,} example{'s' if refined.n_decided_now != 1 else ''} without a "
                 "verdict" if refined.n_decided_now else "no example was without a verdict: nothing asked")
        console.print(f"incremental refine: {asked}; the {refined.n_already_decided:,} decided before kept their verdicts")
        return refined

    def export(self) -> ExportResult:
        export_kwargs: dict[str, Any] = {"format": self.options.export_format, "resplit": self.options.resplit}
        if self.options.base_model:
            export_kwargs["base_model"] = self.options.base_model
        exported = self.result.export = self._step("export", lambda: self._in_child("_export_in_child", **export_kwargs))
        self.console.print(f"export {exported.export_id}: {exported.n_train:,} train / {exported.n_valid:,} valid")
        total = exported.n_train + exported.n_valid
        counted = exported.prompts_counted
        if exported.reused:
            said = "incremental export: unchanged (the same examples and settings): its files kept, nothing rendered or rewritten"
        elif exported.train_kept_from:
            moved = exported.train_relabelled
            relabelled = (f" with the labels of {moved:,} example{'s' if moved != 1 else ''} moved" if moved else "")
            said = (f"incremental export: the train split is that of export {exported.train_kept_from}: its file and "
                    f"checks copied{relabelled}; only the {exported.n_valid:,} validation examples rendered"
                    + (f", the tokens of {counted:,} prompt{'s' if counted != 1 else ''} counted" if counted else ""))
        elif counted is not None and counted < total:
            said = (f"incremental export: rewritten (new or changed examples or settings give a new export id; its files "
                    f"stream out); the tokens of {counted:,} of its {total:,} prompts counted, the others' known from "
                    "earlier exports")
        else:
            said = "export: rewritten (new or changed examples or settings give a new export id; its files stream out)"
        self.console.print(said)
        if exported.split_note:
            self.console.print(exported.split_note, highlight=False, soft_wrap=True)
        return exported

    def finetune(self, export_id: str, refine_cost: float | None) -> FinetuneResult:
        from beep.finetune.api import PollSettings

        options = self.options
        left = None if options.max_cost is None else max(0.0, options.max_cost - (refine_cost or 0.0))
        tuned = self.result.finetune = self._step("finetune", lambda: self._in_child(
            "_finetune_in_child", export_id=export_id, provider=options.provider, base_model=options.base_model,
            max_cost_usd=left, poll=PollSettings(interval_seconds=options.poll_interval), retrain=options.retrain))
        self.console.print(f"model {tuned.fine_tuned_model} ({tuned.status})")
        self.console.print(finetune_line(tuned, export_id), highlight=False, soft_wrap=True)
        return tuned

    def evaluate(self, model: str, export_id: str, spent: float = 0.0) -> EvalResult:
        """Evaluate; with --max-cost, what refine and fine-tuning left of it is the evaluation's budget."""
        options = self.options
        extra: dict[str, Any] = {}
        if options.max_cost is not None:
            extra["max_cost"] = max(0.0, options.max_cost - spent)
        evaluation = self.result.evaluation = self._step("evaluate", lambda: self._in_child(
            "_evaluate_in_child", model=model, export_id=export_id, **extra))
        self.console.print(evaluate_line(evaluation), highlight=False, soft_wrap=True)
        return evaluation

    def report(self, eval_run_id: str) -> None:
        self.result.report_path = self._step("report", lambda: self._in_child("_report_in_child",
                                                                              eval_run_id=eval_run_id))

    def prune(self) -> None:
        """Remove what exports older than the newest ``keep`` left behind (beep.prune)."""
        if not self.options.keep:
            return

        def prune_step() -> PrunePlan | None:
            try:
                return prune(self.paths, self.options.keep)
            except DatabaseBusy as err:  # the run's work is done: pruning can wait for the next run
                self.console.print(f"[yellow]warning:[/] nothing pruned this time ({err}); the next run, or "
                                   "`beep prune`, does it", highlight=False)
                return None

        pruned = self.result.pruned = self._step("prune", prune_step)
        if pruned is not None:
            self.console.print(pruned.summary(), highlight=False, markup=False, soft_wrap=True)


def finetune_line(tuned: FinetuneResult, export_id: str) -> str:
    """What the finetune step of `beep run` reused, or why it trained."""
    if tuned.reused:
        return f"incremental finetune: reused job {tuned.job_id} of export {export_id} (made before)"
    if tuned.kept_from:
        return f"incremental finetune: {tuned.decision} (job {tuned.job_id} records it; nothing trained)"
    why = tuned.decision or "a job is per export"
    return f"finetune: trained on export {export_id} from the base model ({why.removeprefix('trained: ')})"


def evaluate_line(evaluation: EvalResult) -> str:
    """What the evaluate step of `beep run` reused, or that it predicted every example."""
    if evaluation.reused:
        return f"incremental evaluate: reused the finished run {evaluation.eval_run_id} of this model and export"
    kept: list[str] = []
    if evaluation.n_moments_kept:
        kept.append(f"the alert replay kept the model's rankings at {evaluation.n_moments_kept:,} moments")
    if evaluation.n_baselines_kept:
        kept.append(f"the baselines' predictions of {evaluation.n_baselines_kept:,} examples kept (the same train split)")
    if evaluation.tune_kept:
        kept.append("the alert policy's curve kept on the tune period")
    since = evaluation.passes_from
    if since:
        kept.append(f"its passes over the evaluated period went on from their states at {since}")
    curve = "the alert policy's curve on the evaluated period" if evaluation.tune_kept else "the alert policy's curve"
    if since:
        curve += f" from {since} on" if evaluation.tune_kept else f" (on the evaluated period from {since} on)"
    again = ", ".join([*([] if evaluation.n_baselines_kept else ["baselines"]), "metrics", curve])
    rest = "; ".join([*kept, f"{again} computed again"])
    if evaluation.n_reused:
        return (f"incremental evaluate: {evaluation.eval_run_id} kept {evaluation.n_reused:,} stored predictions of run "
                f"{evaluation.reused_from} (same model; the examples and every day of messages up to them unchanged) "
                f"and predicted {evaluation.n - evaluation.n_reused:,} of the {evaluation.n:,} validation examples; {rest}")
    why = f" ({evaluation.not_reused_because})" if evaluation.not_reused_because else ""
    if kept:
        return (f"incremental evaluate: ran {evaluation.eval_run_id} over the {evaluation.n:,} validation examples"
                f"{why}; {rest}")
    return (f"evaluate: ran {evaluation.eval_run_id} over the {evaluation.n:,} validation examples and replayed the "
            f"alerts{why}")


def run_pipeline(paths: Paths, options: RunOptions, console: Console | None = None) -> RunResult:
    """Run every step in order; raise :class:`StepFailed` naming the step that failed."""
    steps = _Steps(paths, options, console or Console(stderr=True))
    ingested = steps.ingest()
    steps.build(ingested.export_path)
    refined = steps.refine()
    exported = steps.export()
    tuned = steps.finetune(exported.export_id, refined.cost)
    # what fine-tuning was estimated to cost when it trained now (a kept or reused job cost nothing new)
    tuning = tuned.estimate.usd if tuned.estimate is not None and not tuned.reused and not tuned.kept_from else 0.0
    evaluation = steps.evaluate(tuned.job_id, exported.export_id, spent=(refined.cost or 0.0) + tuning)
    steps.report(evaluation.eval_run_id)
    steps.prune()
    return steps.result
