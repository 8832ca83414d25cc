"""Export: validated train/validation JSONL from the dataset in DuckDB, split without leakage,
checked, recorded (``exports``, ``export_checks``, ``export_examples``, ``export_labels``) and
byte-identical for the same inputs and settings. The entry point is :func:`beep.export.api.export`."""
