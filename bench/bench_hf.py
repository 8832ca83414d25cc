"""Benchmark: training throughput of `beep finetune --provider hf` (the LoRA loop of beep.finetune.hf.train).

    .venv/bin/python bench/bench_hf.py                 # both models on the CPU, one subprocess each
    .venv/bin/python bench/bench_hf.py --model tiny    # only the tiny model
    .venv/bin/python bench/bench_hf.py --device cuda   # on a GPU (bf16), peak GPU memory too

Data: the bundled sample built with `beep build` and exported (bench/out/hf/), its train split's records
tokenized with the tests' tiny byte-level BPE tokenizer (tests/python/tiny_hf_model.py, trained on the
sample's prompts).

Models (random weights, no download):
  tiny  2 layers, hidden 64, ~1k vocabulary: the tests' model; completion-format records, batch 16,
        LoRA r 16 on q/k/v/o + lm_head and embed_tokens trained in full (what the tests train), 300 steps.
  0.5b  a Llama with Qwen2.5-0.5B's shape (24 layers, hidden 896, 14 heads / 2 KV heads, intermediate
        4864, vocabulary 151,936, tied embeddings: ~494M parameters); chat-format records (the default
        export, with its system prompt), batch 4, LoRA r 16 on q/k/v/o, 1 warm-up step then 3 timed.

Reported per model: parameters, trainable parameters, mean prompt tokens, examples/s and s/step over the
timed steps (after loading), peak resident memory of the process (ru_maxrss) and, on CUDA, peak GPU memory
(torch.cuda.max_memory_allocated). Each model runs in its own process (OMP_NUM_THREADS=1 unless --threads),
so the peaks are its own. Results go to bench/out/hf.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "hf"
sys.path.insert(0, str(ROOT / "tests" / "python"))

SETTINGS = {
    "tiny": {"format": "completion", "batch_size": 16, "warmup": 0, "steps": 300, "lm_head": True},
    "0.5b": {"format": "chat", "batch_size": 4, "warmup": 1, "steps": 3, "lm_head": False},
}


def _prepare() -> tuple[Path, dict[str, Path]]:
    """The sample built and exported in both formats, and the tiny model folder (made once)."""
    from beep.build import build
    from beep.config import SAMPLE_EXPORT, Paths
    from beep.export.api import export
    from beep.export.render import DEFAULT_SYSTEM_PROMPT

    paths = Paths(duckdb=OUT / "beep.duckdb", workdir=OUT / ".beep")
    files: dict[str, Path] = {}
    if not paths.duckdb.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        build(paths, SAMPLE_EXPORT, run_tests=False, quiet=True)
    for fmt, base in (("completion", "babbage-002"), ("chat", "gpt-4.1-mini-2025-04-14")):
        files[fmt] = Path(export(paths, format=fmt, base_model=base, show_progress=False).train_path)
    tiny = OUT / "tiny-llama"
    if not (tiny / "config.json").exists():
        from beep.db import open_duckdb
        from tiny_hf_model import build_tiny_model

        con = open_duckdb(str(paths.duckdb), read_only=True)
        texts = [r[0] for r in con.execute("select prompt from training_examples").fetchall()]
        con.close()
        build_tiny_model(tiny, texts + [DEFAULT_SYSTEM_PROMPT] * 50, [str(i) for i in range(10)] + ["nil"])
    return tiny, files


def _model(name: str, tiny: Path, device: str):  # noqa: ANN202 - a torch module
    from beep.finetune.hf.loading import dtype_for, load_base_model

    if name == "tiny":
        return load_base_model(tiny, device)
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=True, rope_theta=1_000_000.0)
    return LlamaForCausalLM(config).to(device=device, dtype=dtype_for(device))


def measure(name: str, device_choice: str) -> dict:
    """Train ``name`` for its steps in this process and return the numbers."""
    import torch

    from beep.finetune.hf.data import examples_of, label_tokens, read_records
    from beep.finetune.hf.loading import dtype_for, load_tokenizer, pick_device
    from beep.finetune.hf.train import HFOptions, LoraTrainer, lora_model

    settings = SETTINGS[name]
    tiny, files = _prepare()
    device = pick_device(device_choice)
    tokenizer = load_tokenizer(tiny)
    forms = label_tokens(tokenizer, [str(i) for i in range(10)] + ["nil"])
    records = read_records(files[settings["format"]])
    labels = [(r.get("completion") or r["messages"][-1]["content"]).strip() for r in records]
    examples = examples_of(records, labels, tokenizer, forms, 512)
    steps = settings["warmup"] + settings["steps"]
    options = HFOptions(base_model=str(tiny), batch_size=settings["batch_size"], train_lm_head=settings["lm_head"],
                        modules_to_save=("embed_tokens",) if name == "tiny" else (), learning_rate=5e-3,
                        max_steps=steps, n_epochs=100)
    started = time.perf_counter()
    base = _model(name, tiny, device)
    n_params = sum(p.numel() for p in base.parameters())
    model = lora_model(base, options)
    trainer = LoraTrainer(model, examples, options, pad_id=int(tokenizer.pad_token_id), device=device,
                          settings_hash="bench")
    loaded = time.perf_counter() - started
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(settings["warmup"]):
        trainer.train_step(step)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for step in range(settings["warmup"], steps):
        trainer.train_step(step)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    trained = settings["steps"] * settings["batch_size"]
    lengths = [len(trainer.batch(s)[i].input_ids) for s in range(settings["warmup"], steps)
               for i in range(len(trainer.batch(s)))]
    return {
        "model": name, "device": device, "dtype": str(dtype_for(device)).replace("torch.", ""),
        "threads": torch.get_num_threads(), "format": settings["format"], "parameters": n_params,
        "trainable": sum(p.numel() for p in trainer.params), "batch_size": settings["batch_size"],
        "timed_steps": settings["steps"], "mean_prompt_tokens": round(sum(lengths) / len(lengths), 1),
        "load_seconds": round(loaded, 2), "seconds_per_step": round(seconds / settings["steps"], 4),
        "examples_per_second": round(trained / seconds, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2),
        "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 1024 ** 3, 2) if device == "cuda" else None,
        "first_loss": round(trainer.state.losses[0].loss, 4), "last_loss": round(trainer.state.losses[-1].loss, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["tiny", "0.5b", "all"], default="all", help="which model (default: both)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="where to train (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS / torch threads (default 1)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # the measuring subprocess
    parser.add_argument("--fresh", action="store_true", help="rebuild bench/out/hf (the sample, exports, tiny model)")
    args = parser.parse_args()
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)})
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(measure(args.model, args.device)))
        return
    if args.fresh and OUT.exists():
        shutil.rmtree(OUT)
    _prepare()
    results = []
    for name in (["tiny", "0.5b"] if args.model == "all" else [args.model]):
        print(f"measuring {name} on {args.device} ...", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, "--one", "--model", name, "--device", args.device,
                               "--threads", str(args.threads)], capture_output=True, text=True, env=os.environ)
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{name:>5} {r['device']} {r['dtype']} {r['threads']} thread(s): {r['parameters']:,} parameters "
              f"({r['trainable']:,} trained), batch {r['batch_size']}, {r['mean_prompt_tokens']} prompt tokens: "
              f"{r['examples_per_second']} examples/s ({r['seconds_per_step']} s/step over {r['timed_steps']} steps), "
              f"peak RSS {r['peak_rss_gb']} GB" + (f", peak GPU {r['peak_gpu_gb']} GB" if r["peak_gpu_gb"] else ""))
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "hf.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
