-- The Beep dataset method as ONE plain DuckDB SQL script: the yardstick the dbt project is measured
-- against in bench/bench_dataset.py. It computes what models/ compute (with the default vars: the reply
-- split within 10 minutes, quiet channels at most 15 messages, 5 context messages whoever wrote them, 5,000 prompt characters, suffix "\n\n###\n\n", mentions
-- as names, every cleaning rule on, max 999 labels), materialising the same tables, without dbt (no Jinja, no
-- adapter, no tests).
--
-- __SLACK_EXPORT__ is replaced by the export folder before the script runs (bench/run_plain_sql.py).

-- ---------------------------------------------------------------- read raw, type
create or replace table stg_slack__users as
select
    id as user_id,
    name as handle,
    coalesce(nullif(real_name, ''), nullif(json_extract_string(profile, '$.real_name'), '')) as real_name,
    nullif(json_extract_string(profile, '$.display_name'), '') as display_name,
    coalesce(nullif(json_extract_string(profile, '$.display_name'), ''), nullif(real_name, ''),
             nullif(json_extract_string(profile, '$.real_name'), ''), nullif(name, ''), id) as user_name,
    coalesce(is_bot, false) or coalesce(is_app_user, false) as is_bot,
    coalesce(deleted, false) as is_deleted
from read_json('__SLACK_EXPORT__/users.json', format = 'array',
               columns = {'id': 'VARCHAR', 'name': 'VARCHAR', 'real_name': 'VARCHAR', 'deleted': 'BOOLEAN',
                          'is_bot': 'BOOLEAN', 'is_app_user': 'BOOLEAN', 'profile': 'JSON'})
where id is not null;

create or replace table stg_slack__channels as
select id as channel_id, coalesce(nullif(name, ''), id) as channel_folder, coalesce(nullif(name, ''), id) as channel_name
from read_json(['__SLACK_EXPORT__/channels.json', '__SLACK_EXPORT__/groups.json'], format = 'array',
               columns = {'id': 'VARCHAR', 'name': 'VARCHAR'})
where id is not null;

create or replace table stg_slack__messages as
select
    regexp_extract(filename, '([^/]+)/[^/]+$', 1) as channel_folder,
    ts,
    thread_ts,
    client_msg_id,
    "user" as user_id,
    bot_id,
    subtype,
    text,
    case when regexp_full_match(ts, '\d{1,12}(\.\d{1,6})?') then make_timestamp(
        cast(split_part(ts, '.', 1) as bigint) * 1000000
        + cast(rpad(coalesce(nullif(split_part(ts, '.', 2), ''), '0'), 6, '0') as bigint)) end as message_at,
    replace(filename, '__SLACK_EXPORT__/', '') as source_file
from read_json('__SLACK_EXPORT__/*/*.json', format = 'array', filename = true, maximum_object_size = 33554432,
               columns = {'type': 'VARCHAR', 'subtype': 'VARCHAR', 'user': 'VARCHAR', 'bot_id': 'VARCHAR',
                          'text': 'VARCHAR', 'ts': 'VARCHAR', 'thread_ts': 'VARCHAR', 'client_msg_id': 'VARCHAR'});

-- ---------------------------------------------------------------- exclude by fate, clean text
create or replace table int_slack__messages_cleaned as
with copies as (  -- (folder, ts) keys that occur more than once: only their rows are sorted
    select channel_folder, ts from stg_slack__messages group by channel_folder, ts having count(*) > 1
),
numbered as (
    select m.*, 1 as copy_number from stg_slack__messages m
    where not exists (select 1 from copies c where c.channel_folder = m.channel_folder and c.ts = m.ts)
    union all
    select m.*, row_number() over (partition by m.channel_folder, m.ts order by m.source_file, m.client_msg_id, m.text)
    from stg_slack__messages m inner join copies c on c.channel_folder = m.channel_folder and c.ts = m.ts
),
classified as (
    select
        n.*,
        coalesce(c.channel_id, n.channel_folder) as channel_id,
        coalesce(c.channel_name, n.channel_folder) as channel_name,
        coalesce(u.user_name, n.user_id) as user_name,
        case
            when n.message_at is null then 'missing_ts'
            when n.copy_number > 1 then 'duplicate'
            when n.subtype in ('message_changed', 'message_deleted', 'message_replied') then 'edit_event'
            when n.subtype in ('channel_join', 'channel_leave', 'group_join', 'group_leave') then 'join_leave'
            when n.subtype in ('channel_topic', 'channel_purpose', 'channel_name', 'channel_archive',
                               'channel_unarchive', 'group_topic', 'group_purpose', 'group_name', 'group_archive',
                               'group_unarchive', 'pinned_item', 'unpinned_item', 'reminder_add', 'bot_add',
                               'bot_remove', 'huddle_thread', 'channel_convert_to_private',
                               'channel_convert_to_public', 'sh_room_created') then 'channel_event'
            when n.subtype = 'tombstone' then 'tombstone'
            when n.subtype = 'bot_message' or (n.user_id is null and n.bot_id is not null)
                 or coalesce(u.is_bot, false) then 'bot'
            when n.user_id is null then 'no_user'
            when n.subtype is not null and n.subtype not in ('thread_broadcast', 'file_share', 'me_message')
                then 'other_subtype'
            when trim(coalesce(n.text, '')) = '' then 'empty_text'
        end as reason
    from numbered n
    left join stg_slack__users u on n.user_id = u.user_id
    left join stg_slack__channels c on n.channel_folder = c.channel_folder
),
names as (select map(list(user_id), list(user_name)) as names from stg_slack__users),
marked as (  -- a text without any character a markup rule looks for skips those rules (they cannot match)
    select *, regexp_matches(coalesce(text, ''), '[<&`@:0-9\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[^\x00-\x7f]') as has_markup,
           contains(coalesce(text, ''), '<') as has_lt  -- without '<', the <link>, <@mention>, <#channel>, <!here> rules cannot match
    from classified
),
step1 as (  -- code, links, PII, mention ids (usable messages with markup only)
    select marked.*, names.names,
        case when reason is null and not has_markup then coalesce(text, '')
        when reason is null and not has_lt then
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(coalesce(text, ''),
            '(?s)```.*?(```|$)', ' ', 'g'),
            '`[^`\n]*`', ' ', 'g'),
            '(?:https?|ftp)://[^\s<>]+', ' ', 'g'),
            '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}', '[email]', 'g'),
            '(?:\+\d{1,3}(?:[\s.-]?\(?\d{2,6}\)?){2,4}|\(\d{2,4}\)\s?\d{3,4}[\s.-]\d{3,4}\b|\b\d{3}[.-]\d{3,4}[.-]\d{4}\b)', '[phone]', 'g')
        when reason is null then
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        regexp_replace(regexp_replace(coalesce(text, ''),
            '(?s)```.*?(```|$)', ' ', 'g'),
            '`[^`\n]*`', ' ', 'g'),
            '<(?:https?|ftp|mailto):[^>|]*\|([^>]*)>', '\1', 'g'),
            '<(?:https?|ftp|mailto):[^>]*>', ' ', 'g'),
            '(?:https?|ftp)://[^\s<>]+', ' ', 'g'),
            '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}', '[email]', 'g'),
            '(?:\+\d{1,3}(?:[\s.-]?\(?\d{2,6}\)?){2,4}|\(\d{2,4}\)\s?\d{3,4}[\s.-]\d{3,4}\b|\b\d{3}[.-]\d{3,4}[.-]\d{4}\b)', '[phone]', 'g'),
            '<@([UW][A-Z0-9]+)\|[^>]*>', '<@\1>', 'g') end as t
    from marked cross join names
),
step2 as (  -- mentions become names, then the rest of the markup, entities, control characters
    select step1.* exclude (t, names),
        case when t is not null and not has_markup then t
        when t is not null and not has_lt then
        regexp_replace(replace(replace(replace(
        regexp_replace(regexp_replace(t,
            '(^|[^A-Za-z0-9])(?::[a-z+][a-z0-9_+''-]*:)+', '\1 ', 'g'),
            '(\p{So}[\x{fe0f}\x{1f3fb}-\x{1f3ff}]*(?:\x{200d}\p{So}[\x{fe0f}\x{1f3fb}-\x{1f3ff}]*)+)|[\p{So}\x{200d}\x{fe0f}\x{20e3}\x{1f3fb}-\x{1f3ff}]', '\1', 'g'),
            '&lt;', '<'), '&gt;', '>'), '&amp;', '&'),
            '[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]', '', 'g')
        when t is not null then
        regexp_replace(replace(replace(replace(
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        regexp_replace(
            list_reduce(list_distinct(regexp_extract_all(t, '<@([UW][A-Z0-9]+)>', 1)),
                        lambda acc, uid: replace(acc, '<@' || uid || '>', '@' || coalesce(names[uid], 'someone')), t),
            '<@[^>]*>', ' ', 'g'),
            '<#[A-Z0-9]+\|([^>]+)>', '#\1', 'g'),
            '<#[^>]*>', ' ', 'g'),
            '<!subteam\^[A-Z0-9]+\|(@?)([^>]*)>', '@\2', 'g'),
            '<!(here|channel|everyone)(?:\|[^>]*)?>', '@\1', 'g'),
            '<![^>]*>', ' ', 'g'),
            '(^|[^A-Za-z0-9])(?::[a-z+][a-z0-9_+''-]*:)+', '\1 ', 'g'),
            '(\p{So}[\x{fe0f}\x{1f3fb}-\x{1f3ff}]*(?:\x{200d}\p{So}[\x{fe0f}\x{1f3fb}-\x{1f3ff}]*)+)|[\p{So}\x{200d}\x{fe0f}\x{20e3}\x{1f3fb}-\x{1f3ff}]', '\1', 'g'),
            '&lt;', '<'), '&gt;', '>'), '&amp;', '&'),
            '[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]', '', 'g') end as t,
        case when reason is null and not contains(coalesce(text, ''), '<@') then cast([] as varchar[])
             when reason is null then
            list_distinct(regexp_extract_all(coalesce(text, ''), '<@([UW][A-Z0-9]+)(?:\|[^>]*)?>', 1))
        end as mentioned_user_ids
    from step1
),
step3 as (  -- every text: the suffix's text, white space
    select step2.* exclude (t),
        case when t is not null then
        trim(regexp_replace(regexp_replace(regexp_replace(replace(t,
            '###', ' '),
            '[ \t\r]*[\t\r][ \t\r]*| {2,}', ' ', 'g'),  -- only the runs of blanks that change
            ' ?\n ?', chr(10), 'g'),
            '\n{3,}', chr(10) || chr(10), 'g'), chr(9) || chr(10) || chr(12) || chr(13) || ' ') end as clean_text
    from step2
)
select channel_folder, ts, thread_ts, channel_id, channel_name, user_id, user_name, subtype,
       case when reason is null and clean_text = '' then 'empty_after_cleaning' else reason end as exclusion_reason,
       nullif(clean_text, '') as clean_text, mentioned_user_ids, message_at
from step3;

-- ---------------------------------------------------------------- conversations: threads, then reply links
-- (dbt var conversation_split 'reply', the default: each message outside threads links to the earlier
-- message it most likely answers, within the last 10 minutes; a conversation is what the links connect)
create or replace table int_conversation_links as
with messages as (  -- the structure on narrow rows; seq: one number per usable message, in (channel, time) order
    select channel_folder, ts, thread_ts, user_id, mentioned_user_ids, message_at,
           row_number() over (order by channel_folder, message_at, ts) as seq
    from int_slack__messages_cleaned where exclusion_reason is null
),
threads as (  -- a thread's key: its first reply's seq
    select channel_folder, thread_ts, min(seq) as thread_key from messages
    where thread_ts is not null and thread_ts <> ts group by channel_folder, thread_ts
),
assigned as (
    select m.*, t.thread_ts is not null as is_in_thread, t.thread_key
    from messages m left join threads t on m.channel_folder = t.channel_folder and m.thread_ts = t.thread_ts
),
channel as (select * from assigned where not is_in_thread),
addressing as (  -- what each message said / whom it addressed, and probes for what each looks for
    select channel_folder, seq, message_at, user_id as author_id, user_id as key_user_id, 'said' as role, false as is_probe from channel
    union all select channel_folder, seq, message_at, user_id, unnest(mentioned_user_ids), 'addressed', false from channel
    union all select channel_folder, seq, message_at, user_id, unnest(list_filter(mentioned_user_ids, lambda x: x <> user_id)), 'said', true from channel
    union all select channel_folder, seq, message_at, user_id, user_id, 'addressed', true from channel
),
evidence as (  -- the latest earlier message of each probe's (role, user), with its time (seq orders time in a channel)
    select seq,
           max(case when role = 'said' then found_seq end) as mentioned_speaker_seq,
           max(case when role = 'said' then found_at end) as mentioned_speaker_at,
           max(case when role = 'addressed' and found_seq < seq and found_seq = found_by_other_seq then found_seq end)
               as addressed_author_seq,
           max(case when role = 'addressed' and found_seq < seq then found_at end) as addressed_author_at
    from (select seq, role, is_probe,
                 max(case when not is_probe then seq end) over w as found_seq,
                 max(case when not is_probe then message_at end) over w as found_at,
                 max(case when not is_probe and author_id <> key_user_id then seq end) over w as found_by_other_seq
          from addressing
          window w as (partition by channel_folder, role, key_user_id order by seq, is_probe
                       rows between unbounded preceding and 1 preceding))
    where is_probe group by seq
),
candidates as (
    select c.*, e.mentioned_speaker_seq, e.mentioned_speaker_at, e.addressed_author_seq, e.addressed_author_at,
           lag(c.seq) over by_author as own_previous_seq, lag(c.message_at) over by_author as own_previous_at,
           lag(c.seq) over by_channel as previous_seq, lag(c.message_at) over by_channel as previous_at,
           count(*) over (partition by c.channel_folder order by c.message_at
                          range between interval 10 minute preceding and current row) - 1 as n_recent_messages
    from channel c left join evidence e on c.seq = e.seq
    window by_author as (partition by c.channel_folder, c.user_id order by c.seq),
           by_channel as (partition by c.channel_folder order by c.seq)
),
links as (
    select seq, channel_folder,
           coalesce(mention_seq, greatest(addressed_seq, continuation_seq), addressed_seq, continuation_seq,
                    quiet_previous_seq) as parent_seq
    from (select *,
                 case when mentioned_speaker_at >= message_at - interval 10 minute then mentioned_speaker_seq end as mention_seq,
                 case when addressed_author_at >= message_at - interval 10 minute then addressed_author_seq end as addressed_seq,
                 case when own_previous_at >= message_at - interval 10 minute then own_previous_seq end as continuation_seq,
                 case when previous_at >= message_at - interval 10 minute and n_recent_messages <= 15
                      then previous_seq end as quiet_previous_seq
          from candidates)
),
-- the root each message's links lead to, by pointer jumping on one integer (2^20 links in 20 joins)
j0 as (select seq, coalesce(parent_seq, seq) as root_seq from links),
j1 as (select a.seq, b.root_seq from j0 a join j0 b on b.seq = a.root_seq),
j2 as (select a.seq, b.root_seq from j1 a join j1 b on b.seq = a.root_seq),
j3 as (select a.seq, b.root_seq from j2 a join j2 b on b.seq = a.root_seq),
j4 as (select a.seq, b.root_seq from j3 a join j3 b on b.seq = a.root_seq),
j5 as (select a.seq, b.root_seq from j4 a join j4 b on b.seq = a.root_seq),
j6 as (select a.seq, b.root_seq from j5 a join j5 b on b.seq = a.root_seq),
j7 as (select a.seq, b.root_seq from j6 a join j6 b on b.seq = a.root_seq),
j8 as (select a.seq, b.root_seq from j7 a join j7 b on b.seq = a.root_seq),
j9 as (select a.seq, b.root_seq from j8 a join j8 b on b.seq = a.root_seq),
j10 as (select a.seq, b.root_seq from j9 a join j9 b on b.seq = a.root_seq),
j11 as (select a.seq, b.root_seq from j10 a join j10 b on b.seq = a.root_seq),
j12 as (select a.seq, b.root_seq from j11 a join j11 b on b.seq = a.root_seq),
j13 as (select a.seq, b.root_seq from j12 a join j12 b on b.seq = a.root_seq),
j14 as (select a.seq, b.root_seq from j13 a join j13 b on b.seq = a.root_seq),
j15 as (select a.seq, b.root_seq from j14 a join j14 b on b.seq = a.root_seq),
j16 as (select a.seq, b.root_seq from j15 a join j15 b on b.seq = a.root_seq),
j17 as (select a.seq, b.root_seq from j16 a join j16 b on b.seq = a.root_seq),
j18 as (select a.seq, b.root_seq from j17 a join j17 b on b.seq = a.root_seq),
j19 as (select a.seq, b.root_seq from j18 a join j18 b on b.seq = a.root_seq),
j20 as (select a.seq, b.root_seq from j19 a join j19 b on b.seq = a.root_seq),
channel_links as (
    select l.seq, l.channel_folder || ':reply:' || r.ts as conversation_id, j.root_seq as conversation_key,
           p.ts as linked_ts
    from links l
    join j20 j on j.seq = l.seq
    join channel r on r.seq = j.root_seq
    left join channel p on p.seq = l.parent_seq
),
conversations as (
    select a.*, case when a.is_in_thread then a.channel_folder || ':thread:' || a.thread_ts else l.conversation_id end as conversation_id,
           case when a.is_in_thread then a.thread_key else l.conversation_key end as conversation_key,
           l.linked_ts
    from assigned a left join channel_links l on not a.is_in_thread and l.seq = a.seq
)
select seq, channel_folder, ts, conversation_id, conversation_key, is_in_thread, thread_ts, linked_ts, user_id,
       mentioned_user_ids, message_at
from conversations;

-- ---------------------------------------------------------------- positions, history, text (a statement of its
-- own, as in dbt: one query holding both halves spilled at the 1 GB memory_limit)
create or replace table int_conversations as
with content as (  -- the wide columns, joined once at the end
    select channel_folder, ts, channel_id, channel_name, user_name, clean_text
    from int_slack__messages_cleaned where exclusion_reason is null
),
history as (  -- one sort over narrow columns: seq orders a conversation as message_at, ts do
    select seq,
        row_number() over w as position,
        lag(user_id) over w as previous_user_id,
        lag(ts) over w as previous_ts,
        count(*) over (partition by conversation_key order by seq rows between unbounded preceding and unbounded following)
            as conversation_size,
        list_reverse(coalesce(list(user_id) over (partition by conversation_key order by seq
                                                  rows between 50 preceding and 1 preceding), [])) as recent_authors
    from int_conversation_links
    window w as (partition by conversation_key order by seq)
),
first_by_author as (
    select conversation_key, user_id, min(seq) as first_seq from int_conversation_links group by conversation_key, user_id
)
select c.conversation_id, c.conversation_key, c.channel_folder, c.ts, h.position, t.channel_id, t.channel_name,
       c.is_in_thread, c.thread_ts, h.conversation_size, c.user_id, t.user_name, h.previous_user_id,
       coalesce(c.linked_ts, h.previous_ts) as reply_to_ts,
       h.position > 1 and c.user_id <> h.previous_user_id as is_reply_target,
       f.first_seq < c.seq as user_spoke_before,
       list_filter(h.recent_authors, lambda x, i: list_position(h.recent_authors, x) = i) as prior_participant_ids,
       t.clean_text, c.mentioned_user_ids, c.message_at
from int_conversation_links c
join history h on h.seq = c.seq
join first_by_author f on f.conversation_key = c.conversation_key and f.user_id = c.user_id
join content t on t.channel_folder = c.channel_folder and t.ts = c.ts;

-- ---------------------------------------------------------------- windows: the 5 previous messages, whoever wrote them
-- (dbt var context_excludes_responder false, the default; for true, the seed's rule, add
-- `and c.user_id <> t.user_id` to the where clause). A view, as in dbt: nothing below reads it.
create or replace view int_conversation_windows as
select t.conversation_id, t.channel_folder, t.ts as target_ts, c.ts as context_ts,
       t.position as target_position, c.position as context_position, k.k as messages_back,
       t.user_id as responder_user_id, c.user_id as context_user_id,
       c.clean_text as context_text, c.mentioned_user_ids as context_mentioned_user_ids,
       t.message_at as target_at, c.message_at as context_at
from int_conversations t
cross join range(1, 6) as k(k)
join int_conversations c on c.conversation_id = t.conversation_id and c.position = t.position - k.k
where t.is_reply_target;

-- ---------------------------------------------------------------- label encoding (sorted ids, max 999 labels)
create or replace table user_labels as
with responders as (
    select user_id, max(user_name) as user_name, count(*) as n_examples
    from int_conversations where is_reply_target group by user_id
),
ranked as (
    select *, row_number() over (order by n_examples desc, user_id) as popularity_rank, count(*) over () as n_responders
    from responders
),
kept as (select * from ranked where n_responders <= 999 or popularity_rank < 999)
select user_id, user_name, cast(row_number() over (order by user_id) - 1 as integer) as label,
       cast(n_examples as integer) as n_examples, 1 as n_users
from kept
union all
select '__other__', 'other', cast((select count(*) from kept) as integer), cast(sum(n_examples) as integer),
       cast(count(*) as integer)
from ranked where user_id not in (select user_id from kept) having count(*) > 0;

-- ---------------------------------------------------------------- prompts and completions
create or replace table training_examples as
with previous as (  -- the k-th previous message of the conversation, one sorted pass (lag), null before its start
    select *,
        lag(clean_text, 1) over w as text1, lag(clean_text, 2) over w as text2, lag(clean_text, 3) over w as text3,
        lag(clean_text, 4) over w as text4, lag(clean_text, 5) over w as text5,
        lag(mentioned_user_ids, 1) over w as m1, lag(mentioned_user_ids, 2) over w as m2,
        lag(mentioned_user_ids, 3) over w as m3, lag(mentioned_user_ids, 4) over w as m4,
        lag(mentioned_user_ids, 5) over w as m5
    from int_conversations
    window w as (partition by conversation_key order by position)
),
contexts as (
    select *,
        least(position - 1, 5) as n_context_messages,
        concat_ws(chr(10) || chr(10), text5, text4, text3, text2, text1) as context_text,  -- oldest first, nulls skipped
        flatten([m1, m2, m3, m4, m5]) as mentions                                          -- most recent first
    from previous
    where is_reply_target
)
select
    md5(t.channel_folder || '|' || t.conversation_id || '|' || t.ts) as example_id,
    t.conversation_id, t.channel_id, t.channel_name, t.ts as target_ts, t.message_at as target_at,
    t.user_id as responder_user_id,
    coalesce(l.label, o.label) as label,
    ltrim(right(t.context_text, 5000)) || chr(10) || chr(10) || '###' || chr(10) || chr(10) as prompt,
    ' ' || cast(coalesce(l.label, o.label) as varchar) as completion,
    cast(t.n_context_messages as integer) as n_context_messages,
    t.user_spoke_before as responder_spoke_before,
    t.prior_participant_ids,
    list_filter(t.mentions, lambda m, i: list_position(t.mentions, m) = i) as mentioned_user_ids
from contexts t
left join user_labels l on t.user_id = l.user_id
left join user_labels o on o.user_id = '__other__';

-- ---------------------------------------------------------------- every raw message by its fate
create or replace table message_fate_counts as
with looking_ahead as (  -- context: one of the next 5 messages of the conversation is a reply target
    select channel_name, is_reply_target, position, conversation_size,
           max(case when is_reply_target then position end) over (partition by conversation_key) as last_reply_position,
           coalesce(lead(is_reply_target, 1) over w, false) or coalesce(lead(is_reply_target, 2) over w, false)
           or coalesce(lead(is_reply_target, 3) over w, false) or coalesce(lead(is_reply_target, 4) over w, false)
           or coalesce(lead(is_reply_target, 5) over w, false) as is_in_a_window
    from int_conversations
    window w as (partition by conversation_key order by position)
),
fated as (
    select channel_name, 'excluded' as fate, exclusion_reason as reason
    from int_slack__messages_cleaned where exclusion_reason is not null
    union all
    select channel_name,
           case when is_reply_target then 'target' when is_in_a_window then 'context_only' else 'unused' end,
           case when is_reply_target or is_in_a_window then null
                when conversation_size = 1 then 'alone_in_conversation'
                when last_reply_position > position then 'outside_context_window'
                else 'no_later_reply' end
    from looking_ahead
)
select channel_name, fate, reason, count(*) as n_messages from fated group by all;
