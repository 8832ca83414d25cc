"""The trained adapter on disk: ``.beep/artifacts/finetune/<job_id>/adapter/`` (PEFT's
``adapter_config.json`` + ``adapter_model.safetensors``, the tokenizer files) and ``manifest.json``
beside it: every file's sha256, the base model folder and its fingerprint, the labels and their answer
tokens, the prompt settings. The job records the manifest's path and sha256, so loading checks the
manifest, then every file it lists, before anything is read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beep.checksums import sha256_file
from beep.finetune.hf.data import LabelTokens

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ArtifactError(ValueError):
    """The adapter folder is missing, changed, or its base model is gone; the message says what to do."""


@dataclass(frozen=True)
class Manifest:
    job_id: str
    base_model: str
    base_fingerprint: str
    export_id: str
    format: str
    system_prompt: str | None
    label_prefix: str
    label_ids: dict[str, int]
    max_length: int
    files: dict[str, str]  # relative path -> sha256

    @property
    def forms(self) -> LabelTokens:
        return LabelTokens(self.label_prefix, dict(self.label_ids))


def job_folder(artifacts_dir: Path, job_id: str) -> Path:
    return artifacts_dir / "finetune" / job_id


def save_adapter(model: Any, tokenizer: Any, folder: Path, *, job_id: str, base_model: Path, base_fingerprint: str,
                 export_id: str, fmt: str, system_prompt: str | None, forms: LabelTokens,
                 max_length: int) -> tuple[Path, str]:
    """Write the adapter, the tokenizer and the manifest; return (manifest path, its sha256)."""
    adapter = folder / "adapter"
    adapter.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(adapter))
    tokenizer.save_pretrained(str(adapter))
    files = {str(p.relative_to(folder)): sha256_file(p) for p in sorted(adapter.rglob("*")) if p.is_file()}
    manifest = {
        "format_version": FORMAT_VERSION, "job_id": job_id, "base_model": str(base_model),
        "base_fingerprint": base_fingerprint, "export_id": export_id, "format": fmt, "system_prompt": system_prompt,
        "label_prefix": forms.prefix, "label_ids": forms.ids, "max_length": max_length, "files": files,
    }
    path = folder / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path, sha256_file(path)


def verified_manifest(path: Path, sha256: str | None) -> Manifest:
    """The manifest at ``path`` after checking it and every file it lists; :class:`ArtifactError` otherwise."""
    retrain = "retrain with `beep finetune --provider hf` (the same command trains it again)"
    if not path.exists():
        raise ArtifactError(f"the adapter manifest {path} is missing: {retrain}")
    if sha256 and sha256_file(path) != sha256:
        raise ArtifactError(f"{path} changed since training (its sha256 is not the job's): {retrain}")
    raw = json.loads(path.read_text(encoding="utf-8"))
    folder = path.parent
    for name, digest in raw["files"].items():
        file = folder / name
        if not file.exists():
            raise ArtifactError(f"{file} (part of the adapter) is missing: {retrain}")
        if sha256_file(file) != digest:
            raise ArtifactError(f"{file} changed since training (sha256 differs from {path}): {retrain}")
    return Manifest(raw["job_id"], raw["base_model"], raw["base_fingerprint"], raw["export_id"], raw["format"],
                    raw.get("system_prompt"), raw["label_prefix"], {k: int(v) for k, v in raw["label_ids"].items()},
                    int(raw["max_length"]), dict(raw["files"]))


@dataclass
class LoadedAdapter:
    manifest: Manifest
    model: Any
    tokenizer: Any
    device: str


def load_adapter(path: Path, sha256: str | None, *, device: str = "auto") -> LoadedAdapter:
    """The base model with the adapter applied, its tokenizer, on ``device`` (checked first)."""
    from beep.finetune.hf.loading import (
        BaseModelError,
        check_base_model,
        fingerprint,
        load_base_model,
        pick_device,
        require_extra,
    )

    require_extra()
    manifest = verified_manifest(path, sha256)
    try:
        base = check_base_model(manifest.base_model)
    except BaseModelError as err:
        raise ArtifactError(f"the adapter of {manifest.job_id} was trained on {manifest.base_model}, which is no "
                            f"longer there ({err}): put the base model back at that path or retrain") from err
    if fingerprint(base) != manifest.base_fingerprint:
        raise ArtifactError(f"the base model folder {base} changed since {manifest.job_id} was trained on it "
                            "(config.json or a file's size differs): the adapter only fits the weights it was "
                            "trained on; restore them or retrain")
    from peft import PeftModel

    from beep.finetune.hf.loading import load_tokenizer

    device = pick_device(device)
    adapter_dir = path.parent / "adapter"
    tokenizer = load_tokenizer(adapter_dir)
    model = PeftModel.from_pretrained(load_base_model(base, device), str(adapter_dir), is_trainable=False)
    model.to(device)
    model.eval()
    return LoadedAdapter(manifest, model, tokenizer, device)


def merge_adapter(path: Path, sha256: str | None, out: Path, *, device: str = "cpu") -> Path:
    """The base model with the adapter merged into its weights, saved to ``out`` with the tokenizer: a
    plain model folder `vllm serve`, `transformers` or llama.cpp's `convert_hf_to_gguf.py` read like any
    other (vLLM serves no adapter trained with ``--train-lm-head`` / ``--modules-to-save``; merged, it
    serves the model itself)."""
    if out.exists() and any(out.iterdir()):
        raise ArtifactError(f"{out} exists and is not empty: pass a new folder for the merged model")
    loaded = load_adapter(path, sha256, device=device)
    merged = loaded.model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    loaded.tokenizer.save_pretrained(str(out))
    return out
