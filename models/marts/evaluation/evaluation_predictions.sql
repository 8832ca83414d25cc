{#-
  Every stored prediction (table predictions) of finished runs: the true and predicted label, the
  rank of the true label, whether the output decoded to a known label, the newcomer flag, and the
  people: who answered, their rank among the people ranked and among those not yet in the
  conversation, the first person ranked (with probability and reason) and the probability that
  nobody needs an alert, so analysts can slice errors any way they like without JSON functions
  (join training_examples on example_id for text; evaluation_prediction_people has every person
  ranked, one row each).
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

people as (
    select
        eval_run_id,
        model,
        example_id,
        from_json(top_people, '[{"user_id": "VARCHAR", "probability": "DOUBLE", "reason": "VARCHAR"}]') as ranked
    from predictions
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
        predictions.completion_tokens,
        predictions.responder_user_id,
        predictions.responder_rank,
        predictions.responder_rank = 1 as is_responder_first,
        predictions.outsider_rank,
        people.ranked[1].user_id as top_person_id,
        people.ranked[1].probability as top_person_probability,
        people.ranked[1].reason as top_person_reason,
        len(people.ranked) as n_people_ranked,
        predictions.nobody_probability,
        predictions.top_people
    from predictions
    inner join runs
        on predictions.eval_run_id = runs.eval_run_id
    left join people
        on people.eval_run_id = predictions.eval_run_id
        and people.model = predictions.model
        and people.example_id = predictions.example_id
)

select * from final
