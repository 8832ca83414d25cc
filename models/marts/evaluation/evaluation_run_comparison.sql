{#-
  Run-to-run comparison: each overall metric of each model (or baseline) on each slice, next to the
  same metric in the previous finished run of the same evaluated model on the same split, with the
  change. A new export, a retrained model or a rebuilt dataset shows up here as a delta.
-#}
{{ config(materialized='view') }}

with

overall as (
    select * from {{ ref('evaluation_metrics') }}
    where label is null
),

sequenced as (
    select
        *,
        row_number() over (
            partition by evaluated_model, split, model, slice, metric order by run_finished_at, eval_run_id
        ) as run_number,
        lag(eval_run_id) over (
            partition by evaluated_model, split, model, slice, metric order by run_finished_at, eval_run_id
        ) as previous_eval_run_id,
        lag(export_id) over (
            partition by evaluated_model, split, model, slice, metric order by run_finished_at, eval_run_id
        ) as previous_export_id,
        lag(value) over (
            partition by evaluated_model, split, model, slice, metric order by run_finished_at, eval_run_id
        ) as previous_value
    from overall
)

select
    metric_row_id,
    evaluated_model,
    split,
    model,
    is_baseline,
    slice,
    metric,
    run_number,
    eval_run_id,
    export_id,
    run_finished_at,
    value,
    previous_eval_run_id,
    previous_export_id,
    previous_value,
    value - previous_value as delta
from sequenced
