{#-
  Alert precision in production per model, person and delivery (sent | dry_run): of the alerts whose outcome is known
  (not pending), the share that were hits (useful, or answered within an hour), with the counts of each
  outcome, beside the model's offline metrics (alert_offline_metrics; null for a model never evaluated).
-#}
{{ config(materialized='view') }}

with

outcomes as (
    select * from {{ ref('alert_outcomes') }}
),

counted as (
    select
        outcomes.model,
        outcomes.person_id,
        outcomes.delivery,
        count(*) as n_alerts,
        sum(case when outcomes.outcome = 'useful' then 1 else 0 end) as n_useful,
        sum(case when outcomes.outcome = 'not_for_me' then 1 else 0 end) as n_not_for_me,
        sum(case when outcomes.outcome = 'answered_within_hour' then 1 else 0 end) as n_answered_within_hour,
        sum(case when outcomes.outcome = 'ignored' then 1 else 0 end) as n_ignored,
        sum(case when outcomes.outcome = 'pending' then 1 else 0 end) as n_pending,
        sum(case when outcomes.is_hit then 1 else 0 end) as n_hits,
        avg(outcomes.probability) as mean_probability
    from outcomes
    group by outcomes.model, outcomes.person_id, outcomes.delivery
)

select
    counted.*,
    counted.n_alerts - counted.n_pending as n_decided,
    case when counted.n_alerts > counted.n_pending
        then cast(counted.n_hits as {{ beep_type_double() }}) / (counted.n_alerts - counted.n_pending) end as precision,
    offline.offline_eval_run_id,
    offline.offline_person_top_1,
    offline.offline_outsider_top_1,
    offline.offline_outsider_top_5,
    offline.offline_alert_precision
from counted
left join {{ ref('alert_offline_metrics') }} as offline on offline.model = counted.model
