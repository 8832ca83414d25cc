{#-
  The latest metrics per evaluated model: every metric row (model and baselines, both slices,
  overall and per label) of the most recently finished run of each evaluated model on each export
  and split.
-#}
{{ config(materialized='view') }}

select * exclude (is_latest_run)
from {{ ref('evaluation_metrics') }}
where is_latest_run
