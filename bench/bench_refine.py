"""Benchmark `beep refine`: throughput under a rate limit, tokens per example, local speed.

    .venv/bin/python bench/bench_refine.py           # 10,000 examples (openai vs the fake server), 100,000 local
    .venv/bin/python bench/bench_refine.py --quick   # 1,000 / 10,000

1. openai provider against the fake OpenAI server of the tests (tests/python/fake_openai), which
   enforces a simulated 3,500 RPM / 90,000 TPM limit with a sliding window and answers 429 past it.
   Time is scaled: the limit's window is --window seconds instead of 60 (both sides use it), so a run
   that would take ~10 minutes of real rate-limited time takes ~window/60 of that. Reports examples
   per window-minute as a fraction of what the limit allows given the tokens the server counted
   per example (prompt + max_tokens, as OpenAI counts toward TPM), overall and after the first
   window (a sliding window lets the first window burst).
2. Tokens sent per example versus the seed post's method: one request per example with a 50-pair
   few-shot prefix (our few-shot set cycled to 50 pairs, same instructions), counted with beep.tokens.
3. local provider: refine of N examples end to end (read, fit, predict, write verdicts) in-process.

The examples are the bundled sample's training_examples (built with dbt once, cached in
bench/out/refine/), replicated with new ids to the wanted size. Writes its section of
docs/benchmarks.md between its BEGIN/END markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "bench"))
OUT = REPO / "bench" / "out" / "refine"
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BEGIN bench_refine (written by bench/bench_refine.py) -->", "<!-- END bench_refine -->"

from beep.config import Paths  # noqa: E402
from beep.db import open_duckdb  # noqa: E402
from measure import write_doc_section  # noqa: E402
from beep.dbt_runner import run_dbt  # noqa: E402
from beep.llm.calls import chat_prompt_tokens  # noqa: E402
from beep.refine.api import refine  # noqa: E402
from beep.refine.fewshot import default_fewshot_path, load_fewshot, strip_suffix  # noqa: E402
from beep.refine.prompting import INSTRUCTIONS  # noqa: E402

MODEL = "gpt-4o-mini"


def sample_db() -> Path:
    """The bundled sample built with dbt (cached)."""
    db = OUT / "sample.duckdb"
    if not db.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print("building the sample dataset with dbt (once) ...", flush=True)
        run_dbt(Paths(duckdb=db, workdir=OUT / "work"), ["run"], quiet=True)
    return db


def replicated_db(n: int, name: str) -> Paths:
    """A fresh DuckDB whose training_examples are the sample's, replicated with new ids to ``n`` rows."""
    db = OUT / f"{name}.duckdb"
    OUT.mkdir(parents=True, exist_ok=True)
    for path in (db, Path(str(db) + ".wal")):
        path.unlink(missing_ok=True)
    con = open_duckdb(str(db))
    con.execute(f"attach '{sample_db()}' as sample (read_only)")
    con.execute("create schema marts")  # the model's layer schema, as a build puts it (docs/analysts.md)
    con.execute(
        """
        create table marts.training_examples as
        with src as (select *, row_number() over (order by example_id) - 1 as k, count(*) over () as m from sample.marts.training_examples)
        select s.* exclude (example_id, k, m), md5(s.example_id || ':' || r.copy::varchar) as example_id
        from src s, range(0, ceil(? / (select count(*) from sample.marts.training_examples))::bigint) r(copy)
        qualify row_number() over (order by r.copy, s.k) <= ?
        """,
        [n, n],
    )
    con.close()
    return Paths(duckdb=db, workdir=OUT / "work", project_dir=REPO)


def bench_openai(n: int, rpm: int, tpm: int, window: float, batch_size: int, concurrency: int) -> dict:
    from fake_openai import FakeOpenAI
    from refine_testkit import blocks

    paths = replicated_db(n, "openai")
    with FakeOpenAI() as server:
        state = server.state
        state.set_rate_limit(rpm=rpm, tpm=tpm, window_seconds=window)
        state.chat_responder = lambda body: json.dumps(
            {num: ("strong" if len(text) > 60 else "weak") for num, text in blocks(body)}
        )
        os.environ.update(server.env({}))
        dry = refine(paths, provider="openai", model=MODEL, batch_size=batch_size, dry_run=True, refresh_dbt=False, progress=False)
        started = time.monotonic()
        summary = refine(
            paths, provider="openai", model=MODEL, batch_size=batch_size, concurrency=concurrency, rpm=rpm, tpm=tpm,
            window_seconds=window, refresh_dbt=False, progress=sys.stderr.isatty(), retry_base_seconds=0.05,
            retry_cap_seconds=window,
        )
        elapsed = time.monotonic() - started
        ok = state.requests_to("/v1/chat/completions")
        rejected = state.requests_to("/v1/chat/completions", status=429)
    rate_tokens = sum(r.rate_tokens for r in ok)
    tokens_per_example = rate_tokens / n
    allowed_per_window = min(tpm / tokens_per_example, rpm * batch_size)
    t0, t_end = ok[0].at, ok[-1].at
    span_windows = (t_end - t0) / window
    achieved = n / span_windows if span_windows else float("inf")
    # Utilisation of every full window after the first (the first may burst: a sliding window starts empty):
    # the tokens the server admitted in [t0 + kW, t0 + (k+1)W) over the limit.
    full = int((t_end - t0) // window)
    used = [0] * (full + 1)
    for r in ok:
        k = int((r.at - t0) // window)
        if k < len(used):
            used[k] += r.rate_tokens
    steady_windows = [u / tpm for u in used[1:full]]
    steady = sum(steady_windows) / len(steady_windows) if steady_windows else float("nan")
    sent_tokens = summary.prompt_tokens + summary.completion_tokens
    return {
        "examples": n,
        "requests": len(ok),
        "rejected_429": len(rejected),
        "decided": summary.n_strong + summary.n_weak,
        "window_seconds": window,
        "elapsed_seconds": round(elapsed, 2),
        "rate_tokens_per_example": round(tokens_per_example, 1),
        "allowed_examples_per_minute": round(allowed_per_window, 1),
        "achieved_examples_per_minute": round(achieved, 1),
        "fraction": round(achieved / allowed_per_window, 3),
        "steady_windows": len(steady_windows),
        "steady_fraction": round(steady, 3),
        "steady_min_fraction": round(min(steady_windows), 3) if steady_windows else float("nan"),
        "sent_tokens_per_example": round(sent_tokens / n, 1),
        "dry_run_prompt_tokens": dry.estimate.prompt_tokens,
        "server_prompt_tokens": sum(r.prompt_tokens for r in ok),
        "cost_usd": round(summary.cost, 4),
        "real_minutes_at_limit": round(n / allowed_per_window, 1),
    }


def seed_tokens_per_example(paths: Paths, sample: int = 500) -> float:
    """The seed's method: one request per example, a 50-pair few-shot prefix, a 1-token answer."""
    fewshot = load_fewshot(default_fewshot_path(REPO))
    pairs = []
    for i in range(50):
        example = fewshot.examples[i % len(fewshot.examples)]
        pairs += [{"role": "user", "content": example.text}, {"role": "assistant", "content": example.verdict}]
    con = open_duckdb(str(paths.duckdb), read_only=True)
    prompts = [strip_suffix(p) for (p,) in con.execute("select prompt from training_examples order by example_id limit ?", [sample]).fetchall()]
    con.close()
    total = 0
    for text in prompts:
        messages = [{"role": "system", "content": INSTRUCTIONS}, *pairs, {"role": "user", "content": text}]
        total += chat_prompt_tokens(messages, MODEL) + 1
    return total / len(prompts)


def bench_local(n: int) -> dict:
    paths = replicated_db(n, "local")
    started = time.monotonic()
    summary = refine(paths, provider="local", refresh_dbt=False, progress=False)
    elapsed = time.monotonic() - started
    return {
        "examples": n,
        "seconds": round(elapsed, 2),
        "examples_per_second": round(n / elapsed),
        "strong": summary.n_strong,
        "weak": summary.n_weak,
    }


def render(results: dict) -> str:
    o, loc = results["openai"], results["local"]
    return "\n".join(
        [
            BEGIN,
            "## Refine (`bench/bench_refine.py`)",
            "",
            f"Measured {results['when']} on {results['machine']}{' (quick size)' if results['quick'] else ''}.",
            "",
            f"**openai provider vs the fake server** — limit {results['rpm']:,} RPM / {results['tpm']:,} TPM, "
            f"sliding window of {o['window_seconds']} s standing for one minute (time runs {60 / o['window_seconds']:.0f}x faster), batch size {results['batch_size']}, "
            f"concurrency {results['concurrency']}:",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| examples refined | {o['decided']:,} of {o['examples']:,} in {o['requests']:,} requests ({o['rejected_429']} answered 429) |",
            f"| tokens per example counted toward TPM (prompt + max_tokens) | {o['rate_tokens_per_example']} |",
            f"| what the limit allows | {o['allowed_examples_per_minute']:,} examples / minute |",
            f"| TPM used in each full window after the first ({o['steady_windows']} windows) | **{o['steady_fraction']:.0%}** on average, {o['steady_min_fraction']:.0%} at least |",
            f"| whole run, first request to last | {o['achieved_examples_per_minute']:,} examples / minute = {o['fraction']:.0%} of the limit (the first window starts empty, so a short run can burst past 100 %) |",
            f"| real time this would take at the limit | {o['real_minutes_at_limit']} minutes (the seed: ~8 hours per 10,000) |",
            f"| dry-run prompt tokens vs counted by the server | {o['dry_run_prompt_tokens']:,} vs {o['server_prompt_tokens']:,} |",
            f"| cost at gpt-4o-mini list prices (no caching) | ${o['cost_usd']} |",
            "",
            f"**Tokens per example**: {o['sent_tokens_per_example']} sent (prompt + completion) vs "
            f"{results['seed_tokens_per_example']:.0f} for the seed's one request per example with a 50-pair "
            f"few-shot prefix = **{results['token_ratio']:.1%}** of it.",
            "",
            f"**local provider**: {loc['examples']:,} examples in **{loc['seconds']} s** ({loc['examples_per_second']:,}/s, "
            f"read + fit + predict + write), {loc['strong']:,} strong / {loc['weak']:,} weak.",
            "",
            "The fake server runs in the benchmark's process (one Python, threads), so the client and the server "
            "share the CPU; on a machine busy with other work the fractions drop.",
            END,
        ]
    )


def write_docs(section: str) -> None:
    """Replace this benchmark's section in docs/benchmarks.md (other sections are left alone)."""
    write_doc_section(DOCS, section, BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Smoke size: 1,000 examples (openai), 10,000 (local).")
    parser.add_argument("--examples", type=int, help="openai examples (default 10,000; 1,000 with --quick).")
    parser.add_argument("--local-examples", type=int, help="local examples (default 100,000; 10,000 with --quick).")
    parser.add_argument("--rpm", type=int, default=3500, help="Simulated requests per window.")
    parser.add_argument("--tpm", type=int, help="Simulated tokens per window (default 90,000; 18,000 with --quick so the smoke run spans several windows).")
    parser.add_argument("--window", type=float, help="Seconds that stand for one minute of the limit (default 6, i.e. 10x faster than real time; 1.5 with --quick).")
    parser.add_argument("--batch-size", type=int, default=20, help="Examples per request.")
    parser.add_argument("--concurrency", type=int, default=32, help="Requests in flight (time runs 10x faster than at the real limit, so 10x more requests are in flight; 8 suffices in real time).")
    parser.add_argument("--no-docs", action="store_true", help="Print only; don't update docs/benchmarks.md.")
    args = parser.parse_args(argv)
    n = args.examples or (1_000 if args.quick else 10_000)
    args.tpm = args.tpm or (18_000 if args.quick else 90_000)
    args.window = args.window or (1.5 if args.quick else 6.0)
    n_local = args.local_examples or (10_000 if args.quick else 100_000)

    local = bench_local(n_local)
    print(f"local: {local}", flush=True)
    openai_result = bench_openai(n, args.rpm, args.tpm, args.window, args.batch_size, args.concurrency)
    print(f"openai: {openai_result}", flush=True)
    seed = seed_tokens_per_example(replicated_db(min(n, 2000), "seedcount"))
    results = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} Linux, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end",
        "quick": args.quick,
        "rpm": args.rpm,
        "tpm": args.tpm,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "openai": openai_result,
        "local": local,
        "seed_tokens_per_example": seed,
        "token_ratio": openai_result["sent_tokens_per_example"] / seed,
    }
    print(f"tokens per example: ours {openai_result['sent_tokens_per_example']} vs seed {seed:.0f} = {results['token_ratio']:.1%}")
    if not args.no_docs:
        write_docs(render(results))
        print(f"updated {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
