{#-
  Every person each stored prediction of a finished run ranked (predictions.top_people), one row per
  prediction x person, best first: the person's rank and probability, the reason given, whether they
  had already written in the conversation (training_examples.prior_participant_ids) and whether they
  are the one who answered. "Would an alert to the first person outside the conversation have been
  right?" is a filter on is_in_conversation and a rank, without JSON functions.
-#}
{{ config(materialized='view') }}

with

predictions as (
    select * from {{ ref('evaluation_predictions') }}
),

ranked as (
    select
        eval_run_id,
        evaluated_model,
        model,
        is_baseline,
        example_id,
        is_newcomer,
        responder_user_id,
        unnest(people) as person,
        unnest(generate_series(1, len(people))) as person_rank
    from (
        select
            *,
            from_json(top_people, '[{"user_id": "VARCHAR", "probability": "DOUBLE", "reason": "VARCHAR"}]') as people
        from predictions
    ) as parsed
),

examples as (
    select example_id, channel_id, channel_name, prior_participant_ids from {{ ref('training_examples') }}
),

final as (
    select
        ranked.eval_run_id,
        ranked.evaluated_model,
        ranked.model,
        ranked.is_baseline,
        ranked.example_id,
        examples.channel_id,
        examples.channel_name,
        ranked.is_newcomer,
        ranked.person_rank,
        ranked.person.user_id as person_id,
        ranked.person.probability as probability,
        ranked.person.reason as reason,
        coalesce(list_contains(examples.prior_participant_ids, ranked.person.user_id), false) as is_in_conversation,
        ranked.person.user_id is not distinct from ranked.responder_user_id as is_responder
    from ranked
    left join examples on examples.example_id = ranked.example_id
)

select
    *,
    case when not is_in_conversation then row_number() over (
        partition by eval_run_id, model, example_id, is_in_conversation order by person_rank
    ) end as rank_outside_conversation
from final
