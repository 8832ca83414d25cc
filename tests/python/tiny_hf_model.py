"""A tiny random-initialised causal language model, built offline for the `--provider hf` tests.

:func:`build_tiny_model` trains a byte-level BPE tokenizer with `tokenizers` on the given texts
(the sample export's prompts), adds the labels (``0``..``9``, ``nil``, with and without a leading
space) as tokens of their own so each is one token, and saves a 2-layer Llama with random weights
beside it: a folder `transformers` loads like any downloaded model, without a network.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

VOCAB_SIZE = 1024


def build_tiny_model(folder: Path, texts: Iterable[str], labels: Sequence[str], *, seed: int = 0,
                     hidden: int = 64, layers: int = 2) -> Path:
    """Write tokenizer + config + random weights to ``folder``; return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<pad>"]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    # every label one token of its own, with and without the leading space
    tok.add_tokens([form for label in labels for form in (label, " " + label)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=512, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
