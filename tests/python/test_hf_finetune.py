"""`beep finetune --provider hf` on the bundled sample with a tiny random Llama built here (no download):
real loading, LoRA training killed with SIGKILL and resumed, evaluation beside the baselines, predict.

One session fixture trains the model every test reads (completion-format export): a subprocess
`beep finetune --provider hf` is killed with SIGKILL once it wrote a checkpoint, and the same command
run again resumes from it. The chat-format export goes through the CLI with a few steps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from rich.console import Console
from tiny_hf_model import build_tiny_model
from typer.testing import CliRunner

from beep.config import Paths
from beep.db import open_duckdb
from beep.evaluate.api import evaluate
from beep.evaluate.baselines import MAJORITY
from beep.export.api import export
from beep.export.render import DEFAULT_SYSTEM_PROMPT
from beep.finetune.api import finetune
from beep.finetune.hf.train import HFOptions

os.environ["HF_HUB_OFFLINE"] = "1"  # Beep sets them too; here before anything imports transformers
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402

LABELS = [str(i) for i in range(10)] + ["nil"]
#: What the tiny random model needs to learn the sample in ~300 steps: its output layer and embeddings
#: trained in full beside the LoRA adapter (a pretrained base needs neither).
TINY = dict(train_lm_head=True, modules_to_save=("embed_tokens",), learning_rate=5e-3, batch_size=16, n_epochs=2,
            max_steps=300, save_steps=50)
QUIET = Console(stderr=True, quiet=True)


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one thread (two are many times slower on a busy machine), restored afterwards so the
    rest of the session keeps its own setting. Subprocesses get OMP_NUM_THREADS=1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with _one_thread():
        yield


def _q(paths: Paths, sql: str, params: list | None = None) -> list:
    con = open_duckdb(str(paths.duckdb), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _copy(built: Paths, root: Path) -> Paths:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(built.duckdb, root / "beep.duckdb")
    return Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")


@pytest.fixture(scope="session")
def tiny_model(built_paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama whose BPE tokenizer was trained on the sample's prompts (labels: one token each)."""
    texts = [row[0] for row in _q(built_paths, "select prompt from training_examples")] + [DEFAULT_SYSTEM_PROMPT] * 50
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), texts, LABELS)


def _cli_args(paths: Paths, export_id: str, model: Path, **settings: object) -> list[str]:
    names = {"train_lm_head": "--train-lm-head", "modules_to_save": "--modules-to-save", "learning_rate": "--learning-rate",
             "batch_size": "--batch-size", "n_epochs": "--n-epochs", "max_steps": "--max-steps", "save_steps": "--save-steps"}
    args = ["--db", str(paths.duckdb), "--export", export_id, "--provider", "hf", "--base-model", str(model),
            "--device", "cpu"]
    for key, value in settings.items():
        if value is True:
            args.append(names[key])
        else:
            args += [names[key], ",".join(value) if isinstance(value, tuple) else str(value)]
    return args


@pytest.fixture(scope="session")
def trained(built_paths: Paths, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The completion-format sample export, trained by a `beep finetune` that is SIGKILLed after a
    checkpoint, then resumed by the same call in this process."""
    with _one_thread():
        return _train_killed_then_resumed(built_paths, tiny_model, tmp_path_factory)


def _train_killed_then_resumed(built_paths: Paths, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    paths = _copy(built_paths, tmp_path_factory.mktemp("hf-world"))
    exported = export(paths, format="completion", base_model="babbage-002", show_progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "beep.commands.finetune_cmd", "finetune",
           *_cli_args(paths, exported.export_id, tiny_model, **TINY)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    checkpoints = paths.artifacts_dir / "finetune"
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("hf-*/checkpoint.pt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    killed_output = proc.communicate(timeout=30)[0]
    assert proc.returncode == -signal.SIGKILL, killed_output  # killed mid-training, not finished
    (job_id,) = [p.parent.name for p in checkpoints.glob("hf-*/checkpoint.pt")]
    status, = _q(paths, "select status from finetune_jobs where job_id = ?", [job_id])[0]
    said: list[str] = []
    import beep.finetune.api as ft_api

    original = ft_api._say_default
    ft_api._say_default = lambda console: said.append  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        result = finetune(paths, export_id=exported.export_id, provider="hf",
                          hf_options=HFOptions(base_model=str(tiny_model), device="cpu", **TINY), console=QUIET)
        seconds = time.perf_counter() - started
    finally:
        ft_api._say_default = original  # type: ignore[assignment]
    return {"paths": paths, "export": exported, "result": result, "killed_status": status, "said": said,
            "killed_output": killed_output, "resume_seconds": seconds, "model": tiny_model}


def test_a_killed_run_resumes_from_its_checkpoint_and_is_recorded(trained: dict) -> None:
    paths, result = trained["paths"], trained["result"]
    assert trained["killed_status"] == "running"  # what a SIGKILL leaves behind
    resumed = [m for m in trained["said"] if m.startswith("resuming")]
    assert resumed, trained["said"]
    step = int(resumed[0].split("at step ")[1].split("/")[0])
    assert 50 <= step < 300 and step % 50 == 0  # continued from a checkpoint, did not restart
    assert result.status == "succeeded" and result.provider == "hf" and not result.reused
    assert result.fine_tuned_model == f"hf:{result.job_id}"
    # the loss of every step, once each, from both processes
    steps = [json.loads(d)["step"] for (d,) in _q(paths, "select data from finetune_events where job_id = ? and "
                                                        "event_id like '%-step-%' order by event_id", [result.job_id])]
    assert steps == list(range(1, 301))
    losses = [json.loads(d)["train_loss"] for (d,) in _q(paths, "select data from finetune_events where job_id = ? "
                                                          "and event_id like '%-step-%' order by event_id", [result.job_id])]
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < first - 2.0, (first, last)  # it learns: from ~ln(vocab) to below ln(10 labels)
    assert last < 2.2
    # adapter + tokenizer under .beep/artifacts with sha256, the run in finetune_jobs
    manifest = Path(result.artifact_path)
    assert manifest.parent.parent == paths.artifacts_dir / "finetune"
    from beep.checksums import sha256_file

    assert sha256_file(manifest) == result.artifact_sha256
    files = json.loads(manifest.read_text())["files"]
    assert {"adapter/adapter_model.safetensors", "adapter/adapter_config.json", "adapter/tokenizer.json"} <= set(files)
    assert all(sha256_file(manifest.parent / name) == digest for name, digest in files.items())
    assert not (manifest.parent / "checkpoint.pt").exists()  # the last checkpoint is the adapter
    hyper = json.loads(_q(paths, "select hyperparameters from finetune_jobs where job_id = ?", [result.job_id])[0][0])
    assert hyper["device"] == "cpu" and hyper["dtype"] == "float32" and hyper["train_lm_head"] is True
    # the same command again: the finished job, nothing trained
    again = finetune(paths, export_id=trained["export"].export_id, provider="hf", console=QUIET,
                     hf_options=HFOptions(base_model=str(trained["model"]), device="cpu", **TINY))
    assert again.reused and again.job_id == result.job_id


def test_it_beats_the_majority_baseline_on_the_sample(trained: dict) -> None:
    paths, result, exported = trained["paths"], trained["result"], trained["export"]
    evaluated = evaluate(paths, model=result.job_id, console=QUIET, refresh_views=False)
    assert evaluated.n == exported.n_valid and evaluated.provider == "hf" and evaluated.cost == 0.0
    model, majority = evaluated.headline[result.fine_tuned_model], evaluated.headline[MAJORITY]
    assert model["all"]["person_top_1"] > majority["all"]["person_top_1"] + 0.03, (model["all"], majority["all"])
    assert model["all"]["f1_macro"] > majority["all"]["f1_macro"]
    # the same prediction rows as every model: ranked labels with log-probabilities, nil among them
    top_k, = _q(paths, "select top_k from predictions where eval_run_id = ? and model = ? limit 1",
                [evaluated.eval_run_id, result.fine_tuned_model])[0]
    ranked = json.loads(top_k)
    assert len(ranked) == 10 and {r["label"] for r in ranked} <= set(LABELS)
    assert all(r["logprob"] < 0 for r in ranked) and ranked == sorted(ranked, key=lambda r: -r["logprob"])
    print(f"\nhf tiny model on the sample: {model['all']}\nmajority: {majority['all']}")


def test_predict_with_the_hf_model(trained: dict) -> None:
    from beep.live.predict import predict

    paths, result = trained["paths"], trained["result"]
    prediction = predict(paths, model=result.job_id, text="@dan can you take a look at the failing build?\n\nanyone?", k=3)
    assert prediction.model == result.fine_tuned_model and len(prediction.candidates) == 3
    probabilities = [c.probability for c in prediction.candidates]
    assert all(0 < p < 1 for p in probabilities) and probabilities == sorted(probabilities, reverse=True)
    assert prediction.nobody_probability is not None and 0 <= prediction.nobody_probability < 1


def test_resuming_gives_the_weights_of_an_uninterrupted_run(trained: dict, tmp_path: Path, monkeypatch) -> None:
    """Killed (here: an exception after step 7, checkpoint at 6) and resumed == never interrupted, bit for bit."""
    from beep.finetune.hf import train as train_module

    paths, exported = trained["paths"], trained["export"]
    options = HFOptions(base_model=str(trained["model"]), device="cpu", train_lm_head=True, learning_rate=5e-3,
                        batch_size=8, max_steps=12, save_steps=3, lora_dropout=0.1, seed=3)
    straight = finetune(paths, export_id=exported.export_id, provider="hf", hf_options=options, console=QUIET)
    shutil.rmtree(Path(straight.artifact_path).parent)
    open_duckdb(str(paths.duckdb)).execute("delete from finetune_jobs where job_id = ?", [straight.job_id]).close()

    real_step = train_module.LoraTrainer.train_step

    def crash_after_7(self, step):  # noqa: ANN001
        if step == 7:
            raise RuntimeError("simulated crash")
        return real_step(self, step)

    monkeypatch.setattr(train_module.LoraTrainer, "train_step", crash_after_7)
    with pytest.raises(RuntimeError, match="simulated crash"):
        finetune(paths, export_id=exported.export_id, provider="hf", hf_options=options, console=QUIET)
    status, error = _q(paths, "select status, error from finetune_jobs where job_id = ?", [straight.job_id])[0]
    assert status == "failed" and "resume from step 6" in error
    monkeypatch.setattr(train_module.LoraTrainer, "train_step", real_step)
    resumed = finetune(paths, export_id=exported.export_id, provider="hf", hf_options=options, console=QUIET)
    assert resumed.job_id == straight.job_id and resumed.status == "succeeded"
    assert resumed.artifact_sha256 == straight.artifact_sha256  # the same adapter bytes, the same manifest


def test_chat_export_through_the_cli_evaluate_and_predict(built_paths: Paths, tiny_model: Path, tmp_path: Path) -> None:
    from beep.cli import app

    paths = _copy(built_paths, tmp_path / "chat")
    exported = export(paths, show_progress=False)  # the default: chat records with the system prompt
    runner = CliRunner()
    trained = runner.invoke(app, ["finetune", *_cli_args(paths, exported.export_id, tiny_model, train_lm_head=True,
                                                          max_steps=8, batch_size=4, save_steps=4), "--json"])
    assert trained.exit_code == 0, trained.output
    job = json.loads(trained.stdout[trained.stdout.index("{"):])
    assert job["provider"] == "hf" and job["status"] == "succeeded"
    assert "step 8/8" in trained.output and "ETA" in trained.output  # progress with loss and ETA in a pipe
    evaluated = runner.invoke(app, ["evaluate", "--db", str(paths.duckdb), "--model", job["job_id"], "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    head = json.loads(evaluated.stdout[evaluated.stdout.index("{"):])
    assert head["provider"] == "hf" and MAJORITY in json.dumps(head)
    predicted = runner.invoke(app, ["predict", "--db", str(paths.duckdb), "--model", job["job_id"],
                                    "--text", "the deploy failed again\n\nwho knows the runner?", "--json"])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout[predicted.stdout.index("{"):])["model"] == job["fine_tuned_model"]


def test_refuses_a_base_model_that_is_no_folder_and_labels_of_several_tokens(trained: dict, tmp_path: Path) -> None:
    from beep.finetune.hf.data import LabelTokenError, label_tokens
    from beep.finetune.hf.loading import BaseModelError, load_tokenizer

    paths, exported = trained["paths"], trained["export"]
    for bad, message in (("Qwen/Qwen2.5-0.5B", "not an existing folder"), (str(tmp_path), "no config.json")):
        started = time.monotonic()
        with pytest.raises(BaseModelError, match=message):
            finetune(paths, export_id=exported.export_id, provider="hf", base_model=bad, console=QUIET)
        assert time.monotonic() - started < 5  # never the 46 s of hub retries
    tokenizer = load_tokenizer(trained["model"])
    with pytest.raises(LabelTokenError, match="'123456', 'zz_unknown_label'.*more than one token"):
        label_tokens(tokenizer, ["3", "123456", "zz_unknown_label"])
    forms = label_tokens(tokenizer, LABELS)
    assert forms.prefix == " " and len(set(forms.ids.values())) == len(LABELS)
    runner = CliRunner()
    from beep.cli import app

    out = runner.invoke(app, ["finetune", "--db", str(paths.duckdb), "--provider", "hf"])
    assert out.exit_code == 2 and "needs --base-model" in out.output


def test_merge_gives_a_plain_model_with_the_adapters_scores(trained: dict, tmp_path: Path) -> None:
    """`beep finetune merge`: base + adapter in one folder (what vLLM serves when the adapter has modules_to_save)."""
    from transformers import AutoModelForCausalLM

    from beep.cli import app
    from beep.finetune.hf.artifacts import load_adapter
    from beep.finetune.hf.scoring import last_position_logits

    paths, result = trained["paths"], trained["result"]
    out = tmp_path / "merged"
    merged = CliRunner().invoke(app, ["finetune", "merge", result.fine_tuned_model, str(out), "--db", str(paths.duckdb)])
    assert merged.exit_code == 0, merged.output
    adapter = load_adapter(Path(result.artifact_path), result.artifact_sha256, device="cpu")
    plain = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True).eval()
    prompts = [adapter.tokenizer("who can review the sql join?\n\n###\n\n")["input_ids"]]
    pad = int(adapter.tokenizer.pad_token_id)
    with torch.no_grad():
        expected = last_position_logits(adapter.model, prompts, pad, "cpu")
        got = last_position_logits(plain, prompts, pad, "cpu")
    assert torch.allclose(expected, got, atol=1e-4)
    again = CliRunner().invoke(app, ["finetune", "merge", result.job_id, str(out), "--db", str(paths.duckdb)])
    assert again.exit_code == 1 and "not empty" in again.output
