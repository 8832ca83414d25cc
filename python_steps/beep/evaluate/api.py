"""`beep evaluate` as a function: score a model and the baselines on an export's split, in DuckDB.

``evaluate(paths, model=..., export_id=None, split="valid")``:

1. resolves the model (a fine-tune job id or its model name) and its export (the job's, or
   ``export_id``), and loads the split with the export's own label mapping;
2. the run id is a hash of model + export + split (+ a salt with ``new_run``): the same call again
   returns the finished run without predicting anything; an unfinished one (killed, failed) resumes
   and sends only the examples that have no stored prediction yet;
3. predictions are stored batch by batch as they arrive (short transactions);
4. the baselines are ranked on the same examples from the export's train split;
5. metrics for every model and baseline, on all examples and on the newcomer slice, replace the
   run's metric rows and the run is marked finished.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from beep.config import Paths
from beep.db import connect, table_exists
from beep.evaluate.baselines import BASELINES, STATIC_BASELINES, BaselineInput, Baselines, TrainRow
from beep.evaluate.dataset import load_examples, load_train_rows
from beep.evaluate.metrics import HEADLINE, MetricRow, compute_metrics, mention_flags, true_label_rank
from beep.evaluate.reuse import (KeptRankings, Reused, StoredRanking, kept_passes, kept_rankings, passes_file,
                                 rankings_file, reuse_baselines, reuse_predictions, run_context_days, save_passes,
                                 trained_model)
from beep.evaluate.store import (
    PredictionRow,
    RunRow,
    discard_pruned_run,
    fail_run,
    finish_run,
    get_run,
    headline,
    predicted_ids,
    recover_stale_runs,
    scored_predictions,
    start_run,
    write_models_predictions,
    write_predictions,
)
from beep.interrupts import interruption
from beep.labels import OTHER_LABEL, EvalExample, EvaluationInputError, ExportInfo, load_export
from beep.locks import StepLock
from beep.predictors import ModelOutput, PredictorOptions, make_predictor, people_of_labels
from beep.predictors.local import is_ranker
from beep.predictors.models import ModelRef, latest_model, resolve_model
from beep.providers import get as get_provider
from beep.prune import refuse_pruned

SPLITS = ("valid", "train")
#: The alert replay's metrics (slice alert_replay) a result carries in its headline.
ALERT_REPLAY_METRICS = ("precision", "recall", "alerts", "alerts_per_person_day", "min_probability", "target_reached")


@dataclass(frozen=True)
class EvalOptions(PredictorOptions):
    """How to evaluate (everything but what: model, export, split): how to ask the model (the
    :class:`beep.predictors.PredictorOptions` fields: provider, top_k, base_url, ...) and these."""

    new_run: bool = False  # start a new run even when a finished one exists (predicting every example again)
    #: the local ranker: keep the stored predictions an earlier run of the same model made on examples that did
    #: not change (beep.evaluate.reuse); never with new_run
    reuse_predictions: bool = True
    refresh_views: bool = True  # rebuild the dbt evaluation views if a fresh `dbt build` left them empty
    alert_replay: bool = True  # replay the app's alert decision (the local ranker and the baselines)
    alert_head: bool = False  # also train and replay the alert head (measured: it did not serve better)
    alert_window_minutes: float = 60.0  # an alert is useful when its person writes within this
    target_precision: float = 0.5  # the operating point: the lowest threshold whose tune precision reaches it

    def identity(self) -> dict[str, Any]:
        """The settings recorded with the run (never a key)."""
        return {"top_k": self.top_k, "base_url": self.base_url, "provider": self.provider,
                "alert_window_minutes": self.alert_window_minutes, "target_precision": self.target_precision}


@dataclass(frozen=True)
class EvalResult:
    """What an evaluation produced (the full detail is in the DuckDB tables)."""

    eval_run_id: str
    model: str
    export_id: str
    split: str
    n: int
    provider: str
    reused: bool  # the finished run already existed; nothing was predicted
    cost: float | None
    #: {model or baseline name: {slice ('all' | 'newcomer'): {metric: value}}}
    headline: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)
    n_newcomer: int = 0
    seconds: float = 0.0
    #: predictions kept from an earlier run of the same model on another export (unchanged examples)
    n_reused: int = 0
    reused_from: str | None = None  # that run
    not_reused_because: str | None = None  # why no earlier run's predictions were kept (when one was looked for)
    n_moments_kept: int = 0  # alert replay moments whose model ranking was kept from an earlier run
    n_baselines_kept: int = 0  # examples whose baselines' predictions were kept from that run
    tune_kept: bool = False  # the alert replay's tune-period curve was kept from that run
    #: the day from which the alert replay's passes over the evaluated period went on from that run's states
    passes_from: str | None = None
    n_relabelled: int = 0  # of n_reused, predictions rebuilt in this export's labels from their stored people


def run_id_for(model: str, export_id: str, split: str, salt: str = "") -> str:
    """The run id: the same model, export and split give the same run (unless salted)."""
    digest = hashlib.sha256(json.dumps([model, export_id, split, salt]).encode()).hexdigest()
    return f"ev-{digest[:16]}"


#: How many people a prediction row keeps (with probabilities and reasons).
PEOPLE_KEPT = 20


def _ranks(example: EvalExample, people: Sequence[str]) -> tuple[int | None, int | None]:
    """The responder's rank among ``people``, and among those not yet in the conversation."""
    responder = example.responder_user_id
    if not responder:
        return None, None
    rank = next((i for i, u in enumerate(people, start=1) if u == responder), None)
    outsider = None
    if example.newcomer:
        inside = set(example.prior_participant_ids)
        outside = [u for u in people if u not in inside]
        outsider = next((i for i, u in enumerate(outside, start=1) if u == responder), None)
    return rank, outsider


def _prediction_row(model: str, example: EvalExample, ranked: Sequence[tuple[str, float | None]], *,
                    predicted: str | None, raw: str | None = None, prompt_tokens: int | None = None,
                    completion_tokens: int | None = None, people: Sequence[tuple[str, float | None, str | None]] = (),
                    nobody: float | None = None, label_rank: int | None = None) -> PredictionRow:
    """A prediction row; ``label_rank`` (the true label's rank) when the caller knows it beyond ``ranked``."""
    if label_rank is None:
        label_rank = true_label_rank([label for label, _ in ranked], example.true_label)
    rank, outsider = _ranks(example, [u for u, _, _ in people])
    return PredictionRow(
        model=model,
        example_id=example.example_id,
        true_label=example.true_label,
        predicted_label=predicted,
        ranked=tuple(ranked),
        true_label_rank=label_rank,
        raw_output=raw,
        newcomer=example.newcomer,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        responder_user_id=example.responder_user_id,
        people=tuple(people[:PEOPLE_KEPT]),
        responder_rank=rank,
        outsider_rank=outsider,
        nobody_probability=nobody,
    )


def baseline_rows(export: ExportInfo, train: Sequence[TrainRow], examples: Sequence[EvalExample],
                  top_k: int) -> Iterator[tuple[str, list[PredictionRow]]]:
    """Each baseline's predictions on ``examples``, learnt from ``train`` (beep.evaluate.dataset.load_train_rows),
    one baseline at a time (so a large validation split holds one baseline's rows in memory, not four)."""
    learnt = Baselines(train, export.label_texts, export.label_of_user)
    for name in BASELINES:
        rows = []
        # a ranking the same for every example of a channel (Baselines.ranking returns the same list): its
        # stored tuples made once and shared by the rows, which the store then encodes once
        shared: dict[int, tuple[list[str], tuple[tuple[str, None], ...], tuple[tuple[str, None, None], ...]]] = {}
        for ex in examples:
            people, first = learnt.ranking(name, BaselineInput(ex.channel_id, ex.prior_participant_ids, ex.mentioned_user_ids))
            hit = shared.get(id(people))
            if hit is None or hit[0] is not people:
                ranking = learnt.labels_of(people, top=top_k, first=first)
                hit = (people, tuple((label, None) for label in ranking),
                       tuple((u, None, None) for u in people[:PEOPLE_KEPT]))
                if name in STATIC_BASELINES:
                    shared[id(people)] = hit
            _, ranked, kept = hit
            # The ranks of the true label and person are taken over the whole ranking; what is stored is cut.
            rows.append(_prediction_row(name, ex, ranked, predicted=ranked[0][0] if ranked else None, people=kept,
                                        label_rank=learnt.label_rank(people, ex.true_label, first=first)))
        yield name, rows


def evaluate(paths: Paths, *, model: str | None = None, export_id: str | None = None, split: str = "valid", options: EvalOptions | None = None, console: Console | None = None, **kwargs: Any) -> EvalResult:
    """Evaluate ``model`` (a job id or fine-tuned model name; default: the latest succeeded job)
    on ``split`` of its export (or ``export_id``) beside the baselines; see the module docstring.

    Extra keyword arguments are :class:`EvalOptions` fields (``top_k=5``, ``new_run=True``, ...).
    """
    options = options or EvalOptions(**kwargs)
    console = console or Console(stderr=True)
    if split not in SPLITS:
        raise EvaluationInputError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    # one evaluate at a time on this DuckDB file (a second one waits): no example is paid twice, and
    # runs still marked running are known to be dead
    with StepLock(paths, "evaluate"):
        for run_id, run_model, n_done, cost in recover_stale_runs(paths.duckdb):
            spent = f"${cost:.4f}" if cost is not None else "an unknown cost"
            console.print(f"evaluation {run_id} ({run_model}) was left running by a process that is gone: marked "
                          f"interrupted, {n_done} predictions stored, {spent}; the same command resumes it",
                          markup=False, highlight=False, emoji=False)
        return _evaluate(paths, model=model, export_id=export_id, split=split, options=options, console=console)


@dataclass(frozen=True)
class _Target:
    """What an evaluation scores: the model, its export, the split's examples and the train split."""

    ref: ModelRef
    export: ExportInfo
    split: str
    examples: list[EvalExample]
    train: list[TrainRow]  # what the baselines learn from


def _evaluate(paths: Paths, *, model: str | None, export_id: str | None, split: str, options: EvalOptions,
              console: Console) -> EvalResult:
    t0 = time.monotonic()
    target = _resolve_target(paths, model=model, export_id=export_id, split=split, options=options, console=console)
    n_newcomer = sum(ex.newcomer for ex in target.examples)
    salt = f"{time.time_ns()}" if options.new_run else ""
    eval_run_id = run_id_for(target.ref.name, target.export.export_id, split, salt)
    if discard_pruned_run(paths.duckdb, eval_run_id):
        console.print(f"run {eval_run_id} was pruned (`beep prune`): it is made again", highlight=False)
    with connect(paths.duckdb, read_only=True) as con:
        existing = get_run(con, eval_run_id)
    if existing is not None and existing.status == "finished":
        return _result(paths, existing, reused=True, n_newcomer=n_newcomer, t0=t0)

    _start(paths, target, eval_run_id, options)
    try:
        reused = _reuse(paths, target, eval_run_id, options, console)
        _predict_pending(paths, target, eval_run_id, options, console, n_reused=reused.n)
        metric_rows, reused = _score(paths, target, eval_run_id, options, console, reused)
        finish_run(paths.duckdb, eval_run_id, metric_rows, n=len(target.examples))
    except BaseException as err:
        stopped = interruption(err)
        try:
            fail_run(paths.duckdb, eval_run_id, f"{type(stopped or err).__name__}: {stopped or err}",
                     status="failed" if stopped is None else "interrupted")
        except Exception:  # noqa: BLE001 - never hide the error that stopped the run behind this one
            pass
        if stopped is not None and stopped is not err:
            raise stopped from err
        raise
    if options.refresh_views:
        _refresh_views(paths, console)
    with connect(paths.duckdb, read_only=True) as con:
        run = get_run(con, eval_run_id)
    assert run is not None
    return _result(paths, run, reused=False, n_newcomer=n_newcomer, t0=t0, kept=reused)


def _resolve_target(paths: Paths, *, model: str | None, export_id: str | None, split: str, options: EvalOptions,
                    console: Console) -> _Target:
    """Phase 1: the model (a job id or model name; default the latest job), its export (or ``export_id``,
    refused when its examples were trained on) and the examples of ``split`` and of the train split."""
    with connect(paths.duckdb, read_only=True) as con:
        ref = resolve_model(con, model or latest_model(con), provider=options.provider)
        if export_id:
            refuse_pruned(con, "exports", "export_id", export_id, f"the examples of export {export_id}",
                          "evaluate on a newer export (--export; `beep export` makes one)", EvaluationInputError)
        if export_id and ref.export_id and export_id != ref.export_id:
            refuse_pruned(con, "exports", "export_id", ref.export_id,
                          f"the train examples of export {ref.export_id}, which {ref.name} was trained on,",
                          f"whether {export_id}'s {split} examples were trained on cannot be checked; evaluate a newer "
                          "model (fine-tune on this export first)", EvaluationInputError)
            _refuse_trained_on(con, ref, export_id, split)
            console.print(
                f"[yellow]note:[/] {ref.name} was trained on export {ref.export_id}; evaluating it on {export_id} as asked "
                f"(none of its {split} examples were in that training split)"
            )
        export_id = export_id or ref.export_id
        if not export_id:
            raise EvaluationInputError(
                f"model {ref.name} comes from no fine-tune job in this DuckDB file, so its export is unknown: pass --export"
            )
        refuse_pruned(con, "exports", "export_id", export_id, f"the examples of export {export_id}",
                      "evaluate on a newer export (--export; `beep export` makes one)", EvaluationInputError)
        export = load_export(con, export_id)
        # the ranker reads the conversations themselves, not the prompts (hundreds of MB on a real split)
        examples = load_examples(con, export, split, with_prompt=not (ref.provider == "local" and is_ranker(ref)))
        train = load_train_rows(con, export)
    if not examples:
        raise EvaluationInputError(f"export {export_id} has no {split!r} examples to evaluate on")
    return _Target(ref, export, split, examples, train)


def _refuse_trained_on(con: Any, ref: ModelRef, export_id: str, split: str) -> None:
    """Refuse another export's split when any of its examples is in the model's own training split."""
    seen = con.execute(
        """
        select count(*) from export_examples as evaluated
        inner join export_examples as trained
            on trained.example_id = evaluated.example_id
            and trained.export_id = ? and trained.split = 'train'
        where evaluated.export_id = ? and evaluated.split = ?
        """,
        [ref.export_id, export_id, split],
    ).fetchone()[0]
    if seen:
        raise EvaluationInputError(
            f"{seen} of the {split} examples of export {export_id} are in the training split of export "
            f"{ref.export_id}, which {ref.name} was trained on: its scores there would be inflated. Evaluate it "
            f"on its own export (leave out --export), or fine-tune on {export_id} first."
        )


def _start(paths: Paths, target: _Target, eval_run_id: str, options: EvalOptions) -> None:
    """Phase 2: the run's row in ``eval_runs`` (status running; resumed when it exists)."""
    ref = target.ref
    with connect(paths.duckdb, read_only=True) as con:
        kind, context = run_kind(con, ref, target.export, target.split)
        if _is_local_ranker(ref):  # what a later run checks before keeping this run's predictions
            context["message_days"] = run_context_days(con)
    if _is_local_ranker(ref):
        context["model_identity"] = trained_model(paths.duckdb, ref.job_id)[0]
    runs_here = _runs_here(ref.provider)
    start_run(paths.duckdb, RunRow(
        eval_run_id=eval_run_id, model=ref.name, job_id=ref.job_id, export_id=target.export.export_id,
        split=target.split, n=len(target.examples), provider=ref.provider, status="running",
        settings=options.identity(), started_at=None, finished_at=None, cost=0.0 if runs_here else None, error=None,
        run_kind=kind, context=context,
    ))


def _runs_here(provider: str) -> bool:
    """Whether the registry says ``provider`` runs on this machine (its predictions cost nothing)."""
    try:
        return get_provider(provider).runs_here
    except ValueError:  # a provider the registry does not know: make_predictor says so
        return False


def _is_local_ranker(ref: ModelRef) -> bool:
    return ref.provider == "local" and is_ranker(ref)


def _reuse(paths: Paths, target: _Target, eval_run_id: str, options: EvalOptions, console: Console) -> Reused:
    """Phase 3a (the local ranker): keep the predictions an earlier run of this model made on unchanged
    examples (beep.evaluate.reuse), so that only the others are predicted."""
    if options.new_run or not options.reuse_predictions or not _is_local_ranker(target.ref):
        return Reused()
    from beep.predictors.local import ranker_output

    ref, export = target.ref, target.export
    by_id = {ex.example_id: ex for ex in target.examples}
    other = OTHER_LABEL if OTHER_LABEL in export.label_texts else None
    label_of = export.label_of_user

    def rows(stored: list[StoredRanking]) -> list[PredictionRow]:
        outputs = [ranker_output(eid, people, nobody, label_of, other, options.top_k) for eid, people, nobody in stored]
        return [_prediction_row(ref.name, by_id[o.example_id], o.ranked, predicted=o.predicted_label, raw=o.raw_output,
                                people=o.people, nobody=o.nobody) for o in outputs]

    def relabel(batches: Iterator[list[StoredRanking]]) -> None:
        """Store predictions rebuilt from their stored people in this export's labels, as fresh ones are
        (in one transaction, a batch at a time)."""
        write_models_predictions(paths.duckdb, eval_run_id, ((ref.name, rows(batch)) for batch in batches),
                                 replace=False)

    reused = reuse_predictions(paths.duckdb, eval_run_id=eval_run_id, model=ref.name, job_id=ref.job_id,
                               export_id=export.export_id, split=target.split, top_k=options.top_k,
                               examples=target.examples, relabel=relabel)
    if reused.n:
        relabelled = (f", {reused.n_relabelled:,} of them relabelled from their stored people (the export's labels "
                      "moved)") if reused.n_relabelled else ""
        console.print(f"kept {reused.n:,} predictions of run {reused.from_run} (the same model; the examples and every "
                      f"day of messages up to them unchanged{relabelled}); predicting the other "
                      f"{len(target.examples) - reused.n:,}", highlight=False)
    return reused


def _predict_pending(paths: Paths, target: _Target, eval_run_id: str, options: EvalOptions, console: Console,
                     n_reused: int = 0) -> None:
    """Phase 3: predict the examples without a stored prediction, storing each batch as it arrives."""
    ref, export, examples = target.ref, target.export, target.examples
    done = predicted_ids(paths.duckdb, eval_run_id, ref.name)
    pending = [ex for ex in examples if ex.example_id not in done]
    if len(done) > n_reused:
        console.print(f"resuming {eval_run_id}: {len(done) - n_reused} example(s) already predicted, {len(pending)} to go")
    by_id = {ex.example_id: ex for ex in examples}

    def store(outputs: list[ModelOutput], cost: float) -> None:
        rows = [
            _prediction_row(ref.name, by_id[o.example_id], o.ranked, predicted=o.predicted_label, raw=o.raw_output,
                            prompt_tokens=o.prompt_tokens, completion_tokens=o.completion_tokens,
                            people=o.people or people_of_labels(export, o.ranked), nobody=o.nobody)
            for o in outputs
        ]
        write_predictions(paths.duckdb, eval_run_id, rows, add_cost=cost)

    if pending:
        predictor = make_predictor(ref, export, options, paths)
        if getattr(predictor, "priced", True):
            write_predictions(paths.duckdb, eval_run_id, [], set_cost_if_null=0.0)
        else:
            console.print(
                f"[yellow]note:[/] no price for {ref.name} in seeds/model_prices.csv: the run's cost stays unknown "
                "(add a row for the model or a prefix of its id)"
            )
        predictor.run(pending, store)
    missing = {ex.example_id for ex in examples} - predicted_ids(paths.duckdb, eval_run_id, ref.name)
    if missing:
        raise EvaluationInputError(
            f"{len(missing)} example(s) still have no prediction from {ref.name} (e.g. {sorted(missing)[0]}): "
            f"the provider failed on them; run the same `beep evaluate` again to retry only those"
        )


def _score(paths: Paths, target: _Target, eval_run_id: str, options: EvalOptions, console: Console,
           reused: Reused = Reused()) -> tuple[list[tuple[str, MetricRow]], Reused]:
    """Phase 4: the baselines' predictions (those of unchanged examples kept from the run the model's
    were kept from, when the train split and labels are the same: beep.evaluate.reuse.reuse_baselines),
    then every model's metrics (and the alert replay's); ``reused`` with what they kept."""
    examples = target.examples
    if reused.source and reused.source != eval_run_id and options.reuse_predictions and not options.new_run:
        n_kept, why_not = reuse_baselines(paths.duckdb, eval_run_id=eval_run_id, source_run=reused.source,
                                          export_id=target.export.export_id, split=target.split,
                                          examples=examples, baselines=BASELINES)
        if n_kept:
            console.print(f"baselines: kept their predictions of {n_kept:,} unchanged examples from run {reused.source} "
                          "(the same train split and labels)", highlight=False)
        elif why_not:
            console.print(f"baselines: predicting every example ({why_not})", highlight=False)
    else:
        n_kept = 0
    if not n_kept:  # every baseline's predictions, in place of any a resumed run stored
        write_models_predictions(paths.duckdb, eval_run_id, baseline_rows(target.export, target.train, examples,
                                                                          options.top_k))
    else:  # those of the other examples, beside the kept ones
        missing = {name: {ex.example_id for ex in examples} - predicted_ids(paths.duckdb, eval_run_id, name)
                   for name in BASELINES}
        todo = set().union(*missing.values())
        fresh = baseline_rows(target.export, target.train, [ex for ex in examples if ex.example_id in todo],
                              options.top_k)
        write_models_predictions(paths.duckdb, eval_run_id, (
            (name, [row for row in rows if row.example_id in missing[name]]) for name, rows in fresh), replace=False)
    with connect(paths.duckdb, read_only=True) as con:
        scored = scored_predictions(con, eval_run_id, mention_flags(examples))
    metric_rows = [(name, m) for name, rows in scored.items() for m in compute_metrics(rows)]
    n_moments_kept, tune_kept, passes_from = 0, False, None
    if options.alert_replay:
        rows, n_moments_kept, tune_kept, passes_from = _alert_replay(paths, target.ref, target.export, target.split, eval_run_id, options,
                                             console, reused)
        metric_rows += rows
    return metric_rows, replace(reused, n_moments_kept=n_moments_kept, n_baselines_kept=n_kept, tune_kept=tune_kept,
                                passes_from=passes_from)


def _refresh_views(paths: Paths, console: Console) -> None:
    """Phase 5: rebuild the dbt evaluation views a fresh `dbt build` left empty (the run itself is stored)."""
    from beep.db import BuiltByAnOlderBeep
    from beep.dbt_runner import DbtFailed
    from beep.evaluate.views import refresh_stale_views

    try:
        refreshed = refresh_stale_views(paths)
        if refreshed:
            console.print(f"rebuilt the dbt evaluation views {', '.join(refreshed)} (they were built before any evaluation)")
    except BuiltByAnOlderBeep as err:  # only the convenience views lag
        console.print(f"[yellow]warning:[/] the dbt evaluation views were not rebuilt. {err}")
    except DbtFailed as err:
        console.print(f"[yellow]warning:[/] could not rebuild the dbt evaluation views ({err}); run `beep build`")


def _alert_replay(paths: Paths, ref: ModelRef, export: ExportInfo, split: str, eval_run_id: str,
                  options: EvalOptions, console: Console,
                  reused: Reused = Reused()) -> tuple[list[tuple[str, MetricRow]], int, bool, str | None]:
    """The alert replay (beep.evaluate.alert_replay) of the local ranker and the baselines: its curve
    stored in ``alert_replay_curve``, its operating points returned as ``metrics`` rows (with how many
    moments' model rankings were kept from ``reused``'s source run: beep.evaluate.reuse.KeptRankings,
    whether its tune-period curve was, and the day from which its passes over the evaluated period went
    on from that run's states: beep.evaluate.reuse.kept_passes).
    Models other than the local ranker are not replayed (an LLM asked at every message of two periods
    would cost a request per message): their baselines are, so the table still says what the policy does."""
    from beep.build import last_build_vars
    from beep.evaluate.alert_replay import (ReplaySettings, kept_tune_curve, metric_rows, passes_key,
                                            periods_of_export, ranker_rankings, replay_alerts, tune_key,
                                            write_alert_sample)
    from beep.evaluate.store import add_to_context, write_alert_curve

    with connect(paths.duckdb, read_only=True) as con:
        built = last_build_vars(con)
    context = int((built or {}).get("context_messages") or ReplaySettings().context_messages)
    settings = ReplaySettings(alert_window_minutes=options.alert_window_minutes,
                              target_precision=options.target_precision, context_messages=context)
    model_rankings = None
    with connect(paths.duckdb, read_only=True) as con:
        if not (table_exists(con, "int_conversations") and table_exists(con, "training_examples")):
            console.print("alert replay: skipped (this DuckDB file has no built conversations: `beep build`)",
                          highlight=False)
            return [], 0, False, None
        periods = periods_of_export(con, export.export_id, split, settings.tune_fraction)
        if "evaluated" not in periods:
            return [], 0, False, None
        if ref.provider == "local" and is_ranker(ref):
            from beep.predictors.models import verified_artifact
            from beep.ranker.model import ResponderRanker

            # without the head, the policy reads only the people at or above the grid's lowest threshold
            floor = 0.0 if options.alert_head else min(settings.thresholds)
            model_rankings = ranker_rankings(con, ResponderRanker.load(verified_artifact(ref)), floor=floor)
            if not options.alert_head:  # the head reads every ranked person's features: nothing kept then
                keep = options.reuse_predictions and not options.new_run
                model_rankings = KeptRankings(model_rankings, kept_rankings(paths.artifacts_dir, reused) if keep else {},
                                              min(settings.thresholds))
        else:
            console.print(f"alert replay: {ref.name} is not replayed (only the local ranker is asked at every "
                          "message); the baselines are", highlight=False)
        key = tune_key(con, periods, settings)
        kept_tune: dict[str, Any] = {}
        passes = None
        if isinstance(model_rankings, KeptRankings) and reused.source and reused.source != eval_run_id:
            source = get_run(con, reused.source)
            context = (source.context or {}) if source else {}
            read_until = (context.get("message_days") or {}).get("until")
            kept_tune = kept_tune_curve(con, reused.source, key, context.get("alert_tune"), reused.cutoff, read_until)
            passes = kept_passes(paths.artifacts_dir, reused, lambda at: passes_key(con, periods, settings, at),
                                 read_until)
        if kept_tune:
            console.print(f"alert replay: the tune period's curve kept from run {reused.source} (the same period, "
                          "rankings, settings and messages)", highlight=False)
        # the passes' states at the start of the evaluated period's last day: a new day's run goes on from
        # them (unless that day's messages changed too, which an export's re-exported last day may do); a
        # file an earlier run of this id left is never read as this run's
        passes_file(paths.artifacts_dir, eval_run_id).unlink(missing_ok=True)
        last = periods["evaluated"][1]
        result = replay_alerts(con, periods, model_rankings, ref.name if model_rankings else None, settings,
                               say=lambda m: console.print(m, highlight=False), with_head=options.alert_head,
                               kept_tune=kept_tune, passes=passes,
                               snapshot_at=(last - last % 86400.0) if isinstance(model_rankings, KeptRankings) else None)
        passes_at = result.passes_at
        saved_key = passes_key(con, periods, settings, passes_at) if passes_at is not None else None
    passes_from = None
    if passes is not None and result.resumed:
        passes_from = datetime.fromtimestamp(passes.at, tz=timezone.utc).strftime("%Y-%m-%d")
        console.print(f"alert replay: the evaluated period's passes of {', '.join(result.resumed)} went on from run "
                      f"{reused.source}'s states at {passes_from} (the same moments, rankings and outcomes before)",
                      highlight=False)
    if passes_at is not None and saved_key is not None:
        save_passes(passes_file(paths.artifacts_dir, eval_run_id), saved_key, passes_at, result.passes_open,
                    result.passes)
    if passes_at is not None and reused.source and reused.source != eval_run_id:  # this run's file now holds
        passes_file(paths.artifacts_dir, reused.source).unlink(missing_ok=True)  # what the next run may resume
    write_alert_curve(paths.duckdb, eval_run_id, result)
    if key is not None:
        add_to_context(paths.duckdb, eval_run_id, "alert_tune", key)
    write_alert_sample(paths.duckdb, eval_run_id, result)
    n_kept = 0
    if isinstance(model_rankings, KeptRankings):
        model_rankings.save(rankings_file(paths.artifacts_dir, eval_run_id))  # what the next run may keep
        n_kept = model_rankings.n_kept
        if reused.source and reused.source != eval_run_id:  # this run's file now holds what the next run may keep
            rankings_file(paths.artifacts_dir, reused.source).unlink(missing_ok=True)
    total = sum(result.n_moments.values())
    console.print(f"alert replay: {total:,} moments in {result.seconds:.1f} s"
                  + (f" (the model's rankings at {n_kept:,} of them kept from run {reused.source})" if n_kept else ""),
                  highlight=False)
    return metric_rows(result), n_kept, bool(kept_tune), passes_from


def run_kind(con: Any, ref: ModelRef, export: ExportInfo, split: str) -> tuple[str, dict[str, Any]]:
    """What makes two runs comparable — provider, model variant (or base model), the export's format,
    split and refinement, the evaluated split — and what the run ran on (recorded as its context)."""
    from beep.build import last_build_vars
    from beep.db import table_exists

    hyper: dict[str, Any] = {}
    if ref.job_id and table_exists(con, "finetune_jobs"):
        row = con.execute("select hyperparameters from finetune_jobs where job_id = ?", [ref.job_id]).fetchone()
        if row and row[0]:
            hyper = json.loads(row[0]) if isinstance(row[0], str) else dict(row[0])
    model_kind = str(hyper.get("variant") or ref.base_model or ref.name)
    es = export.settings
    kind = "|".join([
        f"{ref.provider}/{model_kind}", str(es.get("format", export.format)),
        f"{es.get('split_method', '?')} {es.get('valid_fraction', '?')}", "refined" if export.refined else "unrefined", split,
    ])
    context = {
        "build_vars": last_build_vars(con),
        "export": {k: es.get(k) for k in ("format", "base_model", "refined", "split_method", "valid_fraction", "seed")},
        "model": {k: v for k, v in hyper.items() if k not in ("features",)},
    }
    return kind, context


def compare_with_previous(paths: Paths, eval_run_id: str, metrics: Sequence[str]) -> tuple[str | None, dict[str, dict[str, tuple[float | None, float | None]]]]:
    """The previous finished run of the same kind, and per slice and metric (this value, previous
    value) of the evaluated model (not the baselines)."""
    from beep.evaluate.store import previous_run_of_kind

    with connect(paths.duckdb, read_only=True) as con:
        previous = previous_run_of_kind(con, eval_run_id)
        if previous is None:
            return None, {}
        rows = con.execute(
            """
            select m.eval_run_id, m.slice, m.metric, m.value from metrics m
            inner join eval_runs r on r.eval_run_id = m.eval_run_id and m.model = r.model
            where m.eval_run_id in (?, ?) and m.label is null and list_contains(?, m.metric)
            """,
            [eval_run_id, previous, list(metrics)],
        ).fetchall()
    out: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for run, slice_, metric, value in rows:
        now, before = out.setdefault(slice_, {}).get(metric, (None, None))
        out[slice_][metric] = (value, before) if run == eval_run_id else (now, value)
    return previous, out


def _result(paths: Paths, run: RunRow, *, reused: bool, n_newcomer: int, t0: float, kept: Reused = Reused()) -> EvalResult:
    with connect(paths.duckdb, read_only=True) as con:
        head = headline(con, run.eval_run_id, HEADLINE)
        for name, slices in headline(con, run.eval_run_id, ALERT_REPLAY_METRICS).items():
            if "alert_replay" in slices:
                head.setdefault(name, {})["alert_replay"] = slices["alert_replay"]
    return EvalResult(
        eval_run_id=run.eval_run_id,
        model=run.model,
        export_id=run.export_id,
        split=run.split,
        n=int(run.n or 0),
        provider=run.provider,
        reused=reused,
        cost=run.cost,
        headline=head,
        n_newcomer=n_newcomer,
        seconds=time.monotonic() - t0,
        n_reused=kept.n,
        reused_from=kept.from_run,
        n_moments_kept=kept.n_moments_kept,
        n_baselines_kept=kept.n_baselines_kept,
        tune_kept=kept.tune_kept,
        passes_from=kept.passes_from,
        not_reused_because=kept.why_not,
        n_relabelled=kept.n_relabelled,
    )


def model_order(result_model: str, names: Sequence[str]) -> list[str]:
    """The evaluated model first, then the baselines in their usual order, then anything else."""
    rest = [n for n in names if n != result_model and n not in BASELINES]
    return [result_model] + [b for b in BASELINES if b in names] + sorted(rest)


#: Short column titles for the headline table.
_SHORT = {
    "person_top_1": "top1", "person_top_5": "top5", "outsider_top_5": "out5", "alert_precision_person": "replyP",
    "alert_recall_person": "replyR",
    "f1_macro": "mF1", "accuracy": "acc", "top_3_accuracy": "top3", "top_5_accuracy": "top5",
    "alert_recall_right_person": "alert", "f1_weighted": "wF1", "top_1_accuracy": "top1",
}


def headline_table(result: EvalResult, metrics: Sequence[str] = ("person_top_1", "person_top_5", "outsider_top_5", "alert_precision_person", "alert_recall_person", "f1_macro")) -> Table:
    """The headline numbers as a rich table: the model and every baseline, on all examples and on
    the newcomer slice (the responder had not written in the conversation yet)."""
    table = Table(
        title=f"{result.model} on {result.split} of export {result.export_id}: n={result.n}, newcomers={result.n_newcomer}",
        caption=(
            "top1/top5 = the person who answered is among the first k people ranked; out5 = the same ranking only "
            "people not yet in the conversation (newcomers); replyP/replyR = precision/recall of guessing the next "
            "reply's person (the app's alerts: the alert replay); mF1 = macro F1 over the export's labels; new = newcomer slice: the responder had not written "
            "in the conversation yet"
        ),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    names = model_order(result.model, list(result.headline))
    table.add_column("model", no_wrap=True)
    table.add_column("slice", no_wrap=True)
    for metric in metrics:
        table.add_column(_SHORT.get(metric, metric), justify="right", no_wrap=True)
    for name in names:
        if not {"all", "newcomer"} & set(result.headline.get(name, {})):
            continue  # a ranker of the alert replay only (the alert head, its baselines): not a next-reply guess
        for slice_ in ("all", "newcomer"):
            values = result.headline.get(name, {}).get(slice_, {})
            cells = ["–" if values.get(m) is None else f"{values[m]:.3f}" for m in metrics]
            label = name if slice_ == "all" else ""
            style = "bold" if name == result.model else None
            table.add_row(label, "all" if slice_ == "all" else "new", *cells, style=style, end_section=slice_ == "newcomer")
    return table
