{#-
  The stored predictions (table predictions), written by Python (python_steps/beep/migrations.py), typed for the marts.
  Ephemeral: it compiles into each mart view that reads it, so those views read the table itself
  and stay live as Python writes (python_steps/beep/refine/refined_model.py and evaluate/views.py
  check that SQL). On a fresh DuckDB where the table does not exist yet: typed, no rows.
-#}
{{ config(materialized='ephemeral') }}

{{ source_or_empty('beep_evaluate', 'predictions', [
        ['eval_run_id', 'string'], ['model', 'string'], ['example_id', 'string'],
        ['true_label', 'string'], ['predicted_label', 'string'], ['true_label_rank', 'integer'],
        ['raw_output', 'string'], ['newcomer', 'boolean'],
        ['prompt_tokens', 'integer'], ['completion_tokens', 'integer'],
        ['responder_user_id', 'string'], ['top_people', 'string'], ['responder_rank', 'integer'],
        ['outsider_rank', 'integer'], ['nobody_probability', 'float'],
    ]) }}
