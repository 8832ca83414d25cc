{#
  For each reply target, its context window: the previous var context_messages messages of its
  conversation (under var conversation_split 'reply' the messages its reply links connect it to, not
  the channel's last messages), whoever wrote them (the default, var context_excludes_responder false) — the
  window `beep predict` and an alerting bot see, since at prediction time nobody knows who will
  answer. With context_excludes_responder true, the responder's own messages are removed (the
  seed's rule, kept for comparison: whose messages are missing tells a model who answers, a cue it
  never gets in use). One row per (target, context message). A target's previous message is by
  someone else by construction, so every target keeps at least one.

  A view on DuckDB: training_examples reads the same messages with lag() and message_fate_counts
  with lead(), so nothing needs these 2.2 million rows (a 1,000,000-message export) stored; it is
  here to look at (which messages make an example's prompt) and for
  tests/assert_prompts_are_their_windows.sql under context_excludes_responder. On Spark a table,
  since DuckDB reads Spark's Parquet, not its views (docs/spark.md).
#}
{{ config(materialized=('table' if target.type == 'spark' else 'view')) }}

with

conversations as (

    select * from {{ ref('int_conversations') }}

),

targets as (

    select * from conversations
    where is_reply_target

),

offsets as (

    {{ integers_1_to_n(var('context_messages')) }}

),

windows as (

    select
        ---------- ids
        targets.conversation_id,
        targets.channel_folder,
        targets.ts as target_ts,
        context.ts as context_ts,

        ---------- positions
        targets.position as target_position,
        context.position as context_position,
        offsets.k as messages_back,

        ---------- authors
        targets.user_id as responder_user_id,
        context.user_id as context_user_id,

        ---------- content
        context.clean_text as context_text,
        context.mentioned_user_ids as context_mentioned_user_ids,

        ---------- timestamps
        targets.message_at as target_at,
        context.message_at as context_at

    from targets
    cross join offsets
    inner join conversations as context
        on context.conversation_id = targets.conversation_id
        and context.position = targets.position - offsets.k
    {%- if var('context_excludes_responder') %}
    where context.user_id <> targets.user_id
    {%- endif %}

)

select * from windows
