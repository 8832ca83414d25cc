-- The seed's method (BeepGPT's blog post, /work/shared/seed) in minimal hand-written DuckDB SQL: the
-- floor bench/bench_dataset.py compares Beep with. Only what the seed does, nothing Beep adds (no
-- fate accounting, no PII masking, no mentions as names, no reply links, no switches):
--   * messages: the five fields the method reads; people's messages only (no subtype, a user, text);
--   * conversations: a thread is one; outside threads a new one after a gap over 10 minutes;
--   * examples: each message by someone other than the previous message's author is a target; its
--     prompt is the previous 5 messages of the conversation, oldest first, joined by a blank line,
--     ending in "\n\n###\n\n"; its completion " <label>", labels numbered over the sorted user ids
--     (LabelEncoder);
--   * light cleaning: code, <links|ids> and bare URLs removed, white space trimmed.
-- Same DuckDB settings as the dbt profile (bench/dataset_steps.py seed). __SLACK_EXPORT__ is
-- replaced by the export folder before the script runs.

create or replace table seed_messages as
select
    regexp_extract(filename, '([^/]+)/[^/]+$', 1) as channel,
    ts,
    thread_ts,
    "user" as user_id,
    to_timestamp(cast(ts as double)) as sent_at,
    trim(regexp_replace(text, '```.*?```|`[^`]*`|<[^>]*>|https?://\S+', ' ', 'g')) as clean_text
from read_json('__SLACK_EXPORT__/*/*.json', format = 'array', records = true, filename = true,
               maximum_object_size = 33554432,
               columns = {'user': 'VARCHAR', 'text': 'VARCHAR', 'ts': 'VARCHAR', 'thread_ts': 'VARCHAR',
                          'subtype': 'VARCHAR'})
where subtype is null and "user" is not null and coalesce(text, '') <> '';

create or replace table seed_examples as
with channel_gaps as (
    select *, lag(sent_at) over (partition by channel order by sent_at) as previous_at
    from seed_messages where thread_ts is null
),
conversations as (
    select channel, ts, user_id, sent_at, clean_text,
           channel || ':run:' || sum(case when previous_at is null or sent_at > previous_at + interval 10 minute then 1 else 0 end)
               over (partition by channel order by sent_at rows between unbounded preceding and current row) as conversation_id
    from channel_gaps
    union all
    select channel, ts, user_id, sent_at, clean_text, channel || ':thread:' || thread_ts
    from seed_messages where thread_ts is not null
),
windows as (
    select *,
           lag(user_id) over w as previous_user_id,
           string_agg(clean_text, chr(10) || chr(10)) over (partition by conversation_id order by sent_at, ts
               rows between 5 preceding and 1 preceding) as context
    from conversations
    window w as (partition by conversation_id order by sent_at, ts)
),
labels as (
    select user_id, cast(row_number() over (order by user_id) - 1 as integer) as label
    from (select distinct user_id from windows where previous_user_id is not null and previous_user_id <> user_id)
)
select w.conversation_id, w.ts as target_ts, w.user_id as responder_user_id,
       w.context || chr(10) || chr(10) || '###' || chr(10) || chr(10) as prompt,
       ' ' || cast(l.label as varchar) as completion
from windows w
join labels l on l.user_id = w.user_id
where w.previous_user_id is not null and w.previous_user_id <> w.user_id;
