{#
  Every raw message with its exclusion reason (null = usable) and, for usable ones, the cleaned text
  and the users it mentions. The rules are macros the live path runs too (macros/message_rules.sql:
  subtype classes and the reasons, in order; macros/clean_slack_text.sql; docs/rules.md).

  On DuckDB it is incremental, message by message (macros/incremental_messages.sql): every row
  depends only on the staging rows of its message key (channel_folder, ts) and on users and
  channels, so a build after the first recomputes only the keys that new, changed or gone day
  files hold (and everything when its SQL, a var it uses, users.json or channels.json changed).
  On Spark a table rebuilt whole.
#}
{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'reusable_table'),
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prepare_day_file_scope('stg_slack__messages', 'message') }}",
    post_hook="{{ record_day_file_scope('stg_slack__messages', 'message') }}") }}

with

users as (

    select * from {{ ref('stg_slack__users') }}

),

channels as (

    -- one row per folder a listed conversation's day files can be in: its name, or its id
    select * from {{ listed_channel_folders(ref('stg_slack__channels')) }}

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
    from {{ scoped_rows(ref('stg_slack__messages'), 'message') }}
    group by channel_folder, ts
    having count(*) > 1

),

numbered as (

    select messages.*, 1 as copy_number
    from {{ scoped_rows(ref('stg_slack__messages'), 'message') }} as messages
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
    from {{ scoped_rows(ref('stg_slack__messages'), 'message') }} as messages
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
        {{ message_exclusion_reason('numbered.message_at', 'numbered.copy_number', 'numbered.subtype',
                                    'numbered.user_id', 'numbered.bot_id', 'users.is_bot', 'numbered.text') }}
            as raw_exclusion_reason
    from numbered
    left join users on numbered.user_id = users.user_id
    left join channels on numbered.channel_folder = channels.folder

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
        {{ message_final_exclusion_reason('raw_exclusion_reason', 'clean_text') }} as exclusion_reason,

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
