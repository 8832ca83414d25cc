{#
  Usable messages linked into conversations: which conversation each usable message belongs to, and
  the earlier message it answers. A thread (a parent and its replies) is one conversation.
  Outside threads, var conversation_split chooses how a channel's messages split:
  - 'gap': a new conversation wherever the gap between two messages is longer than var
    conversation_gap_minutes (quiet channels split well; a busy one glues interleaved talks together);
  - 'reply': each message links to the earlier message it most likely answers, and a conversation is
    what those links connect (its id: the root the links lead to). The evidence, in this order, all
    within the last conversation_gap_minutes and only from EARLIER messages (point in time):
      1. it @-mentions someone who spoke: their latest message;
      2. otherwise the latest of: a message by someone else that addressed its author, and its
         author's own previous message (a continuation);
      3. otherwise, in a quiet channel (at most var conversation_quiet_messages, 15, messages in
         that time), the previous message;
      4. otherwise nothing: it starts a conversation.
    Measured against annotated truth in bench/bench_conversations.py (docs/benchmarks.md).
  One narrow row per usable message (ids, author, mentions, time): int_conversations adds the
  positions, the history and the text.

  Speed: every usable message gets one number, seq: its channel's number (macros/channel_number.sql,
  from the folder's name) × 2^23 + its place in its channel by time, so that within a channel seq
  orders messages as (message_at, ts) do; and a conversation a number too (conversation_key: its
  root's or first reply's seq). Joins and
  windows then use one integer key instead of (channel folder, number) pairs or the long
  conversation_id text. The rows stay narrow (no text, no names), and this model is a table of its
  own: in one query with int_conversations' windows and the text, DuckDB held every step's CTE at
  once and spilled at the 1 GB memory_limit (a 1,000,000-message export: about 2.3 GB without a
  limit), and a 5,000,000-message export ran out of memory.

  On DuckDB it is incremental, channel by channel (macros/incremental_messages.sql): conversations
  never cross channels, so a build after the first recomputes only the channel folders that hold a
  new, changed or gone day file (a late thread reply, an edit or deletion included), and there only
  the messages from a cut before the earliest change on: the latest message whose predecessor is more
  than conversation_gap_minutes older (every link and window above looks back at most that far) and
  that no conversation begun before it goes on past (a thread). seq then continues from the messages
  kept before the cut (scoped_seq_offset), so the rows equal a build from scratch. A window added here
  (or downstream) that looks back further than conversation_gap_minutes outside a conversation would
  break that: widen the cut's rule in duckdb__channel_cuts with it. On Spark a table rebuilt whole.
#}
{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'reusable_table'),
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prepare_day_file_scope('int_slack__messages_cleaned', 'channel', cuts='compute') }}",
    post_hook="{{ record_day_file_scope('int_slack__messages_cleaned', 'channel') }}") }}


{%- set quiet_channel_messages = var('conversation_quiet_messages') %}
{%- set gap_minutes = var('conversation_gap_minutes') %}

with

usable as (

    -- what the structure needs (int_conversations joins the text and the names on)
    select channel_folder, ts, thread_ts, user_id, mentioned_user_ids, message_at
    from {{ scoped_rows(ref('int_slack__messages_cleaned'), 'channel') }}
    where exclusion_reason is null

),

messages as (

    -- seq: the channel's number and the message's place in its channel by time, unique, so that one
    -- integer identifies a message (within a channel it orders messages as message_at, ts do)
    select
        *,
        {{ channel_number('usable.channel_folder') }} * {{ channel_positions() }}{{ scoped_seq_offset('usable.channel_folder') }}
            + row_number() over (partition by usable.channel_folder order by usable.message_at, usable.ts) as seq
    from usable

),

threads_with_replies as (

    -- a parent only makes a thread when at least one reply is present; its key: its first reply's seq
    select channel_folder, thread_ts, min(seq) as thread_key
    from messages
    where thread_ts is not null and thread_ts <> ts
    group by channel_folder, thread_ts

),

assigned as (

    select
        messages.*,
        threads_with_replies.thread_ts is not null as is_in_thread,
        threads_with_replies.thread_key
    from messages
    left join threads_with_replies
        on messages.channel_folder = threads_with_replies.channel_folder
        and messages.thread_ts = threads_with_replies.thread_ts

),

{% if var('conversation_split') == 'reply' %}

channel_messages as (

    select * from assigned
    where not is_in_thread

),

addressing as (

    -- who said what (role 'said', key: the author) and who was addressed (role 'addressed', key: each
    -- user mentioned), and, as probes at each message's place, what it looks for: the latest message
    -- said by each user it mentions, and the latest message addressing its author
    select channel_folder, seq, message_at, user_id as author_id, user_id as key_user_id, 'said' as role, false as is_probe
    from channel_messages
    union all
    select channel_folder, seq, message_at, user_id, {{ unnest_list('mentioned_user_ids') }}, 'addressed', false
    from channel_messages
    union all
    select channel_folder, seq, message_at, user_id, {{ unnest_list(list_without('mentioned_user_ids', 'user_id')) }}, 'said', true
    from channel_messages
    union all
    select channel_folder, seq, message_at, user_id, user_id, 'addressed', true
    from channel_messages

),

latest_before as (

    -- for each probe, the latest earlier message of its (role, user): never the message itself or
    -- later. Within a channel seq orders messages as message_at does, so the latest message's time is
    -- the largest time. found_by_other_seq, the latest one not by the key user, tells whether the
    -- latest message addressing an author is by someone else (evidence uses it only then).
    select
        seq,
        role,
        is_probe,
        max(case when not is_probe then seq end) over earlier as found_seq,
        max(case when not is_probe then message_at end) over earlier as found_at,
        max(case when not is_probe and author_id <> key_user_id then seq end) over earlier as found_by_other_seq
    from addressing
    window earlier as (
        partition by channel_folder, role, key_user_id order by seq, is_probe
        rows between unbounded preceding and 1 preceding
    )

),

evidence as (

    select
        seq,
        max(case when role = 'said' then found_seq end) as mentioned_speaker_seq,
        max(case when role = 'said' then found_at end) as mentioned_speaker_at,
        -- the latest message addressing the author, when it is by someone else
        max(case when role = 'addressed' and found_seq < seq and found_seq = found_by_other_seq then found_seq end)
            as addressed_author_seq,
        max(case when role = 'addressed' and found_seq < seq then found_at end) as addressed_author_at
    from latest_before
    where is_probe
    group by seq

),

candidates as (

    -- each kind of evidence with its time, from windows over the same rows (no joins back)
    select
        channel_messages.*,
        evidence.mentioned_speaker_seq,
        evidence.mentioned_speaker_at,
        evidence.addressed_author_seq,
        evidence.addressed_author_at,
        lag(channel_messages.seq) over by_author as own_previous_seq,
        lag(channel_messages.message_at) over by_author as own_previous_at,
        lag(channel_messages.seq) over by_channel as previous_seq,
        lag(channel_messages.message_at) over by_channel as previous_at,
        {{ count_rows_in_last_minutes('channel_messages.channel_folder', 'channel_messages.message_at', gap_minutes) }}
            as n_recent_messages
    from channel_messages
    left join evidence
        on channel_messages.seq = evidence.seq
    window
        by_author as (partition by channel_messages.channel_folder, channel_messages.user_id order by channel_messages.seq),
        by_channel as (partition by channel_messages.channel_folder order by channel_messages.seq)

),

recent_candidates as (

    -- each candidate kept only when it is recent (and, for an answer, by someone else: see evidence)
    {%- set since = dbt.dateadd('minute', -gap_minutes, 'message_at') %}
    select
        *,
        case when mentioned_speaker_at >= {{ since }} then mentioned_speaker_seq end as mention_seq,
        case when addressed_author_at >= {{ since }} then addressed_author_seq end as addressed_seq,
        case when own_previous_at >= {{ since }} then own_previous_seq end as continuation_seq,
        case when previous_at >= {{ since }} and n_recent_messages <= {{ quiet_channel_messages }}
            then previous_seq end as quiet_previous_seq
    from candidates

),

links as (

    select
        *,
        coalesce(
            mention_seq,
            greatest(addressed_seq, continuation_seq),
            addressed_seq,
            continuation_seq,
            quiet_previous_seq
        ) as parent_seq
    from recent_candidates

)

{{ root_by_pointer_jumping('links', 'root_step', 20) }},

channel_links as (

    select
        links.seq,
        links.channel_folder || ':reply:' || root.ts as conversation_id,
        roots.root_seq as conversation_key,
        parent.ts as linked_ts
    from links
    inner join root_step_20 as roots
        on roots.seq = links.seq
    inner join channel_messages as root
        on root.seq = roots.root_seq
    left join channel_messages as parent
        on parent.seq = links.parent_seq

),

{% else %}

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

channel_links as (

    select
        seq,
        channel_folder || ':run:' || first_value(ts) over run_order as conversation_id,
        first_value(seq) over run_order as conversation_key,
        cast(null as {{ dbt.type_string() }}) as linked_ts
    from channel_runs
    window run_order as (partition by channel_folder, run_number order by seq)

),

{% endif %}

conversations as (

    select
        assigned.*,
        case
            when assigned.is_in_thread then assigned.channel_folder || ':thread:' || assigned.thread_ts
            else channel_links.conversation_id
        end as conversation_id,
        case when assigned.is_in_thread then assigned.thread_key else channel_links.conversation_key end
            as conversation_key,
        channel_links.linked_ts
    from assigned
    left join channel_links
        on not assigned.is_in_thread
        and channel_links.seq = assigned.seq

),

final as (

    select
        ---------- ids
        seq,
        channel_folder,
        ts,
        conversation_id,
        conversation_key,

        ---------- conversation
        is_in_thread,
        thread_ts,
        linked_ts,

        ---------- author
        user_id,
        mentioned_user_ids,

        ---------- timestamps
        message_at

    from conversations

)

select * from final
