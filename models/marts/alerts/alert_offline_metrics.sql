{#-
  The offline metrics of each evaluated model beside which its production precision is read: the latest
  finished `beep evaluate` run of the model on a valid split, overall (no label): on all examples, and
  its alert replay at the operating point (slice alert_replay: the app's own policy replayed on the
  evaluated period, the offline counterpart of the alerts the app sends). One row per model.
-#}
{{ config(materialized='view') }}

with

metrics as (
    select * from {{ ref('evaluation_latest_metrics') }}
    where not is_baseline
        and model = evaluated_model
        and split = 'valid'
        and slice in ('all', 'newcomer', 'alert_replay')
        and label is null
),

latest as (
    select
        evaluated_model,
        eval_run_id,
        row_number() over (partition by evaluated_model order by run_finished_at desc, eval_run_id) as run_rank
    from (select distinct evaluated_model, eval_run_id, run_finished_at from metrics) as runs
)

select
    latest.evaluated_model as model,
    latest.eval_run_id as offline_eval_run_id,
    max(case when metrics.slice = 'all' and metrics.metric = 'person_top_1' then metrics.value end) as offline_person_top_1,
    max(case when metrics.slice = 'all' and metrics.metric = 'person_top_5' then metrics.value end) as offline_person_top_5,
    -- outsider top-k exists for newcomers only (the people an alert is for)
    max(case when metrics.slice = 'newcomer' and metrics.metric = 'outsider_top_1' then metrics.value end) as offline_outsider_top_1,
    max(case when metrics.slice = 'newcomer' and metrics.metric = 'outsider_top_5' then metrics.value end) as offline_outsider_top_5,
    max(case when metrics.slice = 'all' and metrics.metric = 'alert_precision_person' then metrics.value end)
        as offline_alert_precision,
    max(case when metrics.slice = 'all' and metrics.metric = 'alert_recall_person' then metrics.value end)
        as offline_alert_recall,
    max(case when metrics.slice = 'alert_replay' and metrics.metric = 'min_probability' then metrics.value end)
        as offline_replay_min_probability,
    max(case when metrics.slice = 'alert_replay' and metrics.metric = 'precision' then metrics.value end)
        as offline_replay_precision,
    max(case when metrics.slice = 'alert_replay' and metrics.metric = 'recall' then metrics.value end)
        as offline_replay_recall
from latest
inner join metrics on metrics.eval_run_id = latest.eval_run_id and metrics.evaluated_model = latest.evaluated_model
where latest.run_rank = 1
group by latest.evaluated_model, latest.eval_run_id
