{#-
  Every metric row of every finished evaluation run (table metrics), with the run's evaluated model,
  export and split beside it. `model` is the model or baseline the row is about; `evaluated_model`
  the model the run was for. Overall metrics have a null label; per-label ones (precision, recall,
  f1, support) name the export's label.
-#}
{{ config(materialized='view') }}

{%- set metrics_source = source('beep_evaluate', 'metrics') -%}
{%- set have_state = false -%}
{%- if execute -%}
  {%- set metrics_rel = adapter.get_relation(database=metrics_source.database, schema=metrics_source.schema, identifier=metrics_source.identifier) -%}
  {%- set have_state = metrics_rel is not none -%}
{%- endif %}

with

{% if have_state -%}
metrics as (
    select eval_run_id, model, slice, metric, label, value, support from {{ metrics_source }}
),
{%- else -%}
metrics as (
    select
        cast(null as varchar) as eval_run_id, cast(null as varchar) as model, cast(null as varchar) as slice,
        cast(null as varchar) as metric, cast(null as varchar) as label, cast(null as double) as value,
        cast(null as integer) as support
    where false
),
{%- endif %}

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
