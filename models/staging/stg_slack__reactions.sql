{#
  Who reacted to which message with which emoji: one row per (message key, emoji, listed user), from
  the usable reactions of stg_slack__reaction_counts (the people Slack counted but did not list stay
  there, in unlisted_count). A user id missing from users.json is kept and flagged, as a message's
  unknown author is.

  On DuckDB it is incremental, message by message, as stg_slack__reaction_counts is
  (macros/incremental_messages.sql): a row depends only on the reaction rows of its message key and
  on users, so a build after the first recomputes only the keys that new, changed or gone day files
  hold. On Spark a table rebuilt whole.
#}
{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'reusable_table'),
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prepare_day_file_scope('stg_slack__reaction_counts', 'message') }}",
    post_hook="{{ record_day_file_scope('stg_slack__reaction_counts', 'message') }}") }}

with

reaction_counts as (

    select * from {{ scoped_rows(ref('stg_slack__reaction_counts'), 'message') }}
    where exclusion_reason is null

),

users as (

    select * from {{ ref('stg_slack__users') }}

),

listed as (

    select
        channel_folder,
        ts,
        emoji,
        emoji_base,
        message_user_id,
        message_at,
        source_file,
        {{ unnest_list(json_string_list(json_string('reaction_json', '$.users'))) }} as listed_user_id
    from reaction_counts
    where has_user_list

),

reactors as (

    -- a list naming someone twice names them once
    select distinct
        channel_folder, ts, emoji, emoji_base, message_user_id, message_at, source_file,
        listed_user_id as user_id
    from listed
    where trim(listed_user_id) <> ''

),

final as (

    select
        ---------- ids
        reactors.channel_folder,
        reactors.ts,
        reactors.emoji,
        reactors.user_id,

        ---------- the reaction
        reactors.emoji_base,
        users.user_id is not null as is_known_user,
        coalesce(reactors.user_id = reactors.message_user_id, false) as is_own_message,

        ---------- the message
        reactors.message_user_id,
        reactors.message_at,

        ---------- lineage
        reactors.source_file

    from reactors
    left join users on reactors.user_id = users.user_id

)

select * from final
