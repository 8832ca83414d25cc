-- The context window of every reply is exactly what var context_excludes_responder says it is:
--   false (default): the previous min(context_messages, position - 1) messages of the conversation,
--     whoever wrote them, the responder's own included (what `beep predict` sees);
--   true: the same messages minus the responder's own (the seed's rule), so then, above all, no
--     context message of an example was written by its responder.
-- Any row is a window message too many or missing.
{%- set excludes_responder = var('context_excludes_responder') %}
with

conversations as (

    select * from {{ ref('int_conversations') }}

),

windows as (

    select * from {{ ref('int_conversation_windows') }}

),

expected as (

    select
        targets.conversation_id,
        targets.ts as target_ts,
        context.ts as context_ts,
        targets.position - context.position as messages_back
    from conversations as targets
    inner join conversations as context
        on context.conversation_id = targets.conversation_id
        and context.position between targets.position - {{ var('context_messages') }} and targets.position - 1
    where targets.is_reply_target
    {%- if excludes_responder %}
        and context.user_id <> targets.user_id
    {%- endif %}

),

actual as (

    select conversation_id, target_ts, context_ts, messages_back
    from windows

),

{%- if excludes_responder %}

by_responder as (

    select conversation_id, target_ts, context_ts, 'context by the responder' as problem
    from windows
    where context_user_id = responder_user_id

),
{%- endif %}

not_expected as (

    select conversation_id, target_ts, context_ts, 'in the window but not expected there' as problem
    from (select * from actual except select * from expected)

),

missing as (

    select conversation_id, target_ts, context_ts, 'expected in the window but missing' as problem
    from (select * from expected except select * from actual)

)

select * from not_expected
union all
select * from missing
{%- if excludes_responder %}
union all
select * from by_responder
{%- endif %}
