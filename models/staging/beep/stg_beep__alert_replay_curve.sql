{#-
  The alert replay's curve (table alert_replay_curve), written by `beep evaluate`
  (python_steps/beep/evaluate/alert_replay.py), typed for the marts. Ephemeral like every stg_beep__
  model: the mart views that read it read the table itself. On a fresh DuckDB: typed, no rows.
-#}
{{ config(materialized='ephemeral') }}

{{ source_or_empty('beep_evaluate', 'alert_replay_curve', [
        ['eval_run_id', 'string'], ['model', 'string'], ['period', 'string'], ['min_probability', 'float'],
        ['alerts', 'integer'], ['useful', 'integer'], ['precision', 'float'], ['joins', 'integer'],
        ['joins_alerted', 'integer'], ['recall', 'float'], ['alerts_per_person_day', 'float'],
        ['is_operating_point', 'boolean'],
    ]) }}
