{#-
  Every stored prediction (table predictions) of finished runs: the true and predicted label, the
  rank of the true label, whether the output decoded to a known label, and the newcomer flag, so
  analysts can slice errors any way they like (join training_examples on example_id for text).
-#}
{{ config(materialized='view') }}

{%- set predictions_source = source('beep_evaluate', 'predictions') -%}
{%- set have_state = false -%}
{%- if execute -%}
  {%- set predictions_rel = adapter.get_relation(database=predictions_source.database, schema=predictions_source.schema, identifier=predictions_source.identifier) -%}
  {%- set have_state = predictions_rel is not none -%}
{%- endif %}

with

{% if have_state -%}
predictions as (
    select eval_run_id, model, example_id, true_label, predicted_label, true_label_rank, raw_output, newcomer,
           prompt_tokens, completion_tokens
    from {{ predictions_source }}
),
{%- else -%}
predictions as (
    select
        cast(null as varchar) as eval_run_id, cast(null as varchar) as model, cast(null as varchar) as example_id,
        cast(null as varchar) as true_label, cast(null as varchar) as predicted_label,
        cast(null as integer) as true_label_rank, cast(null as varchar) as raw_output, cast(null as boolean) as newcomer,
        cast(null as integer) as prompt_tokens, cast(null as integer) as completion_tokens
    where false
),
{%- endif %}

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
