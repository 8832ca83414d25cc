{#-
  One row per `beep evaluate` run (table eval_runs), with its duration and whether it is the latest
  finished run of its model on its export and split. A view over the Python-owned table, so it is
  live as soon as `beep evaluate` writes; on a fresh DuckDB where eval_runs does not exist yet it
  reads a typed empty input.
-#}
{{ config(materialized='view') }}

{%- set runs_source = source('beep_evaluate', 'eval_runs') -%}
{%- set have_state = false -%}
{%- if execute -%}
  {%- set runs_rel = adapter.get_relation(database=runs_source.database, schema=runs_source.schema, identifier=runs_source.identifier) -%}
  {%- set have_state = runs_rel is not none -%}
{%- endif %}

with

{% if have_state -%}
runs as (
    select eval_run_id, model, job_id, export_id, split, n, provider, status, started_at, finished_at, cost, error
    from {{ runs_source }}
),
{%- else -%}
runs as (
    select
        cast(null as varchar) as eval_run_id, cast(null as varchar) as model, cast(null as varchar) as job_id,
        cast(null as varchar) as export_id, cast(null as varchar) as split, cast(null as integer) as n,
        cast(null as varchar) as provider, cast(null as varchar) as status, cast(null as timestamp) as started_at,
        cast(null as timestamp) as finished_at, cast(null as double) as cost, cast(null as varchar) as error
    where false
),
{%- endif %}

final as (
    select
        eval_run_id,
        model,
        job_id,
        export_id,
        split,
        n,
        provider,
        status,
        started_at,
        finished_at,
        {{ dbt.datediff('started_at', 'finished_at', 'second') }} as seconds,
        cost,
        error,
        status = 'finished' and finished_at = max(case when status = 'finished' then finished_at end)
            over (partition by model, export_id, split) as is_latest
    from runs
)

select * from final
