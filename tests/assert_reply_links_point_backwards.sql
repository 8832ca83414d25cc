-- Point in time for the conversation split: a message's reply_to_ts is an earlier message of the
-- same conversation (a message can only answer what was already said), and only a conversation's
-- first message has none.
with

conversations as (

    select * from {{ ref('int_conversations') }}
    where {{ untested_conversations(examples=false) }}

)

select
    message.conversation_id,
    message.ts,
    message.reply_to_ts,
    case
        when message.reply_to_ts is null then 'no link, but not the first message'
        when answered.ts is null then 'answers a message outside its conversation'
        else 'answers a later message'
    end as problem
from conversations as message
left join conversations as answered
    on answered.conversation_id = message.conversation_id
    and answered.ts = message.reply_to_ts
where (message.reply_to_ts is null and message.position > 1)
    or (message.reply_to_ts is not null and (
        answered.ts is null
        or answered.position >= message.position
        or answered.message_at > message.message_at
    ))
