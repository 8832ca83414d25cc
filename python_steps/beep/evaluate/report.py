"""`beep report`: one self-contained HTML file for an evaluation run.

Everything comes from DuckDB (eval_runs, metrics, predictions, export_labels); the charts are PNGs
drawn with matplotlib's Agg backend and embedded as base64, so the file opens anywhere, offline,
and can be mailed as is.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from beep.config import Paths  # noqa: E402
from beep.db import connect, table_exists  # noqa: E402
from beep.evaluate.api import model_order  # noqa: E402
from beep.evaluate.baselines import BASELINES  # noqa: E402
from beep.evaluate.dataset import EvaluationInputError  # noqa: E402
from beep.evaluate.metrics import NIL_LABEL, UNKNOWN, label_sort_key  # noqa: E402
from beep.evaluate.store import RunRow, get_run  # noqa: E402
from beep.prune import refuse_pruned  # noqa: E402

#: The rows of the comparison tables (metrics as rows, models as columns, so any number of baselines
#: fits the page), in groups: what the product is about first. (metric, name shown, what it means)
TABLE_GROUPS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("The next reply: is the first person ranked the one who answered (not the app's alerts: see the alert replay)", (
        ("alert_precision_person", "next-reply precision (person)", "of the examples whose best answer is a person (not nil), the share where that person answered next"),
        ("alert_recall_person", "next-reply recall (person)", "of the examples someone answered, the share whose best answer was that person"),
        ("alert_precision_anyone", "next-reply precision (anyone)", "of the examples whose best answer is a person, the share where someone did answer"),
        ("alert_recall_anyone", "next-reply recall (anyone)", "of the examples someone answered, the share whose best answer was a person at all"),
    )),
    ("People ranked", (
        ("person_top_1", "person top-1", "the person who answered is the first person ranked"),
        ("person_top_5", "person top-5", "... among the first 5 people ranked"),
        ("outsider_top_1", "outsider top-1", "newcomers: ranking only people not yet in the conversation, the responder is first"),
        ("outsider_top_5", "outsider top-5", "newcomers: ... among the first 5 of them"),
    )),
    ("Labels (the export's label classes)", (
        ("accuracy", "accuracy", "the first label is the true one (nil = nobody)"),
        ("top_3_accuracy", "label top-3", "the true label is among the first 3"),
        ("f1_macro", "macro F1", "F1 averaged over labels, rare ones counting as much as busy ones"),
        ("f1_weighted", "weighted F1", "F1 averaged over labels, weighted by support"),
        ("alert_precision_right_person", "next-reply precision (label)", "as next-reply precision (person), by label"),
        ("alert_recall_right_person", "next-reply recall (label)", "as next-reply recall (person), by label"),
        ("unknown_rate", "unknown outputs", "share of outputs that decode to no label (lower is better)"),
    )),
)
#: Every metric the comparison tables show.
TABLE_METRICS: tuple[str, ...] = tuple(m for _, rows in TABLE_GROUPS for m, _, _ in rows)
#: Metrics where lower is better (a baseline "beats" the model when its value is lower).
LOWER_IS_BETTER: frozenset[str] = frozenset({"unknown_rate"})
#: The metrics the model-vs-baselines chart shows, per slice (outsider_* exist on the newcomer slice only).
CHART_METRICS: dict[str, tuple[str, ...]] = {
    "all": ("person_top_1", "person_top_5", "alert_precision_person", "alert_recall_person", "f1_macro"),
    "newcomer": ("outsider_top_1", "outsider_top_5", "alert_precision_person", "alert_recall_person", "f1_macro"),
}
_CHART_LABELS = {
    "person_top_1": "person\ntop-1", "person_top_5": "person\ntop-5", "outsider_top_1": "outsider\ntop-1",
    "outsider_top_5": "outsider\ntop-5", "alert_precision_person": "next-reply\nprecision", "alert_recall_person": "next-reply\nrecall",
    "f1_macro": "label\nmacro F1",
}
#: How the report is recognised (`beep report --out` overwrites only files that carry it).
GENERATOR_MARK = '<meta name="generator" content="beep report">'
#: The evaluated model is drawn in this colour; baselines in the others, in order.
MODEL_COLOUR = "#d62728"
BASELINE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f")
#: Largest k of the top-k curve.
MAX_K = 10


@dataclass(frozen=True)
class ReportData:
    run: RunRow
    overall: dict[str, dict[str, dict[str, float | None]]]  # model -> slice -> metric -> value
    per_label: list[tuple[str, float | None, float | None, float | None, int]]  # label, p, r, f1, support
    names: dict[str, str]  # label -> person
    pairs: list[tuple[str, str | None, int | None, bool]]  # model's (true, predicted, rank, newcomer)
    ranks: dict[str, list[int | None]]  # model or baseline -> the responder's rank among the people ranked (all examples)
    n_newcomer: int
    refined: bool = False  # the export's nil labels come from `beep refine`
    ranked_depth: dict[str, int] = field(default_factory=dict)  # model -> longest stored ranking
    #: The previous finished run of the same kind (eval_runs.run_kind) and its model's overall
    #: metrics (slice -> metric -> value), to show what changed since.
    previous_run: str | None = None
    previous: dict[str, dict[str, float | None]] = field(default_factory=dict)
    #: The alert replay's curve on the evaluated period: (model, min_probability, alerts, precision,
    #: recall, alerts per person per day, is the operating point), when the run has one.
    alert_curve: list[tuple[str, float, int, float | None, float | None, float | None, bool]] = field(default_factory=list)
    #: The dataset was built from the bundled (synthetic) sample workspace.
    synthetic: bool = False
    #: A sample of the replay's alerts at each ranker's operating point: (model, when, channel, person,
    #: probability, reason, outcome), time order (table alert_replay_alerts).
    alert_sample: list[tuple[str, datetime, str, str, float, str | None, str]] = field(default_factory=list)


def _png(fig: "plt.Figure") -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def utc_text(value: object) -> str:
    """A timestamp as ``2026-01-05 14:03:09 UTC``: naive ones are UTC (Beep's connections use
    TimeZone UTC), aware ones are converted; anything else is shown as it is."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    return "–" if value is None else str(value)


def load_report_data(con: duckdb.DuckDBPyConnection, eval_run_id: str) -> ReportData:
    if not table_exists(con, "eval_runs"):
        raise EvaluationInputError("no evaluation runs in this DuckDB file yet: run `beep evaluate` first")
    run = get_run(con, eval_run_id)
    if run is None:
        raise EvaluationInputError(f"eval run {eval_run_id!r} is not in table eval_runs: see `select * from eval_runs`")
    if run.status != "finished":
        raise EvaluationInputError(
            f"eval run {eval_run_id} has status {run.status!r}: finish it first by running the same `beep evaluate` again"
        )
    overall: dict[str, dict[str, dict[str, float | None]]] = {}
    for model, slice_, metric, value in con.execute(
        "select model, slice, metric, value from metrics where eval_run_id = ? and label is null", [eval_run_id]
    ).fetchall():
        overall.setdefault(model, {}).setdefault(slice_, {})[metric] = value
    label_rows = con.execute(
        """
        select label,
               max(value) filter (where metric = 'precision'),
               max(value) filter (where metric = 'recall'),
               max(value) filter (where metric = 'f1'),
               max(support)
        from metrics where eval_run_id = ? and model = ? and slice = 'all' and label is not null
        group by label
        """,
        [eval_run_id, run.model],
    ).fetchall()
    per_label = sorted(((str(r[0]), r[1], r[2], r[3], int(r[4] or 0)) for r in label_rows), key=lambda r: label_sort_key(r[0]))
    names = {
        str(label): (name or uid or str(label))
        for label, uid, name in con.execute(
            "select label, user_id, user_name from export_labels where export_id = ?", [run.export_id]
        ).fetchall()
    }
    if NIL_LABEL in names:
        names[NIL_LABEL] = "nobody"
    preds = con.execute(
        "select model, true_label, predicted_label, responder_rank, coalesce(newcomer, false) from predictions "
        "where eval_run_id = ? order by example_id",
        [eval_run_id],
    ).fetchall()
    pairs = [(t, p, r, bool(nc)) for m, t, p, r, nc in preds if m == run.model]  # r: the responder's rank
    ranks: dict[str, list[int | None]] = {}
    for m, _t, _p, r, _nc in preds:
        ranks.setdefault(m, []).append(r)
    refined = False
    if table_exists(con, "exports"):
        row = con.execute("select refined from exports where export_id = ?", [run.export_id]).fetchone()
        refined = bool(row and row[0])
    depth = dict(
        con.execute(
            "select model, max(json_array_length(top_people)) from predictions where eval_run_id = ? group by model",
            [eval_run_id],
        ).fetchall()
    )
    from beep.evaluate.store import previous_run_of_kind

    previous_run = previous_run_of_kind(con, eval_run_id)
    previous: dict[str, dict[str, float | None]] = {}
    if previous_run is not None:
        for slice_, metric, value in con.execute(
            """select m.slice, m.metric, m.value from metrics m join eval_runs r on r.eval_run_id = m.eval_run_id
               and m.model = r.model where m.eval_run_id = ? and m.label is null""",
            [previous_run],
        ).fetchall():
            previous.setdefault(slice_, {})[metric] = value
    curve = []
    if table_exists(con, "alert_replay_curve"):
        curve = [(str(m), float(t), int(a), p, r, apd, bool(op)) for m, t, a, p, r, apd, op in con.execute(
            "select model, min_probability, alerts, precision, recall, alerts_per_person_day, is_operating_point "
            "from alert_replay_curve where eval_run_id = ? and period = 'evaluated' order by model, min_probability",
            [eval_run_id]).fetchall()]
    return ReportData(run, overall, per_label, names, pairs, ranks, sum(1 for p in pairs if p[3]), refined,
                      {str(m): int(d or 0) for m, d in depth.items()}, previous_run, previous, curve,
                      _built_from_sample(con), _alert_sample(con, eval_run_id))


def _alert_sample(con: duckdb.DuckDBPyConnection, eval_run_id: str) -> list[tuple[str, datetime, str, str, float, str | None, str]]:
    """The run's rows of alert_replay_alerts, people and channels by name where the dataset has them."""
    if not table_exists(con, "alert_replay_alerts"):
        return []
    people = "(select user_id, any_value(user_name) as user_name from stg_slack__users group by user_id)" \
        if table_exists(con, "stg_slack__users") else "(select null::varchar as user_id, null::varchar as user_name)"
    channels = ("(select conversation_id, any_value(coalesce(channel_name, channel_folder)) as channel_name "
                "from int_conversations group by conversation_id)") if table_exists(con, "int_conversations") \
        else "(select null::varchar as conversation_id, null::varchar as channel_name)"
    rows = con.execute(
        f"""
        select a.model, a.alert_at, coalesce(c.channel_name, a.channel), coalesce(u.user_name, a.person_id),
               a.probability, a.reason, a.outcome
        from alert_replay_alerts a
        left join {people} u on u.user_id = a.person_id
        left join {channels} c on c.conversation_id = a.conversation_id
        where a.eval_run_id = ? order by a.model, a.alert_at, a.person_id
        """,
        [eval_run_id],
    ).fetchall()
    return [(str(m), at, str(ch or ""), str(p), float(pr), r, str(o)) for m, at, ch, p, pr, r, o in rows]


def _built_from_sample(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the last build read the bundled sample workspace (its wording: synthetic people)."""
    from beep.config import SAMPLE_EXPORT

    if not table_exists(con, "pipeline_steps"):
        return False
    row = con.execute("select json_extract_string(result, '$.export_path') from pipeline_steps where step = 'build' "
                      "order by finished_at desc limit 1").fetchone()
    return bool(row and row[0]) and Path(row[0]).resolve() == SAMPLE_EXPORT.resolve()


def chart_alert_curve(data: ReportData) -> str:
    """Precision against recall of every ranker's alert replay, its operating point marked."""
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    models = list(dict.fromkeys(c[0] for c in data.alert_curve))
    models.sort(key=lambda m: (not m.startswith(data.run.model), "baseline" in m, m))
    for i, model in enumerate(models):
        points = [c for c in data.alert_curve if c[0] == model and c[3] is not None and c[4] is not None]
        if not points:
            continue
        colour = MODEL_COLOUR if model == data.run.model else BASELINE_COLOURS[i % len(BASELINE_COLOURS)]
        ax.plot([c[4] for c in points], [c[3] for c in points], marker=".", label=model, color=colour)
        for c in points:
            if c[6]:
                ax.plot([c[4]], [c[3]], marker="*", markersize=14, color=colour)
    ax.set_xlabel("recall: joins alerted before they happened")
    ax.set_ylabel("precision: alerts acted on")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper right")
    ax.set_title("alert replay, evaluated period (★ operating point)")
    return _png(fig)


def _alert_table(data: ReportData) -> str:
    esc = html.escape
    rows = []
    chosen = [c for c in data.alert_curve if c[6]]
    chosen.sort(key=lambda c: (not c[0].startswith(data.run.model), "baseline" in c[0], c[0]))
    for model, threshold, alerts, precision, recall, apd, _ in chosen:
        reached = data.overall.get(model, {}).get("alert_replay", {}).get("target_reached")
        cls = ' class="model"' if model == data.run.model else ""
        rows.append(f"<tr><th{cls}>{esc(model)}</th><td>{threshold:g}</td><td>{_fmt(precision)}</td><td>{_fmt(recall)}</td>"
                    f"<td>{_fmt(apd)}</td><td>{alerts:,}</td><td>{'yes' if reached else 'no'}</td></tr>")
    return ("<table><thead><tr><th>model</th><th>min probability</th><th>precision</th><th>recall</th>"
            "<th>alerts / person / day</th><th>alerts</th><th>target met on the tune period</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


#: Alerts the report lists (of the stored sample: evenly spread in time).
SHOWN_ALERTS = 20
_OUTCOME_TEXT = {"joined": "joined: wrote in the conversation", "reacted": "reacted to it", "nothing": "nothing"}


def _alert_samples(data: ReportData) -> str:
    """Some alerts of the evaluated model (else of the first ranker with any) at its operating point:
    when, where, whom, why, and what that person did."""
    esc = html.escape
    models = list(dict.fromkeys(a[0] for a in data.alert_sample))
    if not models:
        return ""
    models.sort(key=lambda m: (m != data.run.model, "baseline" in m, m))
    model = models[0]
    sample = [a for a in data.alert_sample if a[0] == model]
    shown = sample if len(sample) <= SHOWN_ALERTS else [sample[(i * len(sample)) // SHOWN_ALERTS]
                                                        for i in range(SHOWN_ALERTS)]
    counts = Counter(a[6] for a in sample)
    useful = counts["joined"] + counts["reacted"]
    rows = "".join(
        f'<tr class="outcome-{esc(o)}"><td>{esc(utc_text(at))}</td><td>#{esc(ch)}</td><td>{esc(person)}</td>'
        f"<td>{p:.3f}</td><td style=\"text-align:left\">{esc(reason or '–')}</td>"
        f"<td style=\"text-align:left\">{'useful' if o != 'nothing' else 'not useful'} ({esc(_OUTCOME_TEXT.get(o, o))})</td></tr>"
        for _m, at, ch, person, p, reason, o in shown)
    return (f'<h3 id="alert-sample">Alerts {esc(model)} would have sent (a sample)</h3>'
            f"<p>{len(shown)} of the {len(sample):,} alerts kept from the evaluated period at its operating point, "
            f"evenly spread in time: {useful:,} of those {len(sample):,} were useful ({counts['joined']:,} joined, "
            f"{counts['reacted']:,} reacted), {counts['nothing']:,} led to nothing within the alert window.</p>"
            '<div class="wrap"><table class="alerts"><thead><tr><th>when</th><th>channel</th><th>person</th>'
            "<th>probability</th><th>reason given</th><th>outcome</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def _alert_section(data: ReportData) -> str:
    if not data.alert_curve:
        return ("<p>This run has no alert replay (it was evaluated before Beep replayed the app's decision, or its "
                "model is not the local ranker and no period could be replayed).</p>")
    return (f'<img id="chart-alert-curve" alt="alert replay precision and recall" src="{chart_alert_curve(data)}">'
            + _alert_table(data) + _alert_samples(data)
            + "<p class=\"meaning\">At every message of the evaluated period each ranker ranks people; the app's own "
              "policy (never the author, people in the conversation or people Slack notifies; once per conversation "
              "and person; the hourly limit) turns the ranking into DMs at a threshold. Precision: the alerted person "
              "wrote in the conversation (or reacted to it) within the alert window. Recall: of the people who joined "
              "a conversation someone else started, the share alerted before. Each ranker's operating point is the "
              "lowest threshold whose precision reached the target on the newest part of the train period "
              "(docs/evaluation.md)." + _alert_settings(data) + "</p>")


def _alert_settings(data: ReportData) -> str:
    """The settings the alert numbers depend on, as this run recorded them (eval_runs.settings)."""
    settings = data.run.settings or {}
    window, target = settings.get("alert_window_minutes"), settings.get("target_precision")
    said = []
    if window is not None:
        said.append(f"alert window {float(window):g} min")
    if target is not None:
        said.append(f"target precision {float(target):g}")
    return f" This run: {', '.join(said)}." if said else ""


#: The metrics the "since the previous run" table shows.
DELTA_METRICS: tuple[str, ...] = ("person_top_1", "person_top_5", "outsider_top_5", "alert_precision_person",
                                  "alert_recall_person", "f1_macro")


def _delta_table(data: ReportData) -> str:
    """The model's headline metrics now, in the previous run of the same kind, and the change."""
    esc = html.escape
    if data.previous_run is None:
        return ("<p>This is the first finished evaluation of its kind (provider, model variant, export format, split and "
                f"refinement, evaluated split: <code>{esc(data.run.run_kind or '?')}</code>): nothing to compare with.</p>")
    mine = data.overall.get(data.run.model, {})
    rows = []
    for slice_ in ("all", "newcomer"):
        for metric in DELTA_METRICS:
            now, before = mine.get(slice_, {}).get(metric), data.previous.get(slice_, {}).get(metric)
            if now is None and before is None:
                continue
            delta = "–" if now is None or before is None else f"{now - before:+.3f}"
            shown = next((name for _, group in TABLE_GROUPS for m, name, _ in group if m == metric), metric)
            rows.append(f"<tr><td>{esc(slice_)}</td><td>{esc(shown)}</td><td>{_fmt(before)}</td><td>{_fmt(now)}</td>"
                        f"<td>{delta}</td></tr>")
    return (f"<p>Against run <code>{esc(data.previous_run)}</code>, the previous finished run of the same kind "
            f"(<code>{esc(data.run.run_kind or '?')}</code>); what each ran on is in <code>eval_runs.context</code>.</p>"
            "<table><tr><th>slice</th><th>metric</th><th>previous</th><th>this run</th><th>change</th></tr>"
            + "".join(rows) + "</table>")


def _label_name(data: ReportData, label: str) -> str:
    if label == UNKNOWN:
        return "(unreadable)"
    name = data.names.get(label)
    return f"{label} · {name}" if name and name != label else label


def _colour(data: ReportData, models: list[str], model: str) -> str:
    if model == data.run.model:
        return MODEL_COLOUR
    others = [m for m in models if m != data.run.model]
    return BASELINE_COLOURS[others.index(model) % len(BASELINE_COLOURS)]


def chart_vs_baselines(data: ReportData) -> str:
    models = model_order(data.run.model, list(data.overall))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    width = 0.8 / max(1, len(models))
    for ax, slice_ in zip(axes, ("all", "newcomer")):
        metrics = CHART_METRICS[slice_]
        for i, model in enumerate(models):
            values = [data.overall.get(model, {}).get(slice_, {}).get(m) or 0.0 for m in metrics]
            xs = [j + i * width for j in range(len(metrics))]
            ax.bar(xs, values, width, label=model, color=_colour(data, models, model))
        ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(metrics))])
        ax.set_xticklabels([_CHART_LABELS.get(m, m) for m in metrics], fontsize=8)
        n = data.run.n if slice_ == "all" else data.n_newcomer
        ax.set_title(f"{'all examples' if slice_ == 'all' else 'newcomer slice'} (n={n})")
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(models), 5), fontsize=8, bbox_to_anchor=(0.5, -0.08))
    return _png(fig)


#: Charts show at most this many labels (the most frequent ones): a real workspace has hundreds,
#: and a chart of 999 labels is unreadable and takes gigabytes to draw.
CHART_LABELS = 25


def _chart_rows(data: ReportData) -> list[tuple[str, float | None, float | None, float | None, int]]:
    """The per-label rows a chart shows: the CHART_LABELS with the most support, in label order."""
    top = sorted(data.per_label, key=lambda r: (-r[4], label_sort_key(r[0])))[:CHART_LABELS]
    return sorted(top, key=lambda r: label_sort_key(r[0]))


def chart_per_label(data: ReportData) -> str:
    rows = _chart_rows(data)
    labels = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(labels) + 2), 4))
    ax.bar(range(len(labels)), [r[3] or 0.0 for r in rows], color="#1f77b4", label="F1")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([_label_name(data, lab) for lab in labels], rotation=60, ha="right", fontsize=8)
    ax2 = ax.twinx()
    ax2.plot(range(len(labels)), [r[4] for r in rows], "o", color="#ff7f0e", label="support")
    ax2.set_ylabel("support (examples)")
    ax2.set_ylim(0, max([r[4] for r in rows] + [1]) * 1.1)
    shown = "" if len(rows) == len(data.per_label) else f" (the {len(rows)} most frequent of {len(data.per_label)})"
    ax.set_title(f"{data.run.model}: F1 (bars) and support (dots) per label{shown}")
    return _png(fig)


def chart_confusion(data: ReportData) -> str:
    support = Counter(t for t, _, _, _ in data.pairs)
    kept = {t for t, _ in sorted(support.items(), key=lambda kv: (-kv[1], label_sort_key(kv[0])))[:CHART_LABELS]}
    rest = "(other labels)"

    def shown(label: str | None) -> str:
        if label is None:
            return UNKNOWN
        return label if label in kept else rest

    pairs = [(shown(t), shown(p)) for t, p, _, _ in data.pairs]
    def order(label: str) -> tuple[bool, bool, tuple[int, int, str]]:
        return label == UNKNOWN, label == rest, label_sort_key(label) if label not in (UNKNOWN, rest) else (9, 0, "")

    truth = sorted({t for t, _ in pairs}, key=order)
    predicted = sorted({p for _, p in pairs} | set(truth), key=order)
    counts = Counter(pairs)
    matrix = [[counts[(t, p)] for p in predicted] for t in truth]
    share = [[c / max(1, sum(row)) for c in row] for row in matrix]
    size = max(5, 0.45 * len(predicted) + 2)
    fig, ax = plt.subplots(figsize=(size, max(4, 0.45 * len(truth) + 2)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(matrix):
        for j, c in enumerate(row):
            if c:
                ax.text(j, i, str(c), ha="center", va="center", fontsize=7, color="white" if share[i][j] > 0.6 else "black")
    ax.set_xticks(range(len(predicted)))
    ax.set_xticklabels([p if p == rest else _label_name(data, p) for p in predicted], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(truth)))
    ax.set_yticklabels([t if t == rest else _label_name(data, t) for t in truth], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{data.run.model}: confusion matrix (colour = share of the true label's row)")
    return _png(fig)


def topk_curve(ranks: list[int | None], max_k: int = MAX_K) -> list[float]:
    n = len(ranks)
    return [sum(1 for r in ranks if r is not None and r <= k) / n if n else 0.0 for k in range(1, max_k + 1)]


def chart_topk(data: ReportData) -> str:
    fig, ax = plt.subplots(figsize=(7, 4))
    ks = list(range(1, MAX_K + 1))
    models = model_order(data.run.model, list(data.ranks))
    capped = []
    for model in models:
        style = {"linewidth": 2.5} if model == data.run.model else {"linewidth": 1, "linestyle": "--"}
        style["color"] = _colour(data, models, model)
        curve = topk_curve(data.ranks[model])
        # a model's ranks are only known as deep as the people it returned (an OpenAI model's list is
        # capped at 5 or 20 alternatives)
        depth = data.ranked_depth.get(model) or MAX_K
        upto = max(1, min(MAX_K, depth))
        if upto < MAX_K:
            capped.append(f"{model}: top {upto} only")
        ax.plot(ks[:upto], curve[:upto], marker="o", markersize=3, label=model, **style)
    if capped:
        ax.text(0.99, 0.02, "ranks known " + "; ".join(capped), transform=ax.transAxes, ha="right", fontsize=7)
    ax.set_xlabel("k (people alerted)")
    ax.set_ylabel("share of replies whose responder is among the first k people")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("person top-k: the person who wrote the reply is among the first k ranked")
    return _png(fig)


def _breakable(name: str) -> str:
    """A model name that may wrap after ``:``, ``_`` and ``-`` (so five columns fit the page)."""
    return re.sub(r"([:_-])", r"\1<wbr>", html.escape(name))


def _model_heading(model: str, evaluated: str) -> str:
    title = html.escape(model)
    if model == evaluated:
        return f'<th class="model" title="{title}">model<br>{_breakable(model)}</th>'
    if model.startswith("baseline:"):
        return f'<th title="{title}">baseline<br>{_breakable(model.removeprefix("baseline:"))}</th>'
    return f'<th title="{title}">{_breakable(model)}</th>'


def _comparison_table(data: ReportData, slice_: str) -> str:
    """Metrics as rows and models as columns (the evaluated model first); the best value of a row in
    bold, and ▼ beside the model's value when a baseline beats it."""
    evaluated = data.run.model
    models = model_order(evaluated, list(data.overall))
    values = {m: data.overall.get(m, {}).get(slice_, {}) for m in models}
    head = "".join(_model_heading(m, evaluated) for m in models)
    body = []
    for group, rows in TABLE_GROUPS:
        shown = [r for r in rows if any(values[m].get(r[0]) is not None for m in models)]
        if not shown:
            continue
        body.append(f'<tr class="group"><th colspan="{len(models) + 1}">{html.escape(group)}</th></tr>')
        for metric, name, meaning in shown:
            row = {m: values[m].get(metric) for m in models}
            known = [v for v in row.values() if v is not None]
            lower = metric in LOWER_IS_BETTER
            best = (min(known) if lower else max(known)) if known else None
            baselines = [v for m, v in row.items() if m != evaluated and v is not None]
            mine = row.get(evaluated)
            beaten = mine is not None and baselines and ((min(baselines) < mine) if lower else (max(baselines) > mine))
            cells = []
            for m in models:
                v = row[m]
                text = _fmt(v) + (' <span class="beaten" title="a baseline beats the model here">▼</span>'
                                  if m == evaluated and beaten else "")
                classes = " ".join(c for c in ("model" if m == evaluated else "", "best" if v is not None and v == best else "") if c)
                cells.append(f'<td class="{classes}">{text}</td>' if classes else f"<td>{text}</td>")
            body.append(f'<tr><th title="{html.escape(meaning)}">{html.escape(name)}'
                        f'<div class="meaning">{html.escape(meaning)}</div></th>{"".join(cells)}</tr>')
    return (f'<div class="wrap"><table class="metrics"><thead><tr><th>metric</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _mention_table(data: ReportData) -> str:
    """Person top-1 and top-5 of every model on the two mention slices (beep.evaluate.metrics.MENTION_SLICES),
    the mention rule (baseline:mentioned_then_channel) among them; ▼ where a baseline beats the model."""
    evaluated = data.run.model
    models = [m for m in model_order(evaluated, list(data.overall))
              if any(data.overall[m].get(s, {}).get("n") for s in ("mentioned", "responder_mentioned"))]
    if not models:
        return "<p>No example of this split has an @-mention in its window.</p>"
    columns = [(s, metric) for s in ("mentioned", "responder_mentioned") for metric in ("person_top_1", "person_top_5")]
    best = {c: max((v for m in models if (v := data.overall[m].get(c[0], {}).get(c[1])) is not None), default=None)
            for c in columns}
    body = []
    for m in models:
        cells = []
        for c in columns:
            v = data.overall[m].get(c[0], {}).get(c[1])
            beaten = m == evaluated and v is not None and best[c] is not None and best[c] > v
            mark = ' <span class="beaten" title="a baseline beats the model here">▼</span>' if beaten else ""
            cells.append(f'<td class="{"best" if v is not None and v == best[c] else ""}">{_fmt(v)}{mark}</td>')
        name = "model " + m if m == evaluated else m
        body.append(f'<tr><th title="{html.escape(m)}">{_breakable(name)}</th>{"".join(cells)}</tr>')
    n = {s: int(data.overall[evaluated].get(s, {}).get("n") or 0) if evaluated in data.overall else 0
         for s in ("mentioned", "responder_mentioned")}
    return (f'<div class="wrap"><table class="mentions"><thead><tr><th rowspan="2">model</th>'
            f'<th colspan="2">someone @-mentioned in the window (n={n["mentioned"]})</th>'
            f'<th colspan="2">the responder @-mentioned in it (n={n["responder_mentioned"]})</th></tr>'
            '<tr><th>person top-1</th><th>person top-5</th><th>person top-1</th><th>person top-5</th></tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>'
            "<p>The mention rule is <code>baseline:mentioned_then_channel</code> (the people @-mentioned in the "
            "window, the latest first, then the channel's regulars). The first slice is known when the app decides; "
            "the second is the rule's best case, chosen by who answered.</p>")


#: The per-label table shows this many labels (the most support); the rest are folded.
TABLE_LABELS = 20


def _per_label_table(data: ReportData) -> str:
    """The TABLE_LABELS labels with the most support (label order), the rest folded in ``<details>``."""
    def rows(items: list[tuple[str, float | None, float | None, float | None, int]]) -> str:
        return "".join(
            f"<tr><td>{html.escape(label)}</td><td>{html.escape(data.names.get(label, ''))}</td><td>{_fmt(p)}</td>"
            f"<td>{_fmt(r)}</td><td>{_fmt(f)}</td><td>{s}</td></tr>"
            for label, p, r, f, s in items
        )

    head = ('<table class="labels"><thead><tr><th>label</th><th>person</th><th>precision</th><th>recall</th>'
            "<th>F1</th><th>support</th></tr></thead><tbody>")
    by_support = sorted(data.per_label, key=lambda r: (-r[4], label_sort_key(r[0])))
    top = sorted(by_support[:TABLE_LABELS], key=lambda r: label_sort_key(r[0]))
    rest = sorted(by_support[TABLE_LABELS:], key=lambda r: label_sort_key(r[0]))
    out = head + rows(top) + "</tbody></table>"
    if rest:
        out += (f'<details class="labels-rest"><summary>{len(rest):,} more labels (support '
                f"{sum(r[4] for r in rest):,} examples in all)</summary>{head}{rows(rest)}</tbody></table></details>")
    return out


def _meaning(data: ReportData) -> str:
    model = data.overall.get(data.run.model, {})

    def best_baseline(slice_: str, metric: str) -> str | None:
        return max(
            (b for b in BASELINES if b in data.overall),
            key=lambda b: data.overall[b].get(slice_, {}).get(metric) or 0.0,
            default=None,
        )

    lines = [
        "<p>Every number is measured on the export's <b>" + html.escape(data.run.split) + "</b> split only: examples "
        "the model never saw in training. The baselines are ranked from the train split of the same export, on the "
        "same examples, so each number has its yardstick beside it.</p>",
        "<ul>",
        "<li><b>the next reply</b> (what these tables score; the app's own alerts are the alert replay above): "
        "<code>nil</code> means nobody, otherwise the first person ranked is the guess. <i>next-reply precision "
        "(person)</i>: of the guesses that name a person, how many named the person who did answer; <i>next-reply "
        "recall (person)</i>: of the examples someone answered, how many named that person. <i>anyone</i> asks only "
        "whether a person was named when someone answered.</li>",
        "<li><b>person top-k</b>: the person who answered is among the first k people ranked (whatever label the "
        "export gave them; rare responders share the label <code>other</code>). <b>outsider top-k</b> (newcomer slice): "
        "ranking only the people not yet in the conversation, the ones an alert is for.</li>",
        "<li><b>labels</b>: <b>accuracy</b> / <b>top-k</b> over the export's label classes; <b>macro F1</b> averages "
        "the F1 of every label equally, so rare responders count as much as busy ones; <b>weighted F1</b> weights "
        "them by how often they answer.</li>",
        "<li>In the tables the best value of each row is in bold; <b>▼</b> marks a value of the model that a "
        "baseline beats.</li>",
        "<li><b>newcomer slice</b>: examples whose responder had not written in the conversation yet — the people an "
        "alert is actually for. Most next responders are already in the conversation, which the "
        "<code>baseline:recent_participant</code> exploits; a model that only looks good overall but not here is "
        "of little use for alerting.</li>",
        "<li>Outputs that decode to no known label are counted as misses (<b>unknown_rate</b>), never dropped.</li>",
        "</ul>",
    ]
    for slice_, what, metric, name in (
        ("all", "on all examples", "alert_precision_person", "next-reply precision (person)"),
        ("all", "on all examples", "person_top_5", "person top-5"),
        ("newcomer", "on the newcomer slice", "outsider_top_5", "outsider top-5"),
        ("all", "on all examples", "f1_macro", "label macro F1"),
    ):
        best = best_baseline(slice_, metric)
        m = model.get(slice_, {}).get(metric)
        if best is None or m is None:
            continue
        b = data.overall[best].get(slice_, {}).get(metric)
        verdict = "above" if (m or 0) > (b or 0) else "<b>not above</b>"
        lines.append(
            f"<p>{what.capitalize()}, the model's {name} is {_fmt(m)}, {verdict} the strongest baseline "
            f"({html.escape(best)}, {_fmt(b)}).</p>"
        )
    synthetic = ("The bundled sample workspace is synthetic: its people behave by simple rules (expertise, mentions, "
                 "who is already talking), so a model can score far higher there than on a real workspace. "
                 if data.synthetic else "")
    lines.append(
        f"<p><b>What they don't mean.</b> {synthetic}With n={data.run.n} ({data.n_newcomer} newcomers) a difference of "
        "a few points can be noise. These numbers say how well the model ranks who answered next in the past; whether "
        "an alert would have been acted on is the alert replay's question (above).</p>"
    )
    if data.refined:
        lines.append(
            "<p>This export is refined: its <code>nil</code> labels (nobody to alert) are the verdicts of the "
            "`beep refine` classifier, not observed facts. A model that learns to imitate that classifier scores "
            "well on <code>nil</code> and on <i>alerting anyone</i>; those numbers measure agreement with the "
            "refiner, while <i>alerting the right person</i> and the per-person labels measure who actually "
            "answered.</p>"
        )
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;overflow-wrap:anywhere}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
.wrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0;max-width:100%}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}thead th{background:#f3f3f3;vertical-align:bottom;overflow-wrap:break-word}
tbody th{text-align:left;font-weight:normal}table.metrics tbody th{min-width:14em;max-width:26em}
.meaning{color:#777;font-size:.85em}tr.group th{background:#fafafa;font-weight:bold;text-align:left}
th.model,td.model{background:#fdeaea}td.best{font-weight:bold}.beaten{color:#c00}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dt{font-weight:bold}dd{margin:0;overflow-wrap:anywhere}
"""


def render_html(data: ReportData) -> str:
    run = data.run
    charts = {
        "vs_baselines": chart_vs_baselines(data),
        "per_label": chart_per_label(data),
        "confusion": chart_confusion(data),
        "topk": chart_topk(data),
    }
    cost = "unknown" if run.cost is None else f"${run.cost:.4f}"
    esc = html.escape
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{GENERATOR_MARK}<title>Beep evaluation {esc(run.eval_run_id)}</title>
<style>{_CSS}</style></head><body>
<h1>Beep evaluation: {esc(run.model)}</h1>
<dl>
<dt>run</dt><dd>{esc(run.eval_run_id)}</dd>
<dt>model</dt><dd>{esc(run.model)} (provider {esc(run.provider)}{', job ' + esc(run.job_id) if run.job_id else ''})</dd>
<dt>export / split</dt><dd>{esc(run.export_id)} / {esc(run.split)}</dd>
<dt>examples</dt><dd>{run.n} ({data.n_newcomer} in the newcomer slice)</dd>
<dt>started / finished</dt><dd>{esc(utc_text(run.started_at))} / {esc(utc_text(run.finished_at))}</dd>
<dt>report written</dt><dd>{esc(utc_text(datetime.now(timezone.utc)))}</dd>
<dt>cost</dt><dd>{cost}</dd>
</dl>
<h2>Alerts the app would send</h2>
{_alert_section(data)}
<h2>What these numbers mean (who writes the next reply)</h2>
{_meaning(data)}
<h2>Model vs baselines</h2>
<img id="chart-vs-baselines" alt="model vs baselines" src="{charts['vs_baselines']}">
<h3>All examples (n={run.n})</h3>
{_comparison_table(data, 'all')}
<h3>Newcomer slice (n={data.n_newcomer}: the responder had not written in the conversation yet)</h3>
{_comparison_table(data, 'newcomer')}
<h3>Where someone was @-mentioned</h3>
{_mention_table(data)}
<h2>Since the previous run of this kind</h2>
{_delta_table(data)}
<h2>Person top-k curve</h2>
<img id="chart-topk" alt="person top-k" src="{charts['topk']}">
<h2>Per-label F1 and support</h2>
<img id="chart-per-label" alt="per-label F1 and support" src="{charts['per_label']}">
<div class="wrap">{_per_label_table(data)}</div>
<h2>Confusion matrix</h2>
<img id="chart-confusion" alt="confusion matrix" src="{charts['confusion']}">
<p>Generated by <code>beep report</code> from tables eval_runs, metrics, predictions, alert_replay_curve and alert_replay_alerts (names from stg_slack__users and stg_slack__channels).</p>
</body></html>
"""


def write_report(paths: Paths, eval_run_id: str, out: Path | None = None) -> Path:
    """Render the run as one self-contained HTML file; return its path
    (default: ``<artifacts>/reports/<eval_run_id>.html``)."""
    with connect(paths.duckdb, read_only=True) as con:
        refuse_pruned(con, "eval_runs", "eval_run_id", eval_run_id, f"the predictions of run {eval_run_id}",
                      "its metrics and alert replay stay in tables metrics and alert_replay_curve; report a newer run",
                      EvaluationInputError)
        data = load_report_data(con, eval_run_id)
    target = out or paths.artifacts_dir / "reports" / f"{eval_run_id}.html"
    if target.is_dir():  # --out a folder: the report goes inside it under its usual name
        target = target / f"{eval_run_id}.html"
    if target.exists() and not is_report(target):
        raise EvaluationInputError(
            f"{target} exists and is not a Beep report: not overwritten. Give another --out (a new file name, "
            "or a folder to write <run>.html into), or move that file away."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    import os
    import tempfile

    # a temporary file of its own in the target's folder (then one rename): never a name a file of the
    # user's may have (a fixed "<out>.tmp" overwrote and removed one)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # as a plain write would make it (mkstemp's is 0600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render_html(data))
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def is_report(path: Path) -> bool:
    """Whether ``path`` is a report `beep report` wrote (the generator mark, or the title of older reports)."""
    try:
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False
    return GENERATOR_MARK in head or (head.lower().startswith("<!doctype html>") and "<title>Beep evaluation " in head)


def latest_run_id(paths: Paths) -> str:
    """The most recently finished evaluation run."""
    with connect(paths.duckdb, read_only=True) as con:
        row = None
        if table_exists(con, "eval_runs"):
            row = con.execute(
                "select eval_run_id from eval_runs where status = 'finished' order by finished_at desc limit 1"
            ).fetchone()
    if row is None:
        raise EvaluationInputError("no finished evaluation run in this DuckDB file: run `beep evaluate` first")
    return str(row[0])
