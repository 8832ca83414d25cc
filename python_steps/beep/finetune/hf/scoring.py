"""Each label's log-probability given the prompt: the model's next-token distribution after the
prompt, read at the labels' answer tokens (:mod:`.data`). Training minimises the same quantity's
negative for the true label, so what is trained is what is scored."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from beep.finetune.hf.data import LabelTokens, left_pad


def last_position_logits(model: Any, batch: Sequence[Sequence[int]], pad_id: int, device: str) -> Any:
    """Logits over the vocabulary for the token after each prompt of ``batch`` ([batch, vocab], float32).

    Prompts are left-padded with explicit position ids, so each ends at the last position and only that
    position's logits are computed (``logits_to_keep=1``: no [batch, length, vocab] tensor)."""
    import torch

    ids, mask, pos = left_pad(batch, pad_id)
    inputs = {
        "input_ids": torch.tensor(ids, dtype=torch.long, device=device),
        "attention_mask": torch.tensor(mask, dtype=torch.long, device=device),
        "position_ids": torch.tensor(pos, dtype=torch.long, device=device),
    }
    try:
        out = model(**inputs, logits_to_keep=1, use_cache=False)
    except TypeError:  # a model class without logits_to_keep: all positions, then the last one
        out = model(**inputs, use_cache=False)
    return out.logits[:, -1, :].float()


def rank_labels(logits_row: Any, forms: LabelTokens, top_k: int) -> list[tuple[str, float]]:
    """The ``top_k`` labels by log-probability (over the whole vocabulary), best first."""
    import torch

    logprobs = torch.log_softmax(logits_row, dim=-1)
    labels = forms.labels
    index = torch.tensor([forms.ids[label] for label in labels], device=logprobs.device)
    values = logprobs.index_select(0, index).tolist()
    ranked = sorted(zip(labels, values), key=lambda kv: (-kv[1], kv[0]))
    return [(label, float(v) if math.isfinite(v) else -math.inf) for label, v in ranked[: max(1, top_k)]]


def score_batches(model: Any, prompts: Sequence[Sequence[int]], forms: LabelTokens, *, pad_id: int, device: str,
                  top_k: int, batch_size: int = 16) -> list[list[tuple[str, float]]]:
    """Ranked labels of every prompt (token ids), in order, ``batch_size`` prompts per forward pass."""
    import torch

    out: list[list[tuple[str, float]]] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            logits = last_position_logits(model, prompts[start: start + batch_size], pad_id, device)
            out.extend(rank_labels(row, forms, top_k) for row in logits)
    return out
