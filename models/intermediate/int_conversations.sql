{#
  Usable messages placed in conversations (int_conversation_links: which conversation, and the
  message each one answers), with what the later models need: the position in the conversation,
  the previous author, whether the author spoke before, the recent authors, and the cleaned text
  and names (joined on once, at the end). One row per usable message; reply_to_ts is the earlier
  message it is taken to answer (the link under var conversation_split 'reply', else the previous
  message of its conversation).

  int_conversation_links is read where it is needed rather than through one CTE: DuckDB would
  materialise a CTE read three times (a copy of the table in memory, 0.6 s on a 1,000,000-message
  export) where it otherwise scans the table.

  On DuckDB it is incremental, channel by channel, as int_conversation_links is
  (macros/incremental_messages.sql): a build after the first recomputes only the channel folders
  that hold a new, changed or gone day file, from the cut int_conversation_links recomputed from (no
  conversation crosses it, so every window above sees its whole conversation). On Spark a table
  rebuilt whole.
#}
{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'reusable_table'),
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prepare_day_file_scope('int_conversation_links', 'channel') }}",
    post_hook="{{ record_day_file_scope('int_conversation_links', 'channel') }}") }}

with

content as (

    select channel_folder, ts, channel_id, channel_name, user_name, clean_text
    from {{ scoped_rows(ref('int_slack__messages_cleaned'), 'channel') }}
    where exclusion_reason is null

),

history as (

    -- one sort: these windows share their partition and order (seq orders a conversation's
    -- messages as message_at, ts do), and read only the narrow columns they need
    select
        seq,
        row_number() over conversation_order as position,
        lag(user_id) over conversation_order as previous_user_id,
        lag(ts) over conversation_order as previous_ts,
        count(*) over (
            partition by conversation_key order by seq
            rows between unbounded preceding and unbounded following
        ) as conversation_size,
        {{ recent_values('user_id', 'conversation_key', 'seq', prior_participant_messages()) }} as recent_author_ids
    from {{ scoped_rows(ref('int_conversation_links'), 'channel') }}
    window conversation_order as (partition by conversation_key order by seq)

),

first_by_author as (

    select conversation_key, user_id, min(seq) as first_seq
    from {{ scoped_rows(ref('int_conversation_links'), 'channel') }}
    group by conversation_key, user_id

),

with_history as (

    select
        links.*,
        history.position,
        history.previous_user_id,
        coalesce(links.linked_ts, history.previous_ts) as reply_to_ts,
        history.conversation_size,
        history.recent_author_ids,
        first_by_author.first_seq < links.seq as user_spoke_before
    from {{ scoped_rows(ref('int_conversation_links'), 'channel') }} as links
    inner join history
        on history.seq = links.seq
    inner join first_by_author
        on first_by_author.conversation_key = links.conversation_key
        and first_by_author.user_id = links.user_id

),

final as (

    select
        ---------- ids
        conversation_id,
        conversation_key,
        with_history.channel_folder,
        with_history.ts,
        position,

        ---------- conversation
        content.channel_id,
        content.channel_name,
        is_in_thread,
        thread_ts,
        conversation_size,

        ---------- author
        with_history.user_id,
        content.user_name,
        previous_user_id,
        reply_to_ts,
        -- a reply: someone other than the previous message's author speaks (a continuation by the
        -- same author is context for later replies, not a reply itself)
        position > 1 and with_history.user_id <> previous_user_id as is_reply_target,
        user_spoke_before,
        {{ list_distinct_ordered('recent_author_ids') }} as prior_participant_ids,

        ---------- content
        content.clean_text,
        mentioned_user_ids,

        ---------- timestamps
        message_at

    from with_history
    inner join content
        on content.channel_folder = with_history.channel_folder
        and content.ts = with_history.ts

)

select * from final
