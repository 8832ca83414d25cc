{#-
  Every stored prediction (table predictions) of finished runs: the true and predicted label, the
  rank of the true label, whether the output decoded to a known label, and the newcomer flag, so
  analysts can slice errors any way they like (join training_examples on example_id for text).
-#}
{{ config(materialized='view') }}

with

predictions as (
    select * from {{ ref('stg_beep__predictions') }}
),

runs as (
    select * from {{ ref('evaluation_runs') }}
    where status = 'finished'
),

final as (
    select
        predictions.eval_run_id,
        runs.model as evaluated_model,
        runs.export_id,
        runs.split,
        predictions.model,
        predictions.model like 'baseline:%' as is_baseline,
        predictions.example_id,
        predictions.true_label,
        predictions.predicted_label,
        predictions.predicted_label is null as is_unknown_output,
        predictions.predicted_label is not distinct from predictions.true_label as is_correct,
        predictions.true_label_rank,
        predictions.raw_output,
        coalesce(predictions.newcomer, false) as is_newcomer,
        predictions.prompt_tokens,
        predictions.completion_tokens
    from predictions
    inner join runs
        on predictions.eval_run_id = runs.eval_run_id
)

select * from final
