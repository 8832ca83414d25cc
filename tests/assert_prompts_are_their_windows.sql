-- Every reply's prompt is exactly its context window, recomputed here another way than
-- training_examples does (its lag() columns and concat_ws):
--   var context_excludes_responder false (default): the previous min(context_messages, position - 1)
--     messages of the conversation, whoever wrote them (what `beep predict` sees), as one window
--     frame aggregate;
--   true: the window rows of int_conversation_windows (the same messages minus the responder's own,
--     the seed's rule), aggregated in order.
-- The texts oldest first, joined by a blank line, cut to var max_prompt_chars keeping the most recent
-- text, then var prompt_suffix. A row per example whose prompt or context count differs, per reply
-- with a window but no example, and per example of no such reply.
{%- set n_back = var('context_messages') | int %}
{%- set suffix_sql = sql_string(var('prompt_suffix')) %}
with

examples as (

    select * from {{ ref('training_examples') }}
    where {{ untested_conversations() }}

),

{%- if var('context_excludes_responder') %}

windows as (

    select * from {{ ref('int_conversation_windows') }}
    where {{ untested_conversations() }}

),

expected as (

    select
        conversation_id,
        target_ts,
        count(*) as n_context_messages,
        {{ dbt.listagg('context_text', 'chr(10) || chr(10)', 'order by messages_back desc') }} as context_text
    from windows
    group by conversation_id, target_ts

),

{%- else %}

conversations as (

    select * from {{ ref('int_conversations') }}
    where {{ untested_conversations() }}

),

framed as (

    select
        conversation_id,
        ts as target_ts,
        is_reply_target,
        count(*) over previous_messages as n_context_messages,
        {{ string_agg_over('clean_text', 'chr(10) || chr(10)', 'previous_messages') }} as context_text
    from conversations
    window previous_messages as (
        partition by conversation_key order by position
        rows between {{ n_back }} preceding and 1 preceding
    )

),

expected as (

    select conversation_id, target_ts, n_context_messages, context_text
    from framed
    where is_reply_target and n_context_messages > 0

),

{%- endif %}

compared as (

    select
        coalesce(examples.conversation_id, expected.conversation_id) as conversation_id,
        coalesce(examples.target_ts, expected.target_ts) as target_ts,
        case
            when examples.example_id is null then 'a reply with a window has no example'
            when expected.target_ts is null then 'an example of no reply with a window'
            when examples.n_context_messages <> expected.n_context_messages then 'context count differs from the window'
            when examples.prompt <> ltrim({{ dbt.right('expected.context_text', var('max_prompt_chars')) }}) || {{ suffix_sql }}
                then 'prompt differs from the window'
        end as problem
    from examples
    full outer join expected
        on expected.conversation_id = examples.conversation_id
        and expected.target_ts = examples.target_ts

)

select * from compared
where problem is not null
