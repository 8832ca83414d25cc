"""The Slack app's speed against the fake Slack on 127.0.0.1, with the model loaded:

- **latency**: from a message event leaving the fake's socket to the alert DM arriving at the fake's
  chat.postMessage (the whole path: Socket Mode, ack, cleaning, conversation split, the model's live
  state and ranking, the policy, the DuckDB write before the DM, chat.getPermalink,
  conversations.open, chat.postMessage), one message at a time; p50 / p95 / max;
- **throughput**: events a second when a burst of messages arrives at once (each handled in order).

The model is a ranker with the product's hyperparameters trained on a synthetic workspace
(``--people``, ``--messages``) registered as
`beep finetune` leaves it, or any model of a DuckDB file (``--db`` with ``--model``). The target is
≤ 300 ms at the 95th percentile. Run:

    .venv/bin/python bench/bench_slack.py                      # synthetic 300 people, 6,000 messages
    .venv/bin/python bench/bench_slack.py --people 2000 --messages 40000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "python"))

from beep.config import Paths  # noqa: E402
from beep.ranker.model import HYPERPARAMETERS  # noqa: E402
from beep.slack.alerts import AlertPolicy  # noqa: E402
from beep.slack.app import start  # noqa: E402
from beep.slack.scoring import LiveModel  # noqa: E402
from fake_slack.server import APP_TOKEN, BOT_TOKEN, FakeSlack, start_fake_slack  # noqa: E402
from fake_slack.world import build_world  # noqa: E402
from ranker_world import TOPICS  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=300, help="people in the synthetic workspace")
    parser.add_argument("--messages", type=int, default=6000, help="messages in the synthetic workspace")
    parser.add_argument("--db", type=Path, help="a DuckDB file with a trained model instead of the synthetic one (copied)")
    parser.add_argument("--model", help="with --db: the model (default: the latest succeeded job)")
    parser.add_argument("--alerts", type=int, default=100, help="messages that alert someone, timed one at a time")
    parser.add_argument("--burst", type=int, default=300, help="messages pushed at once for the throughput figure")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-slack-"))
    try:
        clock_start = time.perf_counter()
        if args.db:
            paths = Paths(duckdb=root / "beep.duckdb", workdir=args.db.parent / ".beep")
            shutil.copy(args.db, paths.duckdb)
            model_name = args.model
            people: list[str] = []
        else:
            # the product's hyperparameters (64-dim text model, 300 trees), not the tests' small ones
            world = build_world(root / "world", n_people=args.people, n_messages=args.messages,
                                hyperparameters=HYPERPARAMETERS)
            paths, model_name, people = world.paths, world.model, world.people
        print(f"model ready in {time.perf_counter() - clock_start:.1f} s", flush=True)
        live = LiveModel(paths, model_name)
        if not people:
            people = [lab.user_id for lab in live.export.labels if lab.user_id and lab.user_id != "__other__"]
        fake = FakeSlack()
        for user in people:
            fake.add_user(user, user.lower())
        fake.channels["C1"] = {"id": "C1", "name": "general"}
        server = start_fake_slack(fake)
        policy = AlertPolicy(min_probability=0.05, max_alerts_per_hour=10_000, quiet_hours=None)
        app = start(paths, model=model_name, policy=policy, bot_token=BOT_TOKEN, app_token=APP_TOKEN,
                    base_url=fake.api_url, live_model=live)
        fake.wait_connected(1)
        rng = random.Random(0)
        now = [live.ranker.state.now + 86400 if live.ranker is not None else time.time()]

        def event(text: str, user: str, channel: str = "C1", advance: float = 1.0) -> dict:
            now[0] += advance
            return {"channel": channel, "user": user, "text": text, "ts": f"{now[0]:.6f}"}

        load_start = os.getloadavg()[0]
        # latency: one message at a time, each a new question naming someone not in it
        latencies: list[float] = []
        no_alert = 0
        for i in range(args.alerts):
            asker, target = rng.sample(people, 2)
            words = rng.choice(list(TOPICS.values())).split()
            posted, handled = len(fake.posted), app.service.handled
            sent = time.perf_counter()
            # 11 minutes after the last message: a conversation of its own (the split's gap is 10)
            fake.push_event(event(f"<@{target}> how do I fix the {rng.choice(words)} {rng.choice(words)} problem? #{i}",
                                  asker, channel=f"C{i % 4}", advance=660.0))
            fake.wait_for(lambda posted=posted, handled=handled: len(fake.posted) > posted or app.service.handled > handled,
                          timeout=30, what="the DM")
            fake.wait_for(lambda handled=handled: app.service.handled > handled, timeout=30, what="the message handled")
            if len(fake.posted) > posted:
                latencies.append(time.perf_counter() - sent)
            else:
                no_alert += 1
        # throughput: a burst of messages at once (questions and chatter in a few conversations)
        handled = app.service.handled
        burst_start = time.perf_counter()
        for i in range(args.burst):
            user = rng.choice(people)
            text = rng.choice(["thanks!", "lol ok", "any update on the deploy?", f"the {rng.choice(['dns', 'css', 'postgres'])} "
                               "thing is failing again"])
            fake.push_event(event(text, user, channel=f"C{i % 4}"))
        fake.wait_for(lambda: app.service.handled >= handled + args.burst, timeout=600, what="the burst handled")
        burst_seconds = time.perf_counter() - burst_start
        app.handler.client.auto_reconnect_enabled = False
        fake.drop()
        app.stop()
        server.stop()
        figures = {
            "model": live.name,
            "people": len(people),
            "alerts_timed": len(latencies),
            "questions_without_alert": no_alert,
            "latency_ms_p50": round(1000 * statistics.median(latencies), 1),
            "latency_ms_p95": round(1000 * percentile(latencies, 0.95), 1),
            "latency_ms_max": round(1000 * max(latencies), 1),
            "burst_events": args.burst,
            "events_per_second": round(args.burst / burst_seconds, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_1min_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        }
        print(json.dumps(figures, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
