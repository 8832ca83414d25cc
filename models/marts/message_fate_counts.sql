{#
  Every raw message of the export counted by its fate: it became a training target, served only as
  context, stayed unused (with why), or was excluded (with the reason). The counts add up to the
  number of raw message objects exactly (a singular test checks it against a fresh read).
#}

with

messages as (

    select * from {{ ref('int_slack__messages_cleaned') }}

),

conversations as (

    select
        *,
        max(case when is_reply_target then position end) over (partition by conversation_key) as last_reply_position
    from {{ ref('int_conversations') }}

),

context_messages as (

    select distinct channel_folder, context_ts as ts
    from {{ ref('int_conversation_windows') }}

),

fated as (

    select
        messages.channel_name,
        case
            when messages.exclusion_reason is not null then 'excluded'
            when conversations.is_reply_target then 'target'
            when context_messages.ts is not null then 'context_only'
            else 'unused'
        end as fate,
        case
            when messages.exclusion_reason is not null then messages.exclusion_reason
            when conversations.is_reply_target or context_messages.ts is not null then null
            when conversations.conversation_size = 1 then 'alone_in_conversation'
            -- a reply came later, but this message was further back than context_messages (under either
            -- var context_excludes_responder: the first message by someone else after it is a reply)
            when conversations.last_reply_position > conversations.position then 'outside_context_window'
            else 'no_later_reply'
        end as reason
    from messages
    left join conversations
        on messages.exclusion_reason is null
        and messages.channel_folder = conversations.channel_folder
        and messages.ts = conversations.ts
    left join context_messages
        on messages.exclusion_reason is null
        and messages.channel_folder = context_messages.channel_folder
        and messages.ts = context_messages.ts

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
