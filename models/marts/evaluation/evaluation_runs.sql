{#-
  One row per `beep evaluate` run (table eval_runs), with its duration and whether it is the latest
  finished run of its model on its export and split. A view over the Python-owned table, so it is
  live as soon as `beep evaluate` writes; on a fresh DuckDB where eval_runs does not exist yet it
  reads a typed empty input.
-#}
{{ config(materialized='view') }}

with

runs as (
    select * from {{ ref('stg_beep__eval_runs') }}
),

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
        run_kind,
        status = 'finished' and finished_at = max(case when status = 'finished' then finished_at end)
            over (partition by model, export_id, split) as is_latest
    from runs
)

select * from final
