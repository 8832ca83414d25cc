"""`beep report` renders a self-contained HTML file with the charts and the tables."""

from __future__ import annotations

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
