{#-
  Every metric with its yardstick: per finished run, slice and overall metric, the evaluated model's
  value next to the best baseline's (highest value; for unknown_rate the lowest) and the margin
  (model minus best baseline; positive = the model is better, for unknown_rate negative is better).
  Only metrics are compared, never counts or settings: n, alerts_sent, alerts_needed,
  unknown_outputs, and the alert replay's alerts, alerts_per_person_day (a cost, not a score),
  min_probability and target_reached are left out (they stay in evaluation_metrics).
-#}
{{ config(materialized='view') }}

with

overall as (
    select * from {{ ref('evaluation_metrics') }}
    where label is null
        and metric not in (
            'n', 'alerts_sent', 'alerts_needed', 'unknown_outputs',
            'alerts', 'alerts_per_person_day', 'min_probability', 'target_reached'
        )
),

model_rows as (
    select eval_run_id, evaluated_model, export_id, split, run_finished_at, slice, metric, value, support
    from overall
    where model = evaluated_model
),

baseline_rows as (
    select
        eval_run_id, slice, metric, model as baseline, value,
        row_number() over (
            partition by eval_run_id, slice, metric
            order by case when metric = 'unknown_rate' then value else -value end nulls last, model
        ) as baseline_rank
    from overall
    where is_baseline
)

select
    {{ dbt.hash("model_rows.eval_run_id || '|' || model_rows.slice || '|' || model_rows.metric") }} as comparison_id,
    model_rows.eval_run_id,
    model_rows.evaluated_model,
    model_rows.export_id,
    model_rows.split,
    model_rows.run_finished_at,
    model_rows.slice,
    model_rows.metric,
    model_rows.support,
    model_rows.value as model_value,
    best.baseline as best_baseline,
    best.value as best_baseline_value,
    model_rows.value - best.value as margin
from model_rows
left join baseline_rows as best
    on best.eval_run_id = model_rows.eval_run_id
    and best.slice = model_rows.slice
    and best.metric = model_rows.metric
    and best.baseline_rank = 1
