"""A daily run: the steps of `beep run` after one new day, against the same steps from scratch.

    .venv/bin/python bench/bench_daily.py                                # 60,000 messages over 365 days
    .venv/bin/python bench/bench_daily.py --messages 1000000 --people 2000 --channels 300   # the issue's size
    .venv/bin/python bench/bench_daily.py --quick                        # 6,000 messages, docs not written

A large-profile export is generated (`beep sample generate --profile large`, seeded). Its last day's
files are held back: one DuckDB file runs every step on the history, then the last day is copied into
the same export folder (as `beep slack pull` or an unzipped re-export adds it) and every step runs
again: "one new day". Another DuckDB file runs every step on the whole export at once: "from
scratch". Each step is the command `beep run` chains (ingest, build with dbt's tests, refine, export,
finetune, evaluate; local providers, offline), run as its own process: wall time and peak RSS of its
process tree (bench/measure.py). The day's run ends with `beep run` itself, which finds every step
done and says what each reused. Results: bench/out/daily-*.json and the bench_daily section of
docs/benchmarks.md, with dbt's per-model times (run_results.json) of both builds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
from measure import run_measured, tail, write_doc_section  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"


def markers(steps: list[str], messages: int) -> tuple[str, str]:
    """The docs section of a run of these steps at this size (all steps: bench_daily_<messages>; some:
    bench_daily_<steps>_<messages>): each size keeps its own section."""
    name = "bench_daily" + ("" if tuple(steps) == STEPS else "_" + "_".join(steps)) + f"_{messages}"
    return f"<!-- BEGIN {name} (written by bench/bench_daily.py) -->", f"<!-- END {name} -->"

STEPS = ("ingest", "build", "refine", "export", "finetune", "evaluate")


def beep(*args: str) -> list[str]:
    return [sys.executable, "-c", "from beep.cli import main; main()", *args]


def step_cmd(step: str, db: Path, export: Path) -> list[str]:
    if step == "ingest":
        return beep("ingest", str(export), "--db", str(db))
    if step == "build":
        return beep("build", "--export", str(export), "--db", str(db))
    return beep(step, "--db", str(db))


def run_steps(label: str, db: Path, export: Path, logs: Path, steps: tuple[str, ...] = STEPS) -> dict[str, dict[str, Any]]:
    measured = {}
    for step in steps:
        m = run_measured(f"{label}-{step}", step_cmd(step, db, export), logs / f"{label}-{step}.log",
                         env={"COLUMNS": "200"}, cwd=REPO)
        if m.returncode != 0:
            raise SystemExit(f"{label}: {step} failed (exit {m.returncode}):\n{tail(m.log)}")
        measured[step] = {"seconds": round(m.seconds, 1), "cpu_seconds": round(m.cpu_seconds, 1), "peak_mb": round(m.peak_mb)}
        print(f"  {label} {step}: {m.seconds:.1f} s, peak {m.peak_mb:.0f} MB", flush=True)
    return measured


def _results(db: Path) -> list[dict[str, Any]]:
    """dbt's run_results.json of the last invocation on this DuckDB file (its own dbt target folder)."""
    from beep.config import Paths
    from beep.dbt_runner import run_results

    return run_results(Paths(duckdb=db, workdir=db.parent / ".beep"))


def model_times(db: Path) -> dict[str, float]:
    """Per-model seconds of the last dbt invocation on this DuckDB file (run_results.json)."""
    return {str(r["unique_id"]).rsplit(".", 1)[-1]: round(float(r["execution_time"]), 2)
            for r in _results(db) if str(r["unique_id"]).startswith("model.")}


def kind_times(db: Path) -> dict[str, float]:
    """dbt's seconds summed by kind of node (model, test, unit_test, seed, ...) of the last invocation."""
    totals: dict[str, float] = {}
    for r in _results(db):
        kind = str(r["unique_id"]).split(".", 1)[0]
        totals[kind] = round(totals.get(kind, 0.0) + float(r["execution_time"]), 2)
    return totals


def generate(out: Path, args: argparse.Namespace) -> None:
    if (out / "users.json").exists():
        return
    from beep.sample.generator import generate_large_export

    started = time.perf_counter()
    generate_large_export(out, messages=args.messages, seed=1, people=args.people, channels=args.channels,
                          days=args.days, truth=False)
    print(f"generated {args.messages:,} messages in {time.perf_counter() - started:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--channels", type=int, default=60)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--quick", action="store_true", help="6,000 messages, 60 people, 12 channels, 60 days; docs not written.")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="Comma-separated steps to measure (default all; then the next day runs `beep run`).")
    parser.add_argument("--render", type=Path, help="Only write the docs section of an earlier run's JSON (bench/out/daily-*.json).")
    args = parser.parse_args(argv)
    if args.render:
        earlier = json.loads(args.render.read_text())
        size = earlier["size"]
        write_docs(render(earlier, earlier.get("argv") or [f"--{k} {size[k]}" for k in ("messages", "people", "channels", "days")]))
        return 0
    if args.quick:
        args.messages, args.people, args.channels, args.days = 6_000, 60, 12, 60
    size = f"{args.messages}-{args.people}-{args.channels}-{args.days}"
    generated = OUT / f"daily-export-{size}"
    generate(generated, args)
    days = sorted({p.stem for p in generated.glob("*/*.json")})
    day_a, day_b = days[-2], days[-1]
    held = {day_a: sorted(generated.glob(f"*/{day_a}.json")), day_b: sorted(generated.glob(f"*/{day_b}.json"))}
    n_files = len(list(generated.glob("*/*.json")))

    work = OUT / f"daily-{size}"
    shutil.rmtree(work, ignore_errors=True)
    logs = work / "logs"
    # the history (all days but the last two) from scratch, then one new day, step by step
    export = work / "export"
    shutil.copytree(generated, export, ignore=lambda folder, names: [n for n in names if n in (f"{day_a}.json", f"{day_b}.json")])
    daily_db = work / "daily" / "beep.duckdb"
    daily_db.parent.mkdir(parents=True)
    print(f"history ({n_files - len(held[day_a]) - len(held[day_b]):,} day files)", flush=True)
    steps = tuple(x for x in STEPS if x in args.steps.split(","))
    history = run_steps("history", daily_db, export, logs, steps)
    history_models, history_kinds = model_times(daily_db), kind_times(daily_db)
    for file in held[day_a]:
        shutil.copy2(file, export / file.parent.name / file.name)
    print(f"one new day ({day_a}: {len(held[day_a])} day files)", flush=True)
    daily = run_steps("day", daily_db, export, logs, steps)
    daily_models, daily_kinds = model_times(daily_db), kind_times(daily_db)
    # the next day, as the user runs it: `beep run`
    for file in held[day_b]:
        shutil.copy2(file, export / file.parent.name / file.name)
    print(f"the next day ({day_b}: {len(held[day_b])} day files) with beep run", flush=True)
    if steps == STEPS:
        m = run_measured("next-day-beep-run", beep("run", str(export), "--db", str(daily_db)),  # wide: one line each
                         logs / "next-day-beep-run.log", env={"COLUMNS": "500"}, cwd=REPO)
        said = [line.strip() for line in m.log.read_text(errors="replace").splitlines()
                if "incremental" in line or line.strip().startswith(("export:", "split:", "finetune:", "evaluate:", "dataset unchanged"))]
        if m.returncode != 0:  # the measured steps stand; say what beep run answered
            said = [f"(beep run failed, exit {m.returncode}: {tail(m.log, 3)})"]
    else:
        m = run_measured("next-day-build", step_cmd("build", daily_db, export), logs / "next-day-build.log",
                         env={"COLUMNS": "1000"}, cwd=REPO)  # wide: the incremental line on one line
        said = [line.strip() for line in m.log.read_text(errors="replace").splitlines() if "day file" in line]
    print(f"  beep run: {m.seconds:.1f} s, peak {m.peak_mb:.0f} MB", flush=True)
    # from scratch: the whole export, a fresh DuckDB file (last, so that a load that falls over the
    # run does not flatter the new day)
    scratch_db = work / "scratch" / "beep.duckdb"
    scratch_db.parent.mkdir(parents=True)
    print(f"from scratch ({n_files:,} day files)", flush=True)
    scratch = run_steps("scratch", scratch_db, generated, logs, steps)
    scratch_models, scratch_kinds = model_times(scratch_db), kind_times(scratch_db)
    last, new_day = day_a, held[day_a]
    result = {"argv": argv if argv is not None else sys.argv[1:], "size": vars(args), "n_day_files": n_files, "new_day": last, "new_day_files": len(new_day),
              "scratch": scratch, "history": history, "day": daily, "beep_run_next_day": {"seconds": round(m.seconds, 1),
              "peak_mb": round(m.peak_mb), "said": said, "day": day_b, "files": len(held[day_b])},
              "models": {"scratch": scratch_models, "history": history_models, "day": daily_models},
              "kinds": {"scratch": scratch_kinds, "history": history_kinds, "day": daily_kinds},
              "cpus": os.cpu_count(), "machine": platform.platform(), "load_end": round(os.getloadavg()[0], 1),
              "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (OUT / f"daily-{size}.json").write_text(json.dumps(result, indent=2))
    section = render(result, argv)
    print(section)
    if not args.quick:
        write_docs(section)
    return 0


def render(r: dict[str, Any], argv: list[str] | None) -> str:
    s = r["size"]
    command = "`.venv/bin/python bench/bench_daily.py" + ("".join(f" {a}" for a in (argv or sys.argv[1:]))) + "`"
    begin, end = markers(list(r["day"]), int(s["messages"]))
    whole = tuple(r["day"]) == STEPS
    lines = [
        begin,
        (f"## A daily {'run' if whole else ', '.join(r['day'])} at {int(s['messages']):,} messages "
         "(`bench/bench_daily.py`)"),
        "",
        (f"Measured {r['at']} on {r['machine']}, {r['cpus']} CPUs shared with other work (load average "
         f"{r['load_end']} at the end: absolute times are upper bounds, the ratios are the signal). Command: {command}. "
         f"Export: `beep sample generate --profile large --messages {s['messages']} --people {s['people']} "
         f"--channels {s['channels']} --days {s['days']} --seed 1 --no-truth`, {r['n_day_files']:,} day files. The "
         "last two days are held back: every step runs on the history (from scratch), then one new day "
         f"({r['new_day']}, {r['new_day_files']} day files) is copied into the same folder and every step runs again; "
         "the whole export from scratch in a fresh DuckDB file runs last. Each step is its own command (local "
         "providers), peak RSS of its process tree."),
        "",
        ("| step | from scratch: time | CPU | peak | history from scratch: time | CPU | one new day: time | CPU | peak "
         "| day / scratch: time | CPU | day / history: CPU |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    totals = {(k, m): 0.0 for k in ("scratch", "history", "day") for m in ("seconds", "cpu_seconds")}
    for step in [x for x in STEPS if x in r["day"]]:
        a, h, b = r["scratch"][step], r["history"][step], r["day"][step]
        for key, value in (("scratch", a), ("history", h), ("day", b)):
            for m in ("seconds", "cpu_seconds"):
                totals[key, m] += value[m]
        lines.append(f"| {step} | {a['seconds']} s | {a['cpu_seconds']} s | {a['peak_mb']:,} MB | {h['seconds']} s | "
                     f"{h['cpu_seconds']} s | {b['seconds']} s | {b['cpu_seconds']} s | {b['peak_mb']:,} MB | "
                     f"{b['seconds'] / a['seconds']:.0%} | {b['cpu_seconds'] / a['cpu_seconds']:.0%} | "
                     f"{b['cpu_seconds'] / h['cpu_seconds']:.0%} |")
    t = totals
    lines.append(f"| **all steps** | {t['scratch', 'seconds']:.1f} s | {t['scratch', 'cpu_seconds']:.1f} s | | "
                 f"{t['history', 'seconds']:.1f} s | {t['history', 'cpu_seconds']:.1f} s | {t['day', 'seconds']:.1f} s | "
                 f"{t['day', 'cpu_seconds']:.1f} s | | {t['day', 'seconds'] / t['scratch', 'seconds']:.0%} | "
                 f"**{t['day', 'cpu_seconds'] / t['scratch', 'cpu_seconds']:.0%}** | "
                 f"**{t['day', 'cpu_seconds'] / t['history', 'cpu_seconds']:.0%}** |")
    totals = {"scratch": t["scratch", "seconds"]}
    lines += ["", ("CPU time (user + system of the step's process and the processes it waited for, dbt included) "
                   "depends less on what else the shared machine runs than wall time: its ratios are the measure.")]
    nxt = r["beep_run_next_day"]
    how = "`beep run` itself" if whole else "`beep build` again"
    lines += ["", (f"The next day ({nxt['day']}, {nxt['files']} day files) with {how}: {nxt['seconds']} s in all "
                   f"({nxt['seconds'] / totals['scratch']:.0%} of the steps from scratch), peak {nxt['peak_mb']:,} MB."
                   + (" It says:" if nxt["said"] else ""))]
    if nxt["said"]:
        lines += ["", *(f"    {line}" for line in nxt["said"])]
    scratch_models, day_models = r["models"]["scratch"], r["models"]["day"]
    total_s = sum(scratch_models.values()) or 1.0
    total_d = sum(day_models.values()) or 1.0
    lines += ["", ("dbt's time per model (run_results.json of `beep build`, dbt threads 2: models overlap), and its share "
                   "of the sum:"), "", "| model | from scratch | share | one new day | share |", "| --- | ---: | ---: | ---: | ---: |"]
    for name in sorted(scratch_models, key=lambda n: -scratch_models[n])[:14]:
        d = day_models.get(name, 0.0)
        lines.append(f"| `{name}` | {scratch_models[name]} s | {scratch_models[name] / total_s:.0%} | {d} s | {d / total_d:.0%} |")
    lines.append(f"| all models | {total_s:.1f} s | | {total_d:.1f} s | |")
    kinds = r.get("kinds") or {}
    names = {"test": "data tests", "unit_test": "unit tests", "seed": "seeds"}
    for kind, name in names.items():
        a, d = (kinds.get("scratch") or {}).get(kind), (kinds.get("day") or {}).get(kind)
        if a is not None or d is not None:
            lines.append(f"| all {name} | {a or 0} s | | {d or 0} s | |")
    lines += ["", (
        "What a new day costs, step by step: **build** parses only the new or changed day files "
        "(stg_slack__messages is incremental on DuckDB, macros/slack_export_files.sql; the reactions come from the "
        "same parse); int_slack__messages_cleaned and the two reaction models recompute only the message keys those "
        "files hold, int_conversation_links, int_conversations and training_examples only the rows of the channels that "
        "hold them from a cut before the day's earliest change on, where no reply link or thread crosses "
        "(macros/incremental_messages.sql; when a new responder moves the labels, training_examples relabels the other "
        "examples in place); "
        "user_labels, "
        "message_fate_counts, the other marts and stg_slack__day_files are rebuilt whole, dbt's data tests over the six "
        "tables kept day file by day file check only the rows the builds since the last passing one recomputed "
        "(macros/untested_rows.sql: row by row, a unique key against the whole table, the prompts' singular tests by "
        "conversation), the others run over whole tables on every build, except the one over every person of every stored prediction "
        "(evaluation_prediction_people), which checks only the evaluation runs no passing build tested "
        "(macros/untested_eval_runs.sql: yesterday's run, not every run so far), and the fate reconciliation, which "
        "reads only the day files no passing build counted (macros/tested_day_files.sql), and its unit tests are left out "
        "when they passed on the same project, vars and dbt (beep.build.unit_tests_key); at this size the incremental models' own bookkeeping (about 20 queries each) "
        "costs about what they save; **ingest** reads every day file but parses only those whose bytes changed "
        "(ingest_file_checks); **refine** asks only the examples without a verdict; **export** keeps the time split's "
        "boundary of the previous export while validation holds within 25% of --valid-fraction, so the new day only "
        "adds to validation, and writes a new export (new examples: a new export id) streaming: when the train rows are "
        "the previous export's it copies that train file and its checks' state and renders only validation "
        "(beep.export.api.TRAIN_STATE; when only their labels moved, a new responder shifting the labels after "
        "theirs, the copy gets those lines' answers rewritten and the checks their labels), the tokenizer reading only the prompts no export counted (export_prompt_tokens); "
        "an unchanged export is kept; **finetune** keeps the ranker of the previous export when "
        "nothing it learned from changed (a change on a day after its last train example, such as a late thread "
        "reply moving yesterday's message into its thread, only drops its saved states from that day on) and the new "
        "train examples are at most 5% of the ones it learned from "
        "(beep.finetune.keep; otherwise, or with --retrain, it trains and says why); **evaluate** keeps the stored "
        "predictions of that model on unchanged examples (rebuilt from their stored people when the export's labels "
        "moved) and its rankings at the alert replay's moments before the "
        "first changed day, predicts the rest; with the same train split and labels it keeps the baselines' "
        "predictions of unchanged examples and the alert policy's curve on the tune period (beep.evaluate.reuse, "
        "alert_replay.kept_tune_curve), its passes over the evaluated period go on from the previous run's states "
        "at the start of that run's last day (alert_replay.PassState, reuse.kept_passes), and it computes the "
        "metrics again. tests/python/test_incremental_build.py checks that the incremental tables "
        "equal a build from scratch; tests/python/test_daily_evaluate.py that the daily evaluation equals one from "
        "scratch."),
        end]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    lines = section.splitlines()
    write_doc_section(DOCS, section, lines[0], lines[-1])


if __name__ == "__main__":
    raise SystemExit(main())
