-- No prompt holds text from its target message or later: no later message's text (of some length,
-- and not also said earlier) appears in the prompt. (That the context messages are the ones
-- before the target is tests/assert_prompts_are_their_windows.sql.)
with

examples as (

    select * from {{ ref('training_examples') }}
    where {{ untested_conversations() }}

),

conversations as (

    select * from {{ ref('int_conversations') }}
    where {{ untested_conversations() }}

),

targets as (

    select examples.example_id, examples.target_ts, examples.prompt, conversations.conversation_id, conversations.position
    from examples
    inner join conversations
        on examples.conversation_id = conversations.conversation_id
        and examples.target_ts = conversations.ts

),

leaked_text as (

    select targets.conversation_id, targets.target_ts, later.ts as offending_ts,
           'later text in prompt' as problem
    from targets
    inner join conversations as later
        on later.conversation_id = targets.conversation_id
        -- the target and the messages a later window could reach
        and later.position between targets.position and targets.position + {{ var('context_messages') }}
    where length(later.clean_text) >= 30
        and position(later.clean_text in targets.prompt) > 0
        and not exists (
            select 1 from conversations as earlier
            where earlier.conversation_id = targets.conversation_id
                and earlier.position < targets.position
                and position(later.clean_text in earlier.clean_text) > 0
        )

)

select * from leaked_text
