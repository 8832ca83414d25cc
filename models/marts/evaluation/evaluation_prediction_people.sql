{#-
  Every person each stored prediction of a finished run ranked (predictions.top_people), one row per
  prediction x person, best first: the person's rank and probability, the reason given, whether they
  had already written in the conversation (training_examples.prior_participant_ids) and whether they
  are the one who answered. "Would an alert to the first person outside the conversation have been
  right?" is a filter on is_in_conversation and a rank, without JSON functions.

  Speed: the ranks are computed per prediction, on its list of people, before the list is unnested
  (a window over the unnested rows sorted every person of every stored run with the reasons: at
  200,000 messages one evaluation's 2.5 million rows ran out of DuckDB's 1 GB in the view's data test).
-#}
{{ config(materialized='view') }}

with

predictions as (
    select * from {{ ref('evaluation_predictions') }}
),

examples as (
    select example_id, channel_id, channel_name, prior_participant_ids from {{ ref('training_examples') }}
),

parsed as (
    select
        predictions.eval_run_id,
        predictions.evaluated_model,
        predictions.model,
        predictions.is_baseline,
        predictions.example_id,
        examples.channel_id,
        examples.channel_name,
        predictions.is_newcomer,
        predictions.responder_user_id,
        from_json(predictions.top_people, '[{"user_id": "VARCHAR", "probability": "DOUBLE", "reason": "VARCHAR"}]') as people,
        coalesce(examples.prior_participant_ids, []) as prior_participant_ids
    from predictions
    left join examples on examples.example_id = predictions.example_id
),

flagged as (
    -- per person of the list: already in the conversation?
    select
        *,
        list_transform(people, lambda person: coalesce(list_contains(prior_participant_ids, person.user_id), false)) as inside
    from parsed
),

outside as (
    -- the places of the people outside the conversation, in rank order
    select
        *,
        list_filter(generate_series(1, len(inside)), lambda i: not inside[i]) as outside_places
    from flagged
),

ranked as (
    -- the rank among the people outside the conversation: where the person's place comes among those
    -- places (null for a person inside). One list_position a person, not a count over every person
    -- ranked above: 5.1 -> 3.9 s CPU for one evaluation's 12.7 million person rows at 1,000,000 messages
    select
        *,
        list_transform(generate_series(1, len(inside)), lambda i: list_position(outside_places, i)) as outside_ranks
    from outside
),

final as (
    select
        eval_run_id,
        evaluated_model,
        model,
        is_baseline,
        example_id,
        channel_id,
        channel_name,
        is_newcomer,
        responder_user_id,
        unnest(people) as person,
        unnest(generate_series(1, len(people))) as person_rank,
        unnest(inside) as is_in_conversation,
        unnest(outside_ranks) as rank_outside_conversation
    from ranked
)

select
    eval_run_id,
    evaluated_model,
    model,
    is_baseline,
    example_id,
    channel_id,
    channel_name,
    is_newcomer,
    person_rank,
    person.user_id as person_id,
    person.probability as probability,
    person.reason as reason,
    is_in_conversation,
    person.user_id is not distinct from responder_user_id as is_responder,
    rank_outside_conversation
from final
