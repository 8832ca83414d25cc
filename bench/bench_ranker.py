"""The responder model end to end on a real (or realistically generated) workspace: every step's
time and peak memory, `beep predict` latency, and quality beside the baselines, with and without
refinement.

    .venv/bin/python bench/bench_ranker.py                       # ../shared/realdata/ubuntu-irc.zip
    .venv/bin/python bench/bench_ranker.py --generate 2000:500000   # a generated 2,000-person, 500k-message workspace
    .venv/bin/python bench/bench_ranker.py --export path/to/export.zip --name acme
    .venv/bin/python bench/bench_ranker.py --quick               # the bundled sample (smoke size)

Steps run as `beep` subprocesses on a DuckDB file of their own under bench/out/ranker-<name>/ (peak
memory = the whole process tree, see bench/measure.py). Quality: the model trained on the refined
export and the same model trained on the unrefined export, both evaluated on the refined export's
validation split (chronological: the newest conversations), beside the four baselines. Writes
bench/out/ranker-<name>/results.json and its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from measure import Measurement, run_measured, tail  # noqa: E402
from beep.db import open_duckdb  # noqa: E402

UBUNTU = REPO.parent / "shared" / "realdata" / "ubuntu-irc.zip"
BEEP = str(REPO / ".venv" / "bin" / "beep")
DOC = REPO / "docs" / "benchmarks.md"
#: (metric, slice, column title) of the quality table.
QUALITY = (
    ("person_top_1", "all", "top-1"), ("person_top_5", "all", "top-5"),
    ("person_top_1", "newcomer", "new top-1"), ("person_top_5", "newcomer", "new top-5"),
    ("outsider_top_1", "newcomer", "new, not in conv. top-1"), ("outsider_top_5", "newcomer", "new, not in conv. top-5"),
    ("alert_precision_person", "all", "next-reply precision"), ("alert_recall_person", "all", "next-reply recall"),
)


def _step(name: str, args: list[str], out: Path, env: dict[str, str], results: list[Measurement]) -> Path:
    log = out / f"{len(results):02d}-{name}.log"
    m = run_measured(name, [BEEP, *args], log, env=env, cwd=REPO)
    results.append(m)
    print(f"{name:<22} {m.seconds:7.1f} s  {m.peak_mb:7.0f} MB  rc={m.returncode}", flush=True)
    if m.returncode != 0:
        raise SystemExit(f"step {name} failed (rc {m.returncode}); its log {log} ends with:\n{tail(log)}")
    return log


def _latest(db: Path, sql: str, params: list[object] | None = None) -> object:
    con = open_duckdb(str(db), read_only=True)
    try:
        row = con.execute(sql, params or []).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def _quality(db: Path, run_id: str) -> dict[str, dict[str, float | None]]:
    con = open_duckdb(str(db), read_only=True)
    try:
        rows = con.execute(
            "select model, slice, metric, value from metrics where eval_run_id = ? and label is null", [run_id]
        ).fetchall()
        n = dict(con.execute(
            "select slice, max(value) from metrics where eval_run_id = ? and metric = 'n' group by slice", [run_id]
        ).fetchall())
    finally:
        con.close()
    out: dict[str, dict[str, float | None]] = {}
    for model, slice_, metric, value in rows:
        out.setdefault(model, {})[f"{slice_}:{metric}"] = value
    out["_n"] = {k: float(v) for k, v in n.items()}
    return out


def _predict_latency(db: Path, env: dict[str, str], channel: str | None) -> dict[str, float]:
    """Load the latest model once, then time single-conversation predictions (text + channel)."""
    code = f"""
import json, statistics, time
from beep.config import default_paths
from beep.evaluate.api import EvalOptions
from beep.predictors import make_predictor
from beep.live.predict import load_model
paths = default_paths({str(db)!r})
t = time.perf_counter(); ref, export = load_model(paths, None)
predictor = make_predictor(ref, export, EvalOptions(top_k=20), paths); load_s = time.perf_counter() - t
row = {{"prompt": "my install fails with a dependency error, any idea?\\n\\n###\\n\\n", "channel_id": {channel!r},
       "prior_participant_ids": [], "mentioned_user_ids": []}}
times = []
for _ in range(30):
    t = time.perf_counter(); predictor.predict([row]); times.append(time.perf_counter() - t)
print(json.dumps({{"load_s": load_s, "median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times)}}))
"""
    done = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", code], env={**os.environ, **env},
                          capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(export: Path, name: str, out: Path) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    db = out / "beep.duckdb"
    for stale in (db, out / "beep.duckdb.wal"):
        stale.unlink(missing_ok=True)
    env = {"BEEP_DUCKDB_PATH": str(db), "BEEP_WORKDIR": str(out / ".beep"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    steps: list[Measurement] = []
    started = time.perf_counter()
    _step("ingest", ["ingest", str(export)], out, env, steps)
    _step("build", ["build"], out, env, steps)
    _step("refine", ["refine"], out, env, steps)
    _step("export", ["export"], out, env, steps)
    refined_export = _latest(db, "select export_id from exports where status = 'ok' and refined order by created_at desc limit 1")
    _step("finetune", ["finetune"], out, env, steps)
    refined_job = _latest(db, "select job_id from finetune_jobs where status = 'succeeded' order by finished_at desc limit 1")
    _step("evaluate", ["evaluate"], out, env, steps)
    refined_run = _latest(db, "select eval_run_id from eval_runs where status = 'finished' order by finished_at desc limit 1")
    _step("export --unrefined", ["export", "--unrefined"], out, env, steps)
    _step("finetune (unrefined)", ["finetune"], out, env, steps)
    unrefined_job = _latest(db, "select job_id from finetune_jobs where status = 'succeeded' order by finished_at desc limit 1")
    _step("evaluate (unrefined)", ["evaluate", "--model", str(unrefined_job), "--export", str(refined_export)], out, env, steps)
    unrefined_run = _latest(db, "select eval_run_id from eval_runs where status = 'finished' order by finished_at desc limit 1")
    total = time.perf_counter() - started
    channel = _latest(db, "select channel_id from training_examples group by 1 order by count(*) desc limit 1")
    latency = _predict_latency(db, env, channel)
    facts = {
        "messages": _latest(db, "select count(*) from stg_slack__messages"),
        "people": _latest(db, "select count(distinct user_id) from int_conversations"),
        "examples": _latest(db, "select count(*) from training_examples"),
        "train": _latest(db, "select count(*) from export_examples where export_id = ? and split = 'train'", [refined_export]),
        "valid": _latest(db, "select count(*) from export_examples where export_id = ? and split = 'valid'", [refined_export]),
        "nil_share": _latest(db, "select avg((label = 'nil')::int) from export_examples where export_id = ?", [refined_export]),
        "fit": _latest(db, "select result_files from finetune_jobs where job_id = ?", [refined_job]),
    }
    return {
        "name": name, "export": str(export), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"), "total_seconds": total,
        "steps": [{"step": m.name, "seconds": m.seconds, "peak_mb": m.peak_mb} for m in steps],
        "predict": latency, "facts": facts,
        "quality": {"refined": _quality(db, str(refined_run)), "unrefined": _quality(db, str(unrefined_run))},
        "models": {"refined": str(refined_job), "unrefined": str(unrefined_job)},
    }


def _fmt(v: object) -> str:
    return "–" if v is None else f"{float(v):.3f}"


def markdown(result: dict) -> str:
    name, facts = result["name"], result["facts"]
    fit = json.loads(facts["fit"])[0]["fit"] if facts.get("fit") else {}
    lines = [f"### {name}", "",
             f"{facts['messages']:,} messages, {facts['people']:,} people who wrote, {facts['examples']:,} examples "
             f"({facts['train']:,} train / {facts['valid']:,} validation, newest conversations last; "
             f"{100 * float(facts['nil_share'] or 0):.1f} % labelled nil by refine). Measured {result['date']} on "
             f"{result['machine']}; end to end {result['total_seconds']:.0f} s.", "",
             "| step | time | peak memory |", "| --- | ---: | ---: |"]
    lines += [f"| `beep {s['step']}` | {s['seconds']:.1f} s | {s['peak_mb']:,.0f} MB |" for s in result["steps"]]
    p = result["predict"]
    lines += ["", f"`beep predict` with the model loaded: median {p['median_ms']:.0f} ms, max {p['max_ms']:.0f} ms per "
              f"conversation (loading the model: {p['load_s']:.1f} s). Ranker: {fit.get('n_used', 0):,} train examples "
              f"used, responder among the candidates in {100 * (fit.get('candidate_recall') or 0):.1f} % of them, "
              f"{fit.get('mean_candidates') or 0:.0f} candidates each.", ""]
    header = "| model | " + " | ".join(t for _, _, t in QUALITY) + " |"
    lines += [header, "| --- |" + " ---: |" * len(QUALITY)]
    refined, unrefined = result["quality"]["refined"], result["quality"]["unrefined"]
    model_refined = next(k for k in refined if k.startswith("local:"))
    model_unrefined = next(k for k in unrefined if k.startswith("local:"))
    rows = [("**ranker (refined)**", refined[model_refined]), ("ranker (unrefined)", unrefined[model_unrefined])]
    rows += [(k, v) for k, v in sorted(refined.items()) if k.startswith("baseline:")]
    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(values.get(f"{s}:{m}")) for m, s, _ in QUALITY) + " |")
    n = refined["_n"]
    lines += ["", f"On {int(n.get('all', 0)):,} validation examples, {int(n.get('newcomer', 0)):,} of them newcomers "
              "(the responder had not written in the conversation yet)."]
    return "\n".join(lines)


def update_docs(sections: dict[str, str]) -> None:
    text = DOC.read_text()
    for name, body in sections.items():
        begin, end = f"<!-- BEGIN bench_ranker {name} (written by bench/bench_ranker.py) -->", f"<!-- END bench_ranker {name} -->"
        block = f"{begin}\n{body}\n{end}"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + block + rest.split(end, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", type=Path, help="a Slack export (.zip or folder); default: ubuntu-irc")
    parser.add_argument("--name", help="name of the run (folder and docs section)")
    parser.add_argument("--generate", metavar="PEOPLE:MESSAGES", help="generate a large workspace of this size instead")
    parser.add_argument("--quick", action="store_true", help="the bundled sample (a smoke run; docs not updated)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.quick:
        export, name = REPO / "sample_data" / "acme-slack-export", args.name or "sample"
    elif args.generate:
        people, messages = (int(x) for x in args.generate.split(":"))
        name = args.name or f"generated-{people}p-{messages // 1000}k"
        export = HERE / "out" / f"ranker-{name}" / "export"
        if not (export / "users.json").exists():
            subprocess.run([BEEP, "sample", "generate", str(export), "--profile", "large", "--people", str(people),
                            "--messages", str(messages), "--force"], check=True, cwd=REPO)
    else:
        export, name = args.export or UBUNTU, args.name or (args.export.stem if args.export else "ubuntu-irc")
        if not export.exists():
            parser.error(f"{export} does not exist (ubuntu-irc lives in ../shared/realdata/ beside the repo)")
    out = HERE / "out" / f"ranker-{name}"
    result = run(export, name, out)
    (out / "results.json").write_text(json.dumps(result, indent=2, default=str))
    text = markdown(result)
    print(text)
    if not args.quick and not args.no_docs:
        update_docs({name: text})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
