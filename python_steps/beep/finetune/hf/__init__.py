"""`beep finetune --provider hf`: LoRA fine-tuning of a local open causal language model.

* :mod:`.loading` — the offline switch, the ``--base-model`` folder check, device and dtype;
* :mod:`.data` — the export's records as token ids, the label as one token (loss only on it);
* :mod:`.train` — the seeded, resumable training loop with its checkpoints and progress;
* :mod:`.artifacts` — the adapter + tokenizer under ``.beep/artifacts`` with their sha256;
* :mod:`.scoring` — each label's log-probability given the prompt (evaluate, predict);
* :mod:`.job` — the run recorded in ``finetune_jobs`` / ``finetune_events``.

Everything here imports torch, transformers and peft (the ``hf`` extra) lazily: the default install
never needs them.
"""
