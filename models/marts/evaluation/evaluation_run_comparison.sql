{#-
  Run-to-run comparison: each overall metric of the evaluated model (and of each baseline) on each
  slice, next to the same metric in the previous finished run of the same kind (eval_runs.run_kind:
  provider + model variant + export format, split and refinement + evaluated split), with the
  change. Every retrained model has a new name, so runs are matched by kind, not by name: a new
  export, a retrained model, other build vars (eval_runs.context) show up here as a delta.
-#}
{{ config(materialized='view') }}

with

overall as (
    select
        *,
        coalesce(run_kind, evaluated_model) as comparison_kind,
        case when is_baseline then model else '(evaluated model)' end as role
    from {{ ref('evaluation_metrics') }}
    where label is null
),

sequenced as (
    select
        *,
        row_number() over (
            partition by comparison_kind, split, role, slice, metric order by run_finished_at, eval_run_id
        ) as run_number,
        lag(eval_run_id) over (
            partition by comparison_kind, split, role, slice, metric order by run_finished_at, eval_run_id
        ) as previous_eval_run_id,
        lag(export_id) over (
            partition by comparison_kind, split, role, slice, metric order by run_finished_at, eval_run_id
        ) as previous_export_id,
        lag(value) over (
            partition by comparison_kind, split, role, slice, metric order by run_finished_at, eval_run_id
        ) as previous_value
    from overall
)

select
    metric_row_id,
    comparison_kind as run_kind,
    evaluated_model,
    split,
    model,
    is_baseline,
    slice,
    metric,
    run_number,
    eval_run_id,
    export_id,
    run_finished_at,
    value,
    previous_eval_run_id,
    previous_export_id,
    previous_value,
    value - previous_value as delta
from sequenced
