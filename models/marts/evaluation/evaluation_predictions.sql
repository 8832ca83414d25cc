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

parsed as (
    -- the people of each prediction, parsed in its own row (a join of the predictions with their parsed
    -- copy held every stored run's people in a hash table: past DuckDB's 1 GB at 200,000 messages)
    select
        *,
        from_json(top_people, '[{"user_id": "VARCHAR", "probability": "DOUBLE", "reason": "VARCHAR"}]') as ranked
    from predictions
),

final as (
    select
        parsed.eval_run_id,
        runs.model as evaluated_model,
        runs.export_id,
        runs.split,
        parsed.model,
        parsed.model like 'baseline:%' as is_baseline,
        parsed.example_id,
        parsed.true_label,
        parsed.predicted_label,
        parsed.predicted_label is null as is_unknown_output,
        parsed.predicted_label is not distinct from parsed.true_label as is_correct,
        parsed.true_label_rank,
        parsed.raw_output,
        coalesce(parsed.newcomer, false) as is_newcomer,
        parsed.prompt_tokens,
        parsed.completion_tokens,
        parsed.responder_user_id,
        parsed.responder_rank,
        parsed.responder_rank = 1 as is_responder_first,
        parsed.outsider_rank,
        parsed.ranked[1].user_id as top_person_id,
        parsed.ranked[1].probability as top_person_probability,
        parsed.ranked[1].reason as top_person_reason,
        len(parsed.ranked) as n_people_ranked,
        parsed.nobody_probability,
        parsed.top_people
    from parsed
    inner join runs
        on parsed.eval_run_id = runs.eval_run_id
)

select * from final
