{#-
  The latest metrics per evaluated model: every metric row (model and baselines, every slice,
  overall and per label) of the most recently finished run of each evaluated model on each export
  and split.
-#}
{{ config(materialized='view') }}

select
    metric_row_id,
    eval_run_id,
    evaluated_model,
    export_id,
    split,
    run_finished_at,
    model,
    is_baseline,
    slice,
    metric,
    label,
    value,
    support
from {{ ref('evaluation_metrics') }}
where is_latest_run
