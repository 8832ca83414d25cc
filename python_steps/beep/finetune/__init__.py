"""Fine-tuning: the local scikit-learn responder model and remote jobs (OpenAI-compatible, Azure),
all tracked alike in the DuckDB tables ``finetune_jobs`` and ``finetune_events``."""
