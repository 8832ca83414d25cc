"""A daily evaluation keeps the predictions an earlier run of the same model made on examples that did
not change, and predicts only the others.

An evaluation run is per model and export. When the local ranker's model is kept for a new export
(beep.finetune.keep), most of the new export's validation examples were already predicted by that
model in the run on yesterday's export. The ranker's answer for an example is a function of the
model (its artifact, the same file) and of every message up to the example's last context message,
replayed from the latest saved state before the run's earliest example (:meth:`ResponderRanker.score`).
When every message the model's replay read is the same now (:mod:`beep.ranker.message_days`; its saved
states are then exactly a replay of today's data, wherever a run resumes: else nothing is kept, unless
the model is kept with its saved states from the first changed day on left out, beep.finetune.keep), every
message of the days up to the example's target that the earlier run read is the same now (the first
day that differs is the cutoff), and the example itself is the same (every column of
``export_examples`` a prediction row depends on, and the labels of the people it ranked), the stored prediction
is the one a run from scratch would make. Only then is it copied; everything else (the baselines, the
metrics, the alert replay) is computed again as before. When only its labels moved (a new person in
the export's label set shifts the labels after them: LabelEncoder order), the stored people are the
ranking a run from scratch makes, and the prediction is rebuilt from them in today's labels the way a
fresh one is (beep.predictors.local.ranker_output) instead of being copied. tests/python/test_daily_evaluate.py checks that
the metrics equal a run from scratch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from beep.db import connect, pruned_column, table_exists
from beep.labels import OTHER_LABEL, EvalExample
from beep.ranker.message_days import first_change, is_snapshot, read_snapshot

#: The columns of export_examples a prediction row depends on besides the messages and the labels (a
#: prediction whose labels moved is relabelled from its stored people: :func:`reuse_predictions`).
_EXAMPLE_COLUMNS = ("conversation_id", "target_at", "channel_id", "responder_user_id",
                    "prior_participant_ids", "mentioned_user_ids")

#: Stored people (user id, probability, reason), best first, and the nobody probability of one prediction.
StoredRanking = tuple[str, tuple[tuple[str, float, "str | None"], ...], "float | None"]


@dataclass(frozen=True)
class Reused:
    """What an evaluation kept from an earlier run: how many predictions, from which run (or why none)."""

    n: int = 0
    from_run: str | None = None
    why_not: str | None = None
    #: the run whose stored work may be kept (its alert replay's model rankings too), and the first day
    #: whose messages changed since it or the model read them (None: none changed)
    source: str | None = None
    cutoff: str | None = None
    n_moments_kept: int = 0  # the alert replay's moments whose model ranking came from the source run
    #: of ``n``, the predictions rebuilt in today's labels from their stored people (the export's labels
    #: moved: a person joined or left the label set, and the labels after them shifted)
    n_relabelled: int = 0
    #: examples whose baselines' predictions were kept from the source run (the same train split and labels)
    n_baselines_kept: int = 0
    tune_kept: bool = False  # the alert replay's tune-period curve was kept from the source run
    #: the day from which the alert replay's passes over the evaluated period went on from the source
    #: run's states (the moments before it were not passed over again); None when they were made whole
    passes_from: str | None = None


def run_context_days(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The message snapshot a run records in its context (None when the dataset has no conversations)."""
    return read_snapshot(con) if table_exists(con, "int_conversations") else None


def trained_model(db: Path, job_id: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """The identity of the model job ``job_id`` serves (the job that trained it and that artifact's sha256:
    a kept job serves its origin's model, a name reused by a later training is another model) and the
    message snapshot its training replay read; (None, None) when unknown."""
    from beep.finetune.keep import message_days_of, trained_job
    from beep.finetune.tracking import get_job

    job = get_job(db, job_id) if job_id else None
    origin = trained_job(db, job) if job is not None else None
    if origin is None or not origin.artifact_sha256:
        return None, None
    return f"{origin.job_id}:{origin.artifact_sha256}", message_days_of(origin)


def _states_dropped_from(db: Path, job_id: str | None) -> str | None:
    """The day from which ``job_id``'s artifact left out its saved states, when it is a kept model whose
    messages changed only after its last train example (beep.finetune.keep): its remaining states are a
    replay of today's data wherever a run resumes, as long as nothing changed before that day."""
    from beep.finetune.tracking import get_job

    job = get_job(db, job_id) if job_id else None
    if job is None or not job.hyperparameters.get("kept_from") or not job.result_files:
        return None
    dropped_from = job.result_files[0].get("states_replayed_from") if isinstance(job.result_files[0], dict) else None
    return dropped_from if isinstance(dropped_from, str) else None


def _source_run(con: duckdb.DuckDBPyConnection, model: str, identity: str, export_id: str, split: str,
                top_k: int) -> tuple[str, str, dict[str, Any]] | None:
    """The latest finished run of ``model`` (the same trained model: ``identity``) on another export's
    ``split`` with the same top-k that recorded its message days: (run id, its export, its days)."""
    rows = con.execute(
        f"""
        select eval_run_id, export_id, settings, context from eval_runs
        where model = ? and split = ? and export_id <> ? and status = 'finished' and {pruned_column(con, 'eval_runs')} is null
        order by finished_at desc
        """,
        [model, split, export_id],
    ).fetchall()
    for run_id, run_export, settings, context in rows:
        settings = json.loads(settings) if isinstance(settings, str) else (settings or {})
        context = json.loads(context) if isinstance(context, str) else (context or {})
        if (settings.get("top_k") == top_k and context.get("model_identity") == identity
                and is_snapshot(context.get("message_days"))):
            return str(run_id), str(run_export), dict(context["message_days"])
    return None


def _label_of(con: duckdb.DuckDBPyConnection, export_id: str) -> Callable[[str], str | None]:
    """The label the ranker's predictor gives a person on this export (beep.predictors.local.RankerPredictor:
    the person's label, else ``other`` when the export has it, else none)."""
    rows = con.execute("select label, user_id from export_labels where export_id = ?", [export_id]).fetchall()
    of_user = {u: str(label) for label, u in rows if u}
    other = OTHER_LABEL if any(str(label) == OTHER_LABEL for label, _ in rows) else None
    return lambda user: of_user.get(user, other)


def _same_labels(people: list[dict[str, Any]], old: Callable[[str], str | None], new: Callable[[str], str | None]) -> bool:
    """Whether every person a stored prediction ranked (its ``top_people``, parsed) has the same label on
    both exports (its labels, predicted label and true label's rank are read off those people)."""
    return all(old(str(p["user_id"])) == new(str(p["user_id"])) for p in people)


def reuse_predictions(db: Path, *, eval_run_id: str, model: str, job_id: str | None, export_id: str, split: str,
                      top_k: int, examples: list[EvalExample],
                      relabel: Callable[[Iterator[list[StoredRanking]]], None] | None = None) -> Reused:
    """Copy into ``eval_run_id`` the stored predictions of ``model`` that a run from scratch would make
    again (see the module docstring); return how many and from which run, or why none.

    A prediction whose example and messages are unchanged but whose labels moved (its true label, or
    the label of a person it ranked) is the same ranking of people in other labels: with ``relabel``,
    its stored people go to ``relabel`` (called once, with their batches), which stores them in today's
    labels as a fresh prediction is stored (beep.predictors.local.ranker_output); without it, it is
    predicted again."""
    from beep.evaluate.store import copy_predictions, predicted_ids

    identity, seen_by_model = trained_model(db, job_id)
    if identity is None or seen_by_model is None:
        return Reused(why_not="the model records no fingerprint of the messages it read")
    dropped_from = _states_dropped_from(db, job_id)
    by_id = {ex.example_id: ex for ex in examples}
    done = predicted_ids(db, eval_run_id, model)
    with connect(db, read_only=True) as con:
        source = _source_run(con, model, identity, export_id, split, top_k)
        if source is None:
            return Reused(why_not=f"no earlier finished run of {model} on another export to keep predictions from")
        run_id, run_export, seen_by_run = source
        changed = first_change(seen_by_model, con)
        if changed is not None and (dropped_from is None or changed < dropped_from):
            # its saved states are no replay of today's data: what it says depends on where a run resumes,
            # so only a run of every example is what a run from scratch gives
            return Reused(why_not=f"the messages of {changed} changed since the model read them")
        old_label, new_label = _label_of(con, run_export), _label_of(con, export_id)
        cutoff = first_change(seen_by_run, con)
        same = " and ".join(f"now.{c} is not distinct from old.{c}" for c in _EXAMPLE_COLUMNS)
        keep: list[str] = []
        moved: list[StoredRanking] = []
        cursor = con.execute(
            f"""
            select p.example_id, p.true_label, coalesce(p.newcomer, false), p.responder_user_id, p.top_people,
                   p.nobody_probability
            from predictions p
            inner join export_examples old on old.export_id = ? and old.example_id = p.example_id and old.split = ?
            inner join export_examples now on now.export_id = ? and now.example_id = p.example_id and now.split = ?
            where p.eval_run_id = ? and p.model = ? and {same}
              and (cast(? as varchar) is null or strftime(now.target_at, '%Y-%m-%d') < ?)
            """,
            [run_export, split, export_id, split, run_id, model, cutoff, cutoff],
        )
        # in batches, not every stored ranking's people (JSON) at once: Python's peak while deciding on the
        # 200,000-message daily file's 25,153 predictions 126 -> 113 MB (tracemalloc)
        while rows := cursor.fetchmany(_READ_BATCH):
            for eid, true_label, newcomer, responder, people, nobody in rows:
                ex = by_id.get(eid)
                if ex is None or eid in done or ex.newcomer != bool(newcomer) or ex.responder_user_id != responder:
                    continue
                # (parsed once: 94,863 of 126,905 stored predictions went on to be relabelled at 1,000,000 messages)
                stored = json.loads(people) if isinstance(people, str) else (people or [])
                if ex.true_label == true_label and _same_labels(stored, old_label, new_label):
                    keep.append(eid)
                elif relabel is not None and nobody is not None:
                    try:
                        ranked = tuple((str(p["user_id"]), float(p["probability"]), p.get("reason")) for p in stored)
                    except (KeyError, TypeError, ValueError):  # a row without its people's probabilities: predicted again
                        continue
                    moved.append((eid, ranked, float(nobody)))
    if not keep and not moved:
        return Reused(why_not=f"no example of run {run_id} is unchanged" + (f" before {cutoff}" if cutoff else ""),
                      source=run_id, cutoff=cutoff)
    copied = copy_predictions(db, from_run=run_id, to_run=eval_run_id, model=model, example_ids=keep) if keep else 0
    if moved and relabel is not None:
        relabel(moved[start:start + _RELABEL_BATCH] for start in range(0, len(moved), _RELABEL_BATCH))
    return Reused(n=copied + len(moved), from_run=run_id, source=run_id, cutoff=cutoff, n_relabelled=len(moved))


def reuse_baselines(db: Path, *, eval_run_id: str, source_run: str | None, export_id: str, split: str,
                    examples: list[EvalExample], baselines: tuple[str, ...]) -> tuple[int, str | None]:
    """Copy into ``eval_run_id`` the baselines' stored predictions of ``source_run`` that a run from
    scratch would make again, and return how many examples got all of them, or why none did.

    A baseline's prediction is a function of what it learnt (the channel, label and responder of every
    train example), of the export's labels, and of the example (its channel, earlier participants,
    mentions, responder, label, whether the responder spoke before); it reads no message. So when the
    two exports' train splits and labels are the same (the time split kept its boundary:
    beep.export.api._time_boundary), the stored predictions of every unchanged example are kept."""
    from beep.evaluate.store import copy_models_predictions

    if source_run is None:
        return 0, "no earlier run of the model to keep the baselines' predictions from"
    by_id = {ex.example_id: ex for ex in examples}
    with connect(db, read_only=True) as con:
        row = con.execute("select export_id from eval_runs where eval_run_id = ?", [source_run]).fetchone()
        if row is None:
            return 0, f"run {source_run} is gone"
        run_export = str(row[0])
        differ = con.execute(
            """
            with a as (select example_id, channel_id, label, responder_user_id from export_examples
                       where export_id = ? and split = 'train'),
                 b as (select example_id, channel_id, label, responder_user_id from export_examples
                       where export_id = ? and split = 'train'),
                 la as (select label, user_id, user_name from export_labels where export_id = ?),
                 lb as (select label, user_id, user_name from export_labels where export_id = ?)
            select (select count(*) from (select * from a except all select * from b))
                 + (select count(*) from (select * from b except all select * from a)),
                   (select count(*) from (select * from la except all select * from lb))
                 + (select count(*) from (select * from lb except all select * from la))
            """, [export_id, run_export, export_id, run_export]).fetchone()
        if differ[0]:
            return 0, f"the train split differs from that of run {source_run}'s export (the baselines learn from it)"
        if differ[1]:
            return 0, f"the labels differ from those of run {source_run}'s export"
        same = " and ".join(f"now.{c} is not distinct from old.{c}" for c in (*_EXAMPLE_COLUMNS, "label"))
        rows = con.execute(
            f"""
            select p.example_id, coalesce(p.newcomer, false), p.true_label
            from predictions p
            inner join export_examples old on old.export_id = ? and old.example_id = p.example_id and old.split = ?
            inner join export_examples now on now.export_id = ? and now.example_id = p.example_id and now.split = ?
            where p.eval_run_id = ? and p.model = ? and {same}
            """, [run_export, split, export_id, split, source_run, baselines[0]]).fetchall()
    keep = [eid for eid, newcomer, true_label in rows
            if (ex := by_id.get(eid)) is not None and ex.newcomer == bool(newcomer) and ex.true_label == true_label]
    if not keep:
        return 0, f"no example of run {source_run} is unchanged"
    copied = copy_models_predictions(db, from_run=source_run, to_run=eval_run_id, models=baselines, example_ids=keep)
    return min(copied.values()), None


#: Stored predictions read per batch while deciding which to keep.
_READ_BATCH = 10_000

#: Relabelled predictions stored per insert (all of them in one transaction: one checkpoint of the DuckDB file,
#: where a transaction a batch took 5.2 s of 21.5 s for 94,863 relabelled predictions at 1,000,000 messages).
_RELABEL_BATCH = 5000


# -- the alert replay's model rankings -----------------------------------------------------------

Ranking = tuple[tuple[str, float], ...]


def rankings_file(artifacts_dir: Path, eval_run_id: str) -> Path:
    """Where a run keeps its alert replay's model rankings (beside its other artifacts)."""
    return artifacts_dir / "evaluate" / eval_run_id / "alert-rankings.pickle.zlib"


class KeptRankings:
    """The alert replay's ``model_rankings`` (beep.evaluate.alert_replay.replay_alerts) that takes the
    rankings an earlier run of the same model stored for moments written before ``cutoff`` (the ranking
    at a moment is a function of the model and the messages up to it: the argument of the module
    docstring) and asks ``inner`` (a RankerRankings) for the others; :meth:`save` stores them all for the
    next run. Only the people at or above ``floor`` (the replay's lowest threshold, below which it drops
    them) are stored: the replay's curve, operating points and alerts are the same."""

    def __init__(self, inner: Any, kept: dict[str, tuple[float, Ranking, tuple[str | None, ...]]], floor: float) -> None:
        self.inner, self.kept, self.floor = inner, kept, floor
        self.n_kept = 0
        self._all: dict[str, tuple[float, Ranking]] = {}

    def __call__(self, moments: Any) -> dict[str, Ranking]:
        out: dict[str, Ranking] = {}
        rest = []
        for m in moments:
            hit = self.kept.get(m.key)
            if hit is not None and hit[0] == m.at:
                out[m.key] = hit[1]
                self._all[m.key] = (m.at, hit[1])
            else:
                rest.append(m)
        self.n_kept = len(out)
        if rest:
            fresh = self.inner(rest)
            at = {m.key: m.at for m in rest}
            for key, ranking in fresh.items():
                out[key] = ranking
                self._all[key] = (at[key], ranking)
        return out

    def reason(self, key: str, person: str) -> str | None:
        hit = self.kept.get(key)
        if hit is not None:
            people = [u for u, _ in hit[1]]
            return hit[2][people.index(person)] if person in people else None
        return self.inner.reason(key, person)

    def save(self, path: Path) -> None:
        """Write every moment's ranking (people at or above the floor, with their reasons)."""
        import pickle
        import zlib

        rows = {}
        for key, (at, ranking) in self._all.items():
            kept = tuple((u, p) for u, p in ranking if p >= self.floor)
            hit = self.kept.get(key)
            if hit is not None and hit[1] is ranking and len(kept) == len(ranking):
                reasons = hit[2]  # a kept ranking, whole: its stored reasons, in its order (3.5 s at 1M messages)
            else:
                reasons = tuple(self.reason(key, u) for u, _ in kept)
            rows[key] = (at, kept, reasons)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(zlib.compress(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL), 1))
        tmp.replace(path)


def kept_rankings(artifacts_dir: Path, reused: Reused) -> dict[str, tuple[float, Ranking, tuple[str | None, ...]]]:
    """The model rankings the source run of ``reused`` stored for moments written before its cutoff ({}
    when there is none, or its file is missing or unreadable: then every moment is ranked again)."""
    import pickle
    import zlib
    from datetime import datetime, timezone

    if reused.source is None:
        return {}
    path = rankings_file(artifacts_dir, reused.source)
    try:
        rows = pickle.loads(zlib.decompress(path.read_bytes()))
    except (OSError, zlib.error, pickle.UnpicklingError, EOFError, ValueError):
        return {}

    def day(at: float) -> str:
        return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d")

    return {key: row for key, row in rows.items() if reused.cutoff is None or day(row[0]) < reused.cutoff}


# -- the alert replay's pass states ------------------------------------------------------------------

#: Bumped when what a pass state holds changes: an older file is then not read (the passes are made whole).
PASSES_VERSION = 1


def passes_file(artifacts_dir: Path, eval_run_id: str) -> Path:
    """Where a run keeps the states of its alert replay's passes over the evaluated period."""
    return artifacts_dir / "evaluate" / eval_run_id / "alert-passes.pickle.zlib"


def save_passes(path: Path, key: str, at: float, open_conversations: frozenset[str],
                states: Mapping[str, Mapping[float, Any]]) -> None:
    """Write the pass states (beep.evaluate.alert_replay.ReplayResult.passes) keyed by ``key``
    (alert_replay.passes_key at ``at``)."""
    import pickle
    import zlib

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(zlib.compress(pickle.dumps(
        {"version": PASSES_VERSION, "key": key, "at": at, "open": sorted(open_conversations),
         "states": {k: dict(v) for k, v in states.items()}},
        protocol=pickle.HIGHEST_PROTOCOL), 1))
    tmp.replace(path)


def kept_passes(artifacts_dir: Path, reused: Reused, key_at: Callable[[float], str | None],
                read_until: str | None) -> Any:
    """The pass states the source run of ``reused`` saved (alert_replay.KeptPasses), when a replay now
    would reach the same ones: the same key at their moment (``key_at``: alert_replay.passes_key), that
    run read the messages up to it (``read_until``: the last message time its snapshot recorded), and
    none of the messages before it changed since (``reused.cutoff``: the first changed day is not
    before its day). None otherwise, or when the file is missing or unreadable."""
    import pickle
    import zlib
    from datetime import datetime, timezone

    from beep.evaluate.alert_replay import KeptPasses, PassState

    if reused.source is None or not read_until:
        return None
    try:
        saved = pickle.loads(zlib.decompress(passes_file(artifacts_dir, reused.source).read_bytes()))
        at = float(saved["at"])
        read = datetime.fromisoformat(str(read_until)).replace(tzinfo=timezone.utc).timestamp()
        whole = saved["version"] == PASSES_VERSION and all(
            isinstance(state, PassState) for by in saved["states"].values() for state in by.values())
    except (OSError, zlib.error, pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError,
            ImportError):
        return None
    if not whole:
        return None
    day = datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d")
    if read < at or (reused.cutoff is not None and reused.cutoff < day):
        return None
    if saved.get("key") is None or saved["key"] != key_at(at):
        return None
    return KeptPasses(at, frozenset(saved["open"]), saved["states"])
