"""`beep run`'s headline tables (issue 10 item 8): person metrics, the newcomer count in the newcomer
table's title, ▼ where a baseline beats the model, and nothing cut or wrapped when piped."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

from rich.console import Console

from beep.commands.options import PIPE_WIDTH
from beep.commands.run_cmd import print_headline

MODEL = "local:local-0123456789abcdef"


def _result() -> SimpleNamespace:
    def metrics(top1: float, top5: float, out5: float, p: float, r: float, f1: float) -> dict:
        return {"person_top_1": top1, "person_top_5": top5, "outsider_top_5": out5, "alert_precision_person": p,
                "alert_recall_person": r, "f1_macro": f1}

    headline = {
        MODEL: {"all": metrics(0.612, 0.981, 0.0, 0.541, 0.551, 0.541), "newcomer": metrics(0.378, 0.951, 0.967, 0.406, 0.417, 0.430),
                "mentioned": {"person_top_1": 0.685}, "responder_mentioned": {"person_top_1": 0.875}},
        "baseline:mentioned_then_channel": {"all": metrics(0.340, 0.888, 0.0, 0.254, 0.347, 0.261),
                                            "newcomer": metrics(0.451, 0.890, 0.963, 0.358, 0.471, 0.371),
                                            "mentioned": {"person_top_1": 0.454}, "responder_mentioned": {"person_top_1": 0.964}},
    }
    evaluation = SimpleNamespace(model=MODEL, n=618, n_newcomer=246, headline=headline, provider="local", reused=False, cost=0.0)
    return SimpleNamespace(evaluation=evaluation, refine=None, finetune=None, seconds={"build": 18.0, "evaluate": 2.3},
                           report_path="/tmp/report.html")


def test_headline_tables_title_counts_flags_and_full_width() -> None:
    console = Console(record=True, width=PIPE_WIDTH, force_terminal=False, color_system=None)
    print_headline(_result(), console)  # type: ignore[arg-type]
    text = console.export_text()
    lines = text.splitlines()
    assert f"{MODEL} on 618 validation examples — who writes the next reply, all replies" in text
    assert f"{MODEL} on 246 validation examples — who writes the next reply, newcomers only" in text  # the newcomer count, not 618
    model_rows = [line for line in lines if line.startswith("│ " + MODEL)]
    assert len(model_rows) == 2
    all_row, newcomer_row = model_rows
    assert "▼" not in all_row  # the model beats the baseline everywhere on all replies
    cells = [c.strip() for c in newcomer_row.strip("│").split("│")]
    assert cells[1] == "0.378 ▼" and cells[2] == "0.951" and cells[5] == "0.417 ▼"  # top-1 and alert recall lost
    assert "…" not in text and all(len(line) < 300 for line in lines)  # nothing cut, and no 10,000-column padding


def test_run_prints_in_a_pipe_without_wrapping_at_80_columns() -> None:
    code = ("from test_run_headline import _result\n"
            "from beep.commands.options import make_console\n"
            "from beep.commands.run_cmd import print_headline\n"
            "print_headline(_result(), make_console())\n")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = os.path.dirname(__file__) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert "…" not in out and max(len(line) for line in out.splitlines()) > 80
    explanation = [line for line in out.splitlines() if line.startswith("top-k:")]
    assert len(explanation) == 1 and explanation[0].endswith("a baseline beats the model on this column")


def test_the_alert_replay_leads_the_headline() -> None:
    """Issue 23 item 5: what the app would do comes first, each ranker at its operating point."""
    result = _result()
    alert = {"precision": 0.571, "recall": 0.065, "alerts": 28.0, "alerts_per_person_day": 0.087,
             "min_probability": 0.4, "target_reached": 1.0}
    result.evaluation.headline[MODEL]["alert_replay"] = alert
    result.evaluation.headline["baseline: channel regulars"] = {"alert_replay": {**alert, "precision": 0.5, "target_reached": 0.0}}
    console = Console(record=True, width=PIPE_WIDTH, force_terminal=False, color_system=None)
    print_headline(result, console)  # type: ignore[arg-type]
    text = console.export_text()
    first = text.index("alerts the app would send")
    assert first < text.index("who writes the next reply")
    rows = [line for line in text[first:text.index("who writes the next reply")].splitlines() if line.startswith("│ ")]
    assert rows[0].startswith(f"│ {MODEL}") and "0.571" in rows[0] and "yes" in rows[0]
    assert rows[1].startswith("│ baseline: channel regulars") and rows[1].rstrip("│ ").endswith("no")
    # "yes" is about the tune period, where the threshold was chosen: the header says so
    assert "target met on tune" in text and "may still fall short" in " ".join(text.split())


def test_the_mention_slices_beside_the_mention_rule() -> None:
    console = Console(record=True, width=400, force_terminal=False, color_system=None)
    print_headline(_result(), console)  # type: ignore[arg-type]
    text = console.export_text()
    assert ("person top-1 where the window @-mentions someone 0.685 (the mention rule 0.454); "
            "where the responder was @-mentioned 0.875 ▼ (the mention rule 0.964)") in text
    # a run without the slices (older, or no @-mention in the split) prints no such line
    result = _result()
    for slices in result.evaluation.headline.values():
        slices.pop("mentioned"), slices.pop("responder_mentioned")
    console = Console(record=True, width=400, force_terminal=False, color_system=None)
    print_headline(result, console)  # type: ignore[arg-type]
    assert "mention rule" not in console.export_text()
