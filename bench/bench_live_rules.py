"""The live path's own cost per message, without the model: the dataset's rules run on one Slack
message event (:func:`beep.slack.conversations.check_event`: the exclusion reason, the cleaning and
the mentions, the models' SQL in an in-memory DuckDB), the conversation split
(:func:`place_event`) and the model's row (:func:`model_row`: the prompt). Every raw message of a
built DuckDB file is replayed in time order, one at a time, as the Slack app receives them; prints
the median and 95th percentile of each step and of the three together, in milliseconds.

    .venv/bin/beep build --db /tmp/bench-rules/beep.duckdb      # the bundled sample
    .venv/bin/python bench/bench_live_rules.py /tmp/bench-rules/beep.duckdb
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from beep.config import PROJECT_DIR
from beep.db import open_duckdb
from beep.rules.messages import CleaningRules, MessageRules
from beep.rules.project_vars import load_project_vars
from beep.rules.prompts import PromptSettings
from beep.slack.conversations import (
    ConversationTracker,
    SplitSettings,
    check_event,
    model_row,
    place_event,
)


def _p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db", type=Path, help="a DuckDB file `beep build` built")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    variables = load_project_vars(PROJECT_DIR)
    started = time.perf_counter()
    rules = MessageRules(CleaningRules.from_vars(variables, PROJECT_DIR))
    tracker = ConversationTracker(SplitSettings.from_vars(variables, PROJECT_DIR))
    prompts = PromptSettings.from_vars(variables)
    setup_ms = (time.perf_counter() - started) * 1000
    with open_duckdb(str(args.db), read_only=True) as con:
        users = con.execute("select user_id, user_name, coalesce(is_bot, false) from stg_slack__users").fetchall()
        events = con.execute(
            "select channel_folder, ts, thread_ts, user_id, bot_id, subtype, text from stg_slack__messages"
            " order by message_at nulls first, channel_folder, ts, source_file, client_msg_id, text").fetchall()
    names = {u: n for u, n, _ in users}
    bots = {u for u, _, is_bot in users if is_bot}
    steps: dict[str, list[float]] = {"check": [], "place": [], "row": [], "total": []}
    for channel, ts, thread_ts, user, bot_id, subtype, text in events:
        event = {"channel": channel, "ts": ts, "thread_ts": thread_ts, "user": user, "bot_id": bot_id,
                 "subtype": subtype, "text": text}
        t0 = time.perf_counter()
        checked = check_event(rules, event, bots, names)
        t1 = time.perf_counter()
        _, message, conv = place_event(tracker, event, checked)
        t2 = time.perf_counter()
        if conv is not None:
            model_row(conv, prompts)
        t3 = time.perf_counter()
        steps["check"].append((t1 - t0) * 1000)
        if message is not None:
            steps["place"].append((t2 - t1) * 1000)
            steps["row"].append((t3 - t2) * 1000)
            steps["total"].append((t3 - t0) * 1000)
    rules.close()
    result = {"messages": len(events), "usable": len(steps["total"]), "setup_ms": round(setup_ms, 1),
              **{f"{k}_ms": {"median": round(statistics.median(v), 3), "p95": round(_p95(v), 3)} for k, v in steps.items()}}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
