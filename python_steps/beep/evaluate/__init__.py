"""`beep evaluate`, `beep report`: score a fine-tuned model on an export's validation split beside
baselines, into DuckDB tables ``eval_runs`` / ``predictions`` / ``metrics``, replay the alert policy,
render a report. The models themselves are asked through :mod:`beep.predictors`; live prediction
(`beep predict`, :mod:`.predict`) is a room of its own (docs/architecture.md)."""
