"""Loading a local base model: never the network, a clear error for anything that is not a model folder.

``transformers`` treats a ``--base-model`` that is no folder as a hub id and retries the hub for
about 46 s before failing. Beep sets ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` before
importing it and refuses such a value itself, naming what to do.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

#: Files a base model folder must hold (the weights may be sharded or in another format).
REQUIRED_FILES = ("config.json",)
WEIGHT_SUFFIXES = (".safetensors", ".bin")


class BaseModelError(ValueError):
    """``--base-model`` is not a usable local model folder; the message says what to do."""


class MissingExtra(RuntimeError):
    """torch / transformers / peft are not installed."""


def go_offline() -> None:
    """No hub access from this process: set before transformers is imported (it reads them once)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def require_extra() -> None:
    """Import the hf extra's packages, or say how to install them."""
    go_offline()
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise MissingExtra(
            f"--provider hf needs torch, transformers and peft ({err.name} is missing): install them with "
            "`uv sync --extra hf` (several GB with PyPI's CUDA build of torch; see docs/finetune-open-model.md)"
        ) from err


def check_base_model(value: str | os.PathLike[str]) -> Path:
    """The base model folder, resolved; :class:`BaseModelError` unless it exists and holds a model."""
    path = Path(value).expanduser()
    if not path.exists():
        raise BaseModelError(
            f"--base-model {str(value)!r} is not an existing folder. Beep never downloads models: download one "
            "yourself (e.g. `huggingface-cli download Qwen/Qwen2.5-0.5B --local-dir models/qwen2.5-0.5b`) and pass "
            "that folder"
        )
    if not path.is_dir():
        raise BaseModelError(f"--base-model {path} is a file, not a model folder (one with config.json, the "
                             "tokenizer files and the weights)")
    missing = [name for name in REQUIRED_FILES if not (path / name).exists()]
    if missing:
        raise BaseModelError(f"{path} has no {', '.join(missing)}: is it a Hugging Face model folder? Pass the folder "
                             "`save_pretrained` or `huggingface-cli download --local-dir` wrote")
    if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in path.iterdir()):
        raise BaseModelError(f"{path} holds no weights (*.safetensors or *.bin): the download may be incomplete")
    return path.resolve()


def fingerprint(path: Path) -> str:
    """A cheap identity of a model folder: config.json's bytes and every file's name and size (hashing
    gigabytes of weights on every run would cost more than the check is worth)."""
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for item in sorted(path.iterdir()):
        if item.is_file():
            digest.update(f"{item.name}:{item.stat().st_size}\n".encode())
    return digest.hexdigest()


def pick_device(choice: str = "auto") -> str:
    """``cuda`` when asked or (``auto``) available, else ``cpu``."""
    import torch

    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU here (torch.cuda.is_available() is False)")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def dtype_for(device: str) -> Any:
    """bf16 on a GPU that has it, float32 otherwise (CPU bf16 is slow and imprecise)."""
    import torch

    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.pad_token_id is None:  # batches are padded on the left; the pad id is never attended to
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token_id is None:
        raise BaseModelError(f"the tokenizer of {path} has no pad, eos or unk token to pad batches with")
    return tokenizer


def load_base_model(path: Path, device: str) -> Any:
    """The causal LM from ``path`` on ``device``, in :func:`dtype_for` precision."""
    import transformers
    from transformers import AutoModelForCausalLM

    dtype = dtype_for(device)
    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, **{key: dtype})
    except (OSError, ValueError) as err:
        raise BaseModelError(f"transformers could not load a causal language model from {path}: {err}") from err
    return model.to(device)
