"""`beep report` renders a self-contained HTML file with the charts and the tables."""

from __future__ import annotations

import os

import base64
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from _evaluate_world import build_world
from beep.commands import report_cmd
from beep.config import Paths
from beep.evaluate.api import evaluate
from beep.evaluate.baselines import BASELINES
from beep.evaluate.dataset import EvaluationInputError
from beep.evaluate.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_renders_charts_and_tables(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    paths = Paths(duckdb=world.db, workdir=tmp_path / ".beep")
    result = evaluate(paths, model=world.model)
    path = write_report(paths, result.eval_run_id)
    assert path.exists() and path.suffix == ".html"
    text = path.read_text(encoding="utf-8")
    charts = dict(re.findall(r'id="(chart-[a-z-]+)" alt="[^"]*" src="data:image/png;base64,([^"]+)"', text))
    assert set(charts) == {"chart-vs-baselines", "chart-topk", "chart-per-label", "chart-confusion"}
    for b64 in charts.values():
        assert base64.b64decode(b64).startswith(PNG_MAGIC)
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    assert text.count('<table class="metrics">') == 2  # all examples and newcomer slice
    for name in (world.model, *BASELINES):
        assert name in text
    assert "What these numbers mean" in text and "newcomer slice" in text
    # the per-label table names the people and gives each label's support
    assert "<td>ada</td>" in text and "<td>nobody</td>" in text
    f1 = result.headline[world.model]["all"]["f1_macro"]
    assert f"{f1:.3f}" in text


def test_report_command_defaults_to_latest_run_and_errors_are_actionable(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    app = typer.Typer()
    report_cmd.register(app)
    app.command("noop")(lambda: None)  # keep typer in multi-command mode
    runner = CliRunner()
    failed = runner.invoke(app, ["report", "--db", str(world.db)])
    assert failed.exit_code == 2 and "beep evaluate" in failed.output
    paths = Paths(duckdb=world.db, workdir=tmp_path / ".beep")
    result = evaluate(paths, model=world.model)
    out = tmp_path / "r.html"
    ok = runner.invoke(app, ["report", "--db", str(world.db), "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert out.exists() and str(out) in ok.output and result.eval_run_id in out.read_text()
    with pytest.raises(EvaluationInputError, match="eval_runs"):
        write_report(paths, "ev-nope")


def test_report_shows_the_alert_and_person_metrics_flags_a_beaten_model_and_says_utc(tmp_path: Path) -> None:
    """Issue 10 item 8: the alert metrics the product is about and the person metrics are in the
    tables (metrics as rows, so any number of models fits the page), a value of the model that a
    baseline beats is marked, and every timestamp is UTC and says so."""
    world = build_world(tmp_path)
    paths = Paths(duckdb=world.db, workdir=tmp_path / ".beep")
    result = evaluate(paths, model=world.model)
    text = write_report(paths, result.eval_run_id).read_text(encoding="utf-8")
    tables = re.findall(r'<table class="metrics">.*?</table>', text, flags=re.S)
    assert len(tables) == 2
    all_table, newcomer_table = tables
    for name in ("next-reply precision (person)", "next-reply recall (person)", "person top-1", "person top-5"):
        assert f">{name}<" in all_table and f">{name}<" in newcomer_table
    # outsider top-k ranks only people not yet in the conversation: the newcomer slice only
    assert ">outsider top-1<" in newcomer_table and ">outsider top-5<" in newcomer_table
    assert "outsider top" not in all_table
    model = result.headline[world.model]
    for slice_, table in (("all", all_table), ("newcomer", newcomer_table)):
        for metric in ("alert_precision_person", "alert_recall_person", "person_top_1", "person_top_5"):
            value = model[slice_].get(metric)
            if value is not None:
                assert f"{value:.3f}" in table
    # ▼ exactly where some baseline has a better value than the model
    baselines = [m for m in result.headline if m != world.model]
    for slice_, table in (("all", all_table), ("newcomer", newcomer_table)):
        for metric, name in (("alert_precision_person", "next-reply precision (person)"), ("alert_recall_person", "next-reply recall (person)"),
                             ("person_top_1", "person top-1"), ("person_top_5", "person top-5"), ("f1_macro", "macro F1")):
            mine = model[slice_].get(metric)
            beaten = mine is not None and any((result.headline[b][slice_].get(metric) or 0) > mine for b in baselines)
            row = re.search(re.escape(name) + r"<div.*?</tr>", table, flags=re.S)
            assert row is not None and ("▼" in row.group(0)) == beaten, (slice_, metric)
    # timestamps: UTC, marked as such
    stamps = re.findall(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}( UTC)?", text)
    assert len(stamps) >= 3 and all(s == " UTC" for s in stamps)


def test_stored_timestamps_are_utc_whatever_the_machine_zone(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    code = ("import datetime, sys; from pathlib import Path; from beep.db import connect\n"
            "with connect(Path(sys.argv[1])) as con:\n"
            "    now = con.execute('select current_timestamp::timestamp').fetchone()[0]\n"
            "utc = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)\n"
            "print(abs((now - utc).total_seconds()))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "tz.duckdb")], capture_output=True, text=True,
                         env={**os.environ, "TZ": "Pacific/Kiritimati"}, check=True)  # UTC+14
    assert float(out.stdout) < 60, out.stdout


def test_report_out_refuses_to_overwrite_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    paths = Paths(duckdb=world.db, workdir=tmp_path / ".beep")
    result = evaluate(paths, model=world.model)
    app = typer.Typer()
    report_cmd.register(app)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    precious = tmp_path / "notes.html"
    precious.write_text("<html><body>my own notes</body></html>", encoding="utf-8")
    refused = runner.invoke(app, ["report", "--db", str(world.db), "--out", str(precious)])
    assert refused.exit_code == 2 and "not a Beep report" in " ".join(refused.output.split())
    assert precious.read_text(encoding="utf-8") == "<html><body>my own notes</body></html>"
    # a report Beep wrote is overwritten (a rerun refreshes it)
    report = tmp_path / "r.html"
    first = runner.invoke(app, ["report", "--db", str(world.db), "--out", str(report)])
    again = runner.invoke(app, ["report", "--db", str(world.db), "--out", str(report)])
    assert first.exit_code == 0 and again.exit_code == 0, again.output
    assert result.eval_run_id in report.read_text(encoding="utf-8")
    # the file beside it that a fixed temporary name "<out>.tmp" overwrote, then removed
    beside = tmp_path / "new.html.tmp"
    beside.write_text("user data", encoding="utf-8")
    assert runner.invoke(app, ["report", "--db", str(world.db), "--out", str(tmp_path / "new.html")]).exit_code == 0
    assert beside.read_text(encoding="utf-8") == "user data"
    assert sorted(p.name for p in tmp_path.glob("*.html*")) == ["new.html", "new.html.tmp", "notes.html", "r.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "new.html").stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain write makes it


def test_charts_of_a_workspace_with_hundreds_of_labels_stay_small() -> None:
    """999 labels drew a 450-inch confusion matrix (4.4 GB, 21 s on ubuntu-irc): charts show the most
    frequent CHART_LABELS labels, the rest as one row and column."""
    import time

    from beep.evaluate.report import CHART_LABELS, ReportData, chart_confusion, chart_per_label
    from beep.evaluate.store import RunRow

    labels = [str(i) for i in range(600)]
    pairs = [(labels[i % 600], labels[(i * 7) % 600], 1, False) for i in range(6000)]
    per_label = [(lab, 0.5, 0.5, 0.5, 10 + (600 - int(lab))) for lab in labels]
    run = RunRow("ev-x", "local:m", None, "exp", "valid", 6000, "local", "finished", {}, None, None, 0.0, None)
    data = ReportData(run, {}, per_label, {lab: f"person {lab}" for lab in labels}, pairs, {}, 0)
    started = time.monotonic()
    for chart in (chart_per_label(data), chart_confusion(data)):
        assert chart.startswith("data:image/png;base64,")
        assert len(chart) < 2_000_000
    assert time.monotonic() - started < 30
    assert CHART_LABELS < 600


def test_the_report_leads_with_the_alert_replay(tmp_path: Path) -> None:
    """Issue 23 item 5: the alert view first (its curve, each ranker at its operating point); the
    'synthetic' caveat only for the bundled sample."""
    from beep.db import open_duckdb

    world = build_world(tmp_path)
    paths = Paths(duckdb=world.db, workdir=tmp_path / ".beep")
    result = evaluate(paths, model=world.model)
    con = open_duckdb(str(world.db))
    for model, rows in ((world.model, ((0.1, 40, 0.3, 0.5, False), (0.3, 10, 0.6, 0.2, True))),
                        ("baseline: channel regulars", ((0.1, 30, 0.2, 0.3, True),))):
        for threshold, alerts, precision, recall, chosen in rows:
            con.execute("insert into alert_replay_curve values (?, ?, 'evaluated', ?, ?, 0, ?, 10, 0, ?, 0.1, ?)",
                        [result.eval_run_id, model, threshold, alerts, precision, recall, chosen])
    for i, (outcome, reason) in enumerate((("joined", "often answers the last speaker"), ("reacted", None),
                                           ("nothing", "active in #general today"))):
        con.execute("insert into alert_replay_alerts values (?, ?, 0.3, to_timestamp(?)::timestamp, 'c', 'C1', "
                    "'U002', 0.42, ?, ?)", [result.eval_run_id, world.model, 1_700_000_000 + i * 3600, reason, outcome])
    person_ranks = [r for (r,) in con.execute("select responder_rank from predictions where eval_run_id = ? and "
                                              "model = ? order by example_id", [result.eval_run_id, world.model]).fetchall()]
    con.close()
    text = write_report(paths, result.eval_run_id).read_text(encoding="utf-8")
    assert 'id="chart-alert-curve"' in text
    assert text.index("Alerts the app would send") < text.index("What these numbers mean")
    section = text[text.index("Alerts the app would send"):text.index("What these numbers mean")]
    assert section.index(world.model) < section.index("baseline: channel regulars")
    assert "<td>0.3</td><td>0.600</td><td>0.200</td>" in section  # the model's operating point
    assert "This run: alert window 60 min, target precision 0.5." in section  # what the numbers depend on
    assert "synthetic" not in text  # this world is not the bundled sample
    # a sample of the alerts, with their reasons and outcomes
    sample = section[section.index('id="alert-sample"'):]
    assert "often answers the last speaker" in sample and "active in #general today" in sample
    assert sample.count('class="outcome-joined"') == 1 and sample.count('class="outcome-nothing"') == 1
    assert "useful (joined" in sample and "useful (reacted" in sample and "not useful (nothing)" in sample
    assert "2 of those 3 were useful (1 joined, 1 reacted), 1 led to nothing" in sample
    assert "2023-11-14 22:13:20 UTC" in sample  # when, in UTC
    # the top-k curve is the person top-k (the responder's rank among people), not the label top-k
    from beep.db import connect
    from beep.evaluate.report import load_report_data

    with connect(world.db, read_only=True) as con:
        data = load_report_data(con, result.eval_run_id)
    assert data.ranks[world.model] == person_ranks
    assert "Person top-k curve" in text


def test_the_per_label_table_shows_the_20_busiest_labels_and_folds_the_rest() -> None:
    from beep.evaluate.report import TABLE_LABELS, ReportData, _per_label_table
    from beep.evaluate.store import RunRow

    labels = [str(i) for i in range(45)]
    per_label = [(lab, 0.5, 0.5, 0.5, 100 - int(lab)) for lab in labels]  # label 0 has the most support
    run = RunRow("ev-x", "local:m", None, "exp", "valid", 100, "local", "finished", {}, None, None, 0.0, None)
    text = _per_label_table(ReportData(run, {}, per_label, {lab: f"person {lab}" for lab in labels}, [], {}, 0))
    shown, folded = text.split("<details", 1)
    assert TABLE_LABELS == 20
    assert shown.count("<tr><td>") == 20 and "<td>person 19</td>" in shown and "<td>person 20</td>" not in shown
    assert folded.count("<tr><td>") == 25 and "<td>person 44</td>" in folded
    assert "25 more labels" in folded
    few = _per_label_table(ReportData(run, {}, per_label[:5], {}, [], {}, 0))
    assert "<details" not in few and few.count("<tr><td>") == 5
