{#
  Every reaction object of every message, one row each (and one row for a `reactions` value that is
  not a list), with Slack's count and how many of those people the export names. Nothing is dropped:
  what cannot be used has an exclusion reason, and stg_slack__reactions takes the listed users of the
  rest. A reaction object is {"name": "tada", "users": ["U…", …], "count": 3}; `users` can be shorter
  than `count` (Slack truncates long lists) or missing: the people beyond the list are counted in
  unlisted_count, never given ids.

  The day files are parsed once, by stg_slack__messages, which keeps each message's `reactions` as
  JSON text: this model reads the few messages that carry one from that table, never the files.

  On DuckDB it is incremental, message by message (macros/incremental_messages.sql): a row depends
  only on the staging rows of its message key (channel_folder, ts), so a build after the first
  recomputes only the keys that new, changed or gone day files hold. On Spark a table rebuilt whole.
#}
{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'reusable_table'),
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prepare_day_file_scope('stg_slack__messages', 'message') }}",
    post_hook="{{ record_day_file_scope('stg_slack__messages', 'message') }}") }}

with

reacted_messages as (

    -- the message objects that carry a `reactions` value (a few percent of them)
    select
        channel_folder,
        ts,
        user_id as message_user_id,
        client_msg_id,
        reactions_json,
        source_file
    from {{ scoped_rows(ref('stg_slack__messages'), 'message') }}
    where reactions_json is not null

),

numbered_messages as (

    -- copies of one message key (a re-export, the same ts twice): the first copy that carries
    -- reactions supplies them, the others are excluded as `duplicate`
    select
        reacted_messages.*,
        row_number() over (
            partition by channel_folder, ts
            order by source_file, client_msg_id, reactions_json
        ) as copy_number,
        {{ json_is_array('reactions_json') }} as is_list
    from reacted_messages

),

elements as (

    -- one row per element of the list; a value that is not a list becomes one row (a JSON null
    -- element) so that it is counted
    select
        channel_folder, ts, message_user_id, source_file, copy_number, is_list, reactions_json,
        {{ json_array_elements("case when is_list then reactions_json else '[null]' end", 'element_json', 'element_position') }}
    from numbered_messages

),

parsed as (

    select
        channel_folder,
        ts,
        message_user_id,
        source_file,
        copy_number,
        is_list,
        case when is_list then element_position end as reaction_position,
        case when is_list then cast(element_json as {{ dbt.type_string() }}) else reactions_json end as reaction_json,
        case when is_list then nullif({{ json_string('element_json', '$.name') }}, '') end as emoji,
        {{ json_string('element_json', '$.count') }} as count_text,
        {{ json_string('element_json', '$.users') }} as users_json
    from elements

),

counted as (

    select
        parsed.*,
        case when {{ regex_matches('count_text', '^[0-9]{1,12}$') }} then cast(count_text as bigint) end as reported_count,
        {{ json_is_array('users_json') }} as has_user_list,
        {{ json_distinct_strings_count('users_json') }} as n_listed_users,
        row_number() over (
            partition by channel_folder, ts, copy_number, emoji
            order by reaction_position
        ) as emoji_number
    from parsed

),

final as (

    select
        ---------- ids
        channel_folder,
        ts,
        reaction_position,
        emoji,
        regexp_replace(emoji, '::skin-tone-[2-6]$', '') as emoji_base,

        ---------- the message
        message_user_id,

        ---------- counts
        reported_count,
        has_user_list,
        n_listed_users,
        greatest(coalesce(reported_count, 0), n_listed_users) as reaction_count,
        greatest(coalesce(reported_count, 0) - n_listed_users, 0) as unlisted_count,

        ---------- usable or not (null: usable), the first reason that applies
        case
            when {{ slack_ts_to_timestamp('ts') }} is null then 'missing_ts'
            when copy_number > 1 then 'duplicate'
            when not is_list then 'not_a_list'
            when emoji is null then 'no_name'
            when emoji_number > 1 then 'repeated_emoji'
        end as exclusion_reason,

        ---------- timestamps
        {{ slack_ts_to_timestamp('ts') }} as message_at,

        ---------- lineage
        reaction_json,
        source_file

    from counted

)

select * from final
