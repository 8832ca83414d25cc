{#
  Every raw message of the export counted by its fate: it became a training target, served only as
  context, stayed unused (with why), or was excluded (with the reason). The counts add up to the
  number of raw message objects exactly (a singular test checks it against a fresh read).

  A usable message is context when one of the next var context_messages messages of its
  conversation is a reply target (with var context_excludes_responder, one by someone else): the
  windows of int_conversation_windows, found with lead() over one sort of the conversations instead
  of materialising the (target, context message) pairs. Excluded messages come from
  int_slack__messages_cleaned, usable ones from int_conversations (one row each), so no join.
#}

{%- set n_back = var('context_messages') | int %}
{%- set excludes_responder = var('context_excludes_responder') %}

with

messages as (

    select * from {{ ref('int_slack__messages_cleaned') }}

),

conversations as (

    select * from {{ ref('int_conversations') }}

),

excluded as (

    select channel_name, 'excluded' as fate, exclusion_reason as reason
    from messages
    where exclusion_reason is not null

),

looking_ahead as (

    select
        channel_name,
        is_reply_target,
        position,
        conversation_size,
        max(case when is_reply_target then position end) over (partition by conversation_key) as last_reply_position,
        -- in the window of a later reply: one of the next context_messages messages is a reply target
        (
        {%- for k in range(1, n_back + 1) %}
            coalesce(lead(is_reply_target, {{ k }}) over conversation_order
                {%- if excludes_responder %} and lead(user_id, {{ k }}) over conversation_order <> user_id{% endif %}, false)
            {{- ' or' if not loop.last }}
        {%- endfor %}
        ) as is_in_a_window
    from conversations
    window conversation_order as (partition by conversation_key order by position)

),

usable as (

    select
        channel_name,
        case
            when is_reply_target then 'target'
            when is_in_a_window then 'context_only'
            else 'unused'
        end as fate,
        case
            when is_reply_target or is_in_a_window then null
            when conversation_size = 1 then 'alone_in_conversation'
            -- a reply came later, but this message was further back than context_messages (under either
            -- var context_excludes_responder: the first message by someone else after it is a reply)
            when last_reply_position > position then 'outside_context_window'
            else 'no_later_reply'
        end as reason
    from looking_ahead

),

fated as (

    select * from excluded
    union all
    select * from usable

),

final as (

    select
        channel_name,
        fate,
        reason,
        count(*) as n_messages
    from fated
    group by channel_name, fate, reason

)

select * from final
