"""The LoRA training loop: seeded, deterministic batch order, resumable from its last checkpoint.

Step ``s`` always trains the same batch: epoch ``s // steps_per_epoch`` shuffles the examples with a
generator seeded from (seed, epoch), and the batch is that epoch's ``s % steps_per_epoch``-th slice.
The learning rate is a function of the step (linear warm-up, then linear decay to zero). So a run
resumed from the checkpoint of step ``s`` — the trainable weights, AdamW's moments and the RNG
state, written atomically (a temporary file renamed over the old one) — continues exactly where
the killed run was, and ends with the weights an uninterrupted run ends with.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from beep.finetune.hf.data import DEFAULT_MAX_LENGTH, Example
from beep.finetune.hf.scoring import last_position_logits

#: Bumped when a change of this loop would train other weights from the same settings.
LOOP_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class HFOptions:
    """Everything `beep finetune --provider hf` takes besides the export."""

    base_model: str
    lora_r: int = 16
    lora_alpha: int | None = None  # default: 2 x r
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ()  # empty: the attention projections the model has (see pick_targets)
    train_lm_head: bool = False
    modules_to_save: tuple[str, ...] = ()  # trained in full beside the adapter (e.g. embed_tokens)
    n_epochs: int = 3
    learning_rate: float = 2e-4
    batch_size: int = 8
    max_steps: int | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    save_steps: int = 50
    device: str = "auto"
    seed: int = 0
    warmup_fraction: float = 0.05

    def shaping(self) -> dict[str, Any]:
        """The settings that shape the trained weights (hashed into the job id; not device nor save_steps)."""
        values = asdict(self)
        for name in ("base_model", "device", "save_steps"):
            values.pop(name)
        values["lora_alpha"] = self.alpha
        values["target_modules"] = list(self.target_modules)
        values["modules_to_save"] = list(self.modules_to_save)
        values["loop_version"] = LOOP_VERSION
        return values

    @property
    def alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r


#: Projections LoRA adapts by default, by architecture family (the first set the model has wins).
DEFAULT_TARGETS: tuple[tuple[str, ...], ...] = (
    ("q_proj", "k_proj", "v_proj", "o_proj"),  # Llama, Qwen, Mistral, Gemma, Phi-3
    ("c_attn", "c_proj"),  # GPT-2
    ("query_key_value", "dense"),  # GPT-NeoX, Falcon
)


def pick_targets(model: Any, asked: Sequence[str]) -> list[str]:
    """The module names LoRA wraps: those asked for (each must exist), else the model's attention projections."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if asked:
        missing = [m for m in asked if m not in names]
        if missing:
            linear = sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules()
                             if type(mod).__name__ in ("Linear", "Conv1D")})
            raise ValueError(f"--lora-target-modules {', '.join(missing)}: the model has no such module "
                             f"(its linear layers: {', '.join(linear)})")
        return list(asked)
    for family in DEFAULT_TARGETS:
        found = [m for m in family if m in names]
        if found:
            return found
    raise ValueError("Beep does not know this architecture's attention projections: name them with "
                     "--lora-target-modules (e.g. q_proj,v_proj)")


def lora_model(model: Any, options: HFOptions) -> Any:
    """``model`` with LoRA adapters (seeded), and lm_head fully trained when asked (``modules_to_save``)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(options.seed)
    config = LoraConfig(
        r=options.lora_r, lora_alpha=options.alpha, lora_dropout=options.lora_dropout,
        target_modules=pick_targets(model, options.target_modules), task_type="CAUSAL_LM", bias="none",
        modules_to_save=(["lm_head"] if options.train_lm_head else []) + list(options.modules_to_save) or None,
    )
    return get_peft_model(model, config)


@dataclass
class StepLog:
    step: int
    loss: float
    learning_rate: float
    epoch: int


@dataclass
class TrainState:
    """What a checkpoint holds besides the weights and the optimizer."""

    step: int = 0
    losses: list[StepLog] = field(default_factory=list)


class LoraTrainer:
    """Trains the LoRA weights of ``model`` on ``examples``; see the module docstring."""

    def __init__(self, model: Any, examples: Sequence[Example], options: HFOptions, *, pad_id: int, device: str,
                 settings_hash: str) -> None:
        import torch

        if not examples:
            raise ValueError("no training examples")
        self.model = model
        self.examples = list(examples)
        self.options = options
        self.pad_id = pad_id
        self.device = device
        self.settings_hash = settings_hash
        self.steps_per_epoch = math.ceil(len(self.examples) / options.batch_size)
        planned = self.steps_per_epoch * options.n_epochs
        self.total_steps = min(planned, options.max_steps) if options.max_steps else planned
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=options.learning_rate, weight_decay=0.0)
        self.state = TrainState()
        self._orders: dict[int, list[int]] = {}

    # -- schedule ---------------------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        """Linear warm-up over ``warmup_fraction`` of the steps, then linear decay to 0 (0-based step)."""
        warmup = max(1, round(self.total_steps * self.options.warmup_fraction))
        if step < warmup:
            return self.options.learning_rate * (step + 1) / warmup
        remaining = max(1, self.total_steps - warmup)
        return self.options.learning_rate * max(0.0, (self.total_steps - step) / remaining)

    def batch(self, step: int) -> list[Example]:
        import torch

        epoch = step // self.steps_per_epoch
        if epoch not in self._orders:
            generator = torch.Generator().manual_seed(self.options.seed * 1_000_003 + epoch)
            self._orders = {epoch: torch.randperm(len(self.examples), generator=generator).tolist()}
        i = step % self.steps_per_epoch
        size = self.options.batch_size
        return [self.examples[j] for j in self._orders[epoch][i * size:(i + 1) * size]]

    # -- one step ---------------------------------------------------------------------------------
    def train_step(self, step: int) -> StepLog:
        import torch

        self.model.train()
        batch = self.batch(step)
        lr = self.learning_rate(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        logits = last_position_logits(self.model, [ex.input_ids for ex in batch], self.pad_id, self.device)
        target = torch.tensor([ex.label_id for ex in batch], dtype=torch.long, device=logits.device)
        loss = torch.nn.functional.cross_entropy(logits, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        log = StepLog(step + 1, float(loss.detach()), lr, step // self.steps_per_epoch + 1)
        self.state.step = step + 1
        self.state.losses.append(log)
        return log

    def run(self, on_step: Callable[[StepLog], None], *, checkpoint: Path | None = None,
            on_checkpoint: Callable[[int], None] | None = None) -> None:
        """Train from ``self.state.step`` to the last step; checkpoint every ``save_steps`` steps."""
        for step in range(self.state.step, self.total_steps):
            log = self.train_step(step)
            on_step(log)
            if checkpoint is not None and log.step % self.options.save_steps == 0 and log.step < self.total_steps:
                self.save(checkpoint)
                if on_checkpoint is not None:
                    on_checkpoint(log.step)

    # -- checkpoints ------------------------------------------------------------------------------
    def trainable_state(self) -> dict[str, Any]:
        return {name: p.detach().to("cpu").clone() for name, p in self.model.named_parameters() if p.requires_grad}

    def save(self, path: Path) -> None:
        """Weights, optimizer and RNG state of the current step, atomically (a kill leaves the old one)."""
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "settings_hash": self.settings_hash,
            "step": self.state.step,
            "losses": [asdict(log) for log in self.state.losses],
            "trainable": self.trainable_state(),
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device == "cuda" else None,
        }
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        torch.save(payload, tmp)
        os.replace(tmp, path)

    def load(self, path: Path) -> bool:
        """Resume from ``path`` when it is a checkpoint of these settings; False when there is none."""
        import torch

        if not path.exists():
            return False
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - a truncated file from a kill mid-write is never renamed in, but say so
            raise ValueError(f"checkpoint {path} cannot be read ({err}): delete it to train from the start") from err
        if payload.get("settings_hash") != self.settings_hash:
            raise ValueError(f"checkpoint {path} belongs to other settings: delete it to train from the start")
        missing, unexpected = self.model.load_state_dict(payload["trainable"], strict=False)
        wanted = {name for name, p in self.model.named_parameters() if p.requires_grad}
        if unexpected or wanted - set(payload["trainable"]):
            raise ValueError(f"checkpoint {path} does not match this model's adapter: delete it to train from the start")
        del missing  # the frozen base weights, loaded from the base model folder
        self.optimizer.load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["rng"])
        if payload.get("cuda_rng") is not None and self.device == "cuda":
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        self.state = TrainState(int(payload["step"]), [StepLog(**log) for log in payload["losses"]])
        return True
