{#-
  The `beep evaluate` runs (table eval_runs), written by Python (python_steps/beep/migrations.py), typed for the marts.
  Ephemeral: it compiles into each mart view that reads it, so those views read the table itself
  and stay live as Python writes (python_steps/beep/refine/refined_model.py and evaluate/views.py
  check that SQL). On a fresh DuckDB where the table does not exist yet: typed, no rows.
-#}
{{ config(materialized='ephemeral') }}

{{ source_or_empty('beep_evaluate', 'eval_runs', [
        ['eval_run_id', 'string'], ['model', 'string'], ['job_id', 'string'], ['export_id', 'string'],
        ['split', 'string'], ['n', 'integer'], ['provider', 'string'], ['status', 'string'],
        ['started_at', 'timestamp'], ['finished_at', 'timestamp'], ['cost', 'float'], ['error', 'string'],
        ['run_kind', 'string'],
    ]) }}
