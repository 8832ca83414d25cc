{#-
  Every metric row of every finished evaluation run (table metrics), with the run's evaluated model,
  export and split beside it. `model` is the model or baseline the row is about; `evaluated_model`
  the model the run was for. Overall metrics have a null label; per-label ones (precision, recall,
  f1, support) name the export's label.
-#}
{{ config(materialized='view') }}

with

metrics as (
    select * from {{ ref('stg_beep__metrics') }}
),

runs as (
    select * from {{ ref('evaluation_runs') }}
    where status = 'finished'
),

final as (
    select
        {{ dbt.hash("metrics.eval_run_id || '|' || metrics.model || '|' || metrics.slice || '|' || metrics.metric || '|' || coalesce(metrics.label, '')") }}
            as metric_row_id,
        metrics.eval_run_id,
        runs.model as evaluated_model,
        runs.run_kind,
        runs.export_id,
        runs.split,
        runs.finished_at as run_finished_at,
        runs.is_latest as is_latest_run,
        metrics.model,
        metrics.model like 'baseline:%' as is_baseline,
        metrics.slice,
        metrics.metric,
        metrics.label,
        metrics.value,
        metrics.support
    from metrics
    inner join runs
        on metrics.eval_run_id = runs.eval_run_id
)

select * from final
