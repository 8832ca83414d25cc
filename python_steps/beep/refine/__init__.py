"""Refinement: a few-shot strong/weak classifier marks every training example; weak ones get ` nil`.

- fewshot.py — few-shot sets (the sample's seeds/fewshot_examples.csv, the generic seeds/fewshot_generic.csv), their content hash, which one a dataset gets
- suggest.py — `beep fewshot suggest`: candidates from the user's dataset, spread over kinds, with current verdicts
- examples.py — which examples still need a verdict under a key (few-shot hash x provider x model)
- store.py — verdicts and runs in DuckDB, written in short transactions as they arrive
- local.py — the offline classifier fitted on the few-shot set: words + sign-constrained shape features (provider `local`)
- prompting.py — the byte-identical few-shot prefix, batched questions, strict answer parsing
- openai_provider.py — provider `openai` over beep.llm (paced, retried, resumable)
- batch_api.py — the same through the Batch API (upload, poll, download), resumable across runs
- summarize.py — optional cached summaries of long few-shot examples
- estimate.py — dry-run plans: requests, tokens (beep.tokens), cost (seeds/model_prices.csv)
- api.py — `refine(paths, provider=..., model=..., **options) -> RefineSummary`
"""
