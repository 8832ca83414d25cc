{#-
  The alert replay of every finished evaluation run (table alert_replay_curve): each ranker (the
  evaluated model and the replay's baselines) at every threshold, on the tune and evaluated periods,
  with the run's evaluated model and whether the run is its latest. The operating point of a ranker
  is its row with is_operating_point (the lowest threshold whose tune precision reached the target).
-#}
{{ config(materialized='view') }}

with

curve as (
    select * from {{ ref('stg_beep__alert_replay_curve') }}
),

runs as (
    select * from {{ ref('evaluation_runs') }}
    where status = 'finished'
)

select
    {{ dbt.hash("curve.eval_run_id || '|' || curve.model || '|' || curve.period || '|' || cast(curve.min_probability as varchar)") }}
        as curve_row_id,
    curve.eval_run_id,
    runs.model as evaluated_model,
    runs.export_id,
    runs.split,
    runs.finished_at as run_finished_at,
    runs.is_latest as is_latest_run,
    curve.model,
    curve.model like 'baseline%' as is_baseline,
    curve.period,
    curve.min_probability,
    curve.alerts,
    curve.useful,
    curve.precision,
    curve.joins,
    curve.joins_alerted,
    curve.recall,
    curve.alerts_per_person_day,
    coalesce(curve.is_operating_point, false) as is_operating_point
from curve
inner join runs
    on curve.eval_run_id = runs.eval_run_id
