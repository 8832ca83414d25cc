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
        {{ alert_outcome_counts('outcomes') }}
    from outcomes
    group by outcomes.model, outcomes.person_id, outcomes.delivery
)

select
    counted.*,
    {{ alert_precision_columns('counted') }},
    offline.offline_eval_run_id,
    offline.offline_person_top_1,
    offline.offline_outsider_top_1,
    offline.offline_outsider_top_5,
    offline.offline_alert_precision,
    offline.offline_replay_min_probability,
    offline.offline_replay_precision,
    offline.offline_replay_recall
from counted
left join {{ ref('alert_offline_metrics') }} as offline on offline.model = counted.model
