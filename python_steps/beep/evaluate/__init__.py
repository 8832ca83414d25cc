"""`beep evaluate`, `beep report`, `beep predict`: score a fine-tuned model (local or
OpenAI-compatible) on an export's validation split beside baselines, into DuckDB tables
``eval_runs`` / ``predictions`` / ``metrics``; render a report; predict for one conversation."""
