{#
  Usable messages placed in conversations. A thread (a parent and its replies) is one conversation;
  outside threads, a channel's messages split into conversations wherever the gap between two
  messages is longer than var conversation_gap_minutes. One row per usable message.
#}

with

messages as (

    select * from {{ ref('int_slack__messages_cleaned') }}
    where exclusion_reason is null

),

threads_with_replies as (

    -- a parent only makes a thread when at least one reply is present
    select distinct channel_folder, thread_ts
    from messages
    where thread_ts is not null and thread_ts <> ts

),

assigned as (

    select
        messages.*,
        threads_with_replies.thread_ts is not null as is_in_thread
    from messages
    left join threads_with_replies
        on messages.channel_folder = threads_with_replies.channel_folder
        and messages.thread_ts = threads_with_replies.thread_ts

),

channel_gaps as (

    select
        *,
        lag(message_at) over (partition by channel_folder order by message_at, ts) as previous_at
    from assigned
    where not is_in_thread

),

channel_runs as (

    select
        *,
        sum(
            case
                when previous_at is null then 1
                when message_at > {{ dbt.dateadd('minute', var('conversation_gap_minutes'), 'previous_at') }} then 1
                else 0
            end
        ) over (
            partition by channel_folder order by message_at, ts
            rows between unbounded preceding and current row
        ) as run_number
    from channel_gaps

),

channel_conversations as (

    select
        *,
        channel_folder || ':run:' || first_value(ts) over (
            partition by channel_folder, run_number order by message_at, ts
        ) as conversation_id
    from channel_runs

),

thread_conversations as (

    select
        *,
        cast(null as timestamp) as previous_at,
        cast(null as bigint) as run_number,
        channel_folder || ':thread:' || thread_ts as conversation_id
    from assigned
    where is_in_thread

),

conversations as (

    select * from channel_conversations
    union all
    select * from thread_conversations

),

sequenced as (

    select
        *,
        row_number() over (partition by conversation_id order by message_at, ts) as position
    from conversations

),

with_history as (

    select
        *,
        lag(user_id) over (partition by conversation_id order by position) as previous_user_id,
        min(position) over (partition by conversation_id, user_id) as user_first_position,
        count(*) over (partition by conversation_id) as conversation_size,
        {{ recent_values('user_id', 'conversation_id', 'position', 50) }} as recent_author_ids
    from sequenced

),

final as (

    select
        ---------- ids
        conversation_id,
        channel_folder,
        ts,
        position,

        ---------- conversation
        channel_id,
        channel_name,
        is_in_thread,
        thread_ts,
        conversation_size,

        ---------- author
        user_id,
        user_name,
        previous_user_id,
        -- a reply: someone other than the previous message's author speaks (a continuation by the
        -- same author is context for later replies, not a reply itself)
        position > 1 and user_id <> previous_user_id as is_reply_target,
        user_first_position < position as user_spoke_before,
        {{ list_distinct_ordered('recent_author_ids') }} as prior_participant_ids,

        ---------- content
        clean_text,
        mentioned_user_ids,

        ---------- timestamps
        message_at

    from with_history

)

select * from final
