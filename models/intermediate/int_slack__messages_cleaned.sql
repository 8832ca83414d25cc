{#
  Every raw message with its exclusion reason (null = usable) and, for usable ones, the cleaned text
  and the users it mentions. Reasons are checked in order; the first that applies wins.
#}

{%- set edit_subtypes = ['message_changed', 'message_deleted', 'message_replied'] -%}
{%- set join_leave_subtypes = ['channel_join', 'channel_leave', 'group_join', 'group_leave'] -%}
{%- set channel_event_subtypes = [
    'channel_topic', 'channel_purpose', 'channel_name', 'channel_archive', 'channel_unarchive',
    'group_topic', 'group_purpose', 'group_name', 'group_archive', 'group_unarchive',
    'pinned_item', 'unpinned_item', 'reminder_add', 'bot_add', 'bot_remove', 'huddle_thread',
    'channel_convert_to_private', 'channel_convert_to_public', 'sh_room_created'] -%}
{%- set content_subtypes = ['thread_broadcast', 'file_share', 'me_message'] -%}

with

users as (

    select * from {{ ref('stg_slack__users') }}

),

channels as (

    select * from {{ ref('stg_slack__channels') }}

),

user_names as (

    select {{ map_from_columns('user_id', 'user_name') }} as names from users

),

copies as (

    -- the same message can appear twice (re-exports, a broadcast also stored in the thread): the
    -- (folder, ts) keys that occur more than once; only their rows need sorting to pick the first.
    -- Each branch reads the staging table itself: a CTE over it read three times would be
    -- materialised, a copy of every raw message in memory.
    select channel_folder, ts
    from {{ ref('stg_slack__messages') }}
    group by channel_folder, ts
    having count(*) > 1

),

numbered as (

    select messages.*, 1 as copy_number
    from {{ ref('stg_slack__messages') }} as messages
    where not exists (
        select 1 from copies
        where copies.channel_folder = messages.channel_folder and copies.ts = messages.ts
    )

    union all

    select
        messages.*,
        row_number() over (
            partition by messages.channel_folder, messages.ts
            order by messages.source_file, messages.client_msg_id, messages.text
        ) as copy_number
    from {{ ref('stg_slack__messages') }} as messages
    inner join copies
        on copies.channel_folder = messages.channel_folder
        and copies.ts = messages.ts

),

classified as (

    select
        numbered.*,
        coalesce(channels.channel_id, numbered.channel_folder) as channel_id,
        coalesce(channels.channel_name, numbered.channel_folder) as channel_name,
        channels.channel_id is not null as is_listed_channel,
        coalesce(users.user_name, numbered.user_id) as user_name,
        case
            when numbered.message_at is null then 'missing_ts'
            when numbered.copy_number > 1 then 'duplicate'
            when numbered.subtype in ('{{ edit_subtypes | join("', '") }}') then 'edit_event'
            when numbered.subtype in ('{{ join_leave_subtypes | join("', '") }}') then 'join_leave'
            when numbered.subtype in ('{{ channel_event_subtypes | join("', '") }}') then 'channel_event'
            when numbered.subtype = 'tombstone' then 'tombstone'
            when numbered.subtype = 'bot_message'
                or (numbered.user_id is null and numbered.bot_id is not null)
                or coalesce(users.is_bot, false) then 'bot'
            when numbered.user_id is null then 'no_user'
            when numbered.subtype is not null
                and numbered.subtype not in ('{{ content_subtypes | join("', '") }}') then 'other_subtype'
            when trim(coalesce(numbered.text, '')) = '' then 'empty_text'
        end as raw_exclusion_reason
    from numbered
    left join users on numbered.user_id = users.user_id
    left join channels on numbered.channel_folder = channels.channel_folder

),

cleaned as (

    select
        classified.*,
        case when raw_exclusion_reason is null
            then {{ clean_slack_text('classified.text', 'user_names.names') }}
        end as clean_text,
        case when raw_exclusion_reason is null
            then {{ slack_mentioned_user_ids('classified.text') }}
        end as mentioned_user_ids
    from classified
    cross join user_names

),

final as (

    select
        ---------- ids
        channel_folder,
        ts,
        thread_ts,
        channel_id,
        channel_name,
        is_listed_channel,

        ---------- authors
        user_id,
        user_name,
        bot_id,

        ---------- kind
        subtype,
        case
            when raw_exclusion_reason is null and clean_text = '' then 'empty_after_cleaning'
            else raw_exclusion_reason
        end as exclusion_reason,

        ---------- content
        text_chars,
        nullif(clean_text, '') as clean_text,
        mentioned_user_ids,

        ---------- timestamps
        message_at,
        thread_at,

        ---------- lineage
        source_file

    from cleaned

)

select * from final
