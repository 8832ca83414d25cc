{#
  The label encoding of responders: sklearn LabelEncoder semantics (responder ids sorted, numbered
  0..n-1). When there are more responders than var max_labels, those with the fewest examples (ties:
  the larger id) share one `other` label, numbered after the kept ones, so there are at most
  max_labels labels and each stays one token.
#}

with

targets as (

    select * from {{ ref('int_conversations') }}
    where is_reply_target

),

responders as (

    select
        user_id,
        max(user_name) as user_name,
        count(*) as n_examples
    from targets
    group by user_id

),

ranked as (

    select
        *,
        row_number() over (order by n_examples desc, user_id) as popularity_rank,
        count(*) over () as n_responders
    from responders

),

kept as (

    select * from ranked
    where n_responders <= {{ var('max_labels') }}
        or popularity_rank < {{ var('max_labels') }}

),

encoded as (

    select
        user_id,
        user_name,
        cast(row_number() over (order by user_id) - 1 as integer) as label,
        cast(n_examples as integer) as n_examples,
        1 as n_users
    from kept

),

other as (

    select
        '__other__' as user_id,
        'other' as user_name,
        cast((select count(*) from kept) as integer) as label,
        cast(sum(n_examples) as integer) as n_examples,
        cast(count(*) as integer) as n_users
    from ranked
    where user_id not in (select user_id from kept)
    having count(*) > 0

),

final as (

    select * from encoded
    union all
    select * from other

)

select * from final
