{#
  Every raw message object of every day file, one row each, typed and renamed. Nothing is dropped
  here: exclusions happen downstream, each with a reason, and are counted in message_fate_counts.

  The only model that parses the day files. On DuckDB it is incremental: a build after the first
  reads only the day files that are new or changed (size, modification time) since it last read
  them, and replaces those files' rows (macros/slack_export_files.sql, read_new_slack_day_files).
  On Spark every file is read on every build.
#}
{%- set message_columns = {
    'type': 'VARCHAR', 'subtype': 'VARCHAR', 'user': 'VARCHAR', 'bot_id': 'VARCHAR',
    'text': 'VARCHAR', 'ts': 'VARCHAR', 'thread_ts': 'VARCHAR', 'parent_user_id': 'VARCHAR',
    'reply_count': 'BIGINT', 'client_msg_id': 'VARCHAR',
    'edited': 'JSON', 'files': 'JSON', 'reactions': 'JSON',
    'hidden': 'BOOLEAN'} -%}
{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'reusable_table'),
    incremental_strategy='delete+insert',
    unique_key='source_file',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prune_changed_day_files() }}",
    post_hook="{{ record_day_files_read(source('slack_export', 'day_files')) }}") }}
{#- edited and files are kept as JSON text, not parsed into a STRUCT and a list of STRUCTs: only
    their presence and length are needed, and the reader's time on a 1,000,000-message export
    drops by about a fifth. -#}

with

source as (

    select * from {{ read_new_slack_day_files(message_columns, source('slack_export', 'day_files')) }}

),

renamed as (

    select
        ---------- ids
        {{ day_file_folder('filename') }} as channel_folder,
        ts,
        thread_ts,
        client_msg_id,

        ---------- authors
        {{ adapter.quote('user') }} as user_id,
        bot_id,
        parent_user_id,

        ---------- kind
        type as message_type,
        subtype,
        coalesce(hidden, false) as is_hidden,

        ---------- content
        text,
        coalesce(length(text), 0) as text_chars,
        edited is not null as is_edited,
        {{ json_list_length('files') }} > 0 as has_files,
        reply_count,
        -- the `reactions` value as JSON text (stg_slack__reaction_counts takes it apart)
        cast(reactions as {{ dbt.type_string() }}) as reactions_json,

        ---------- timestamps
        {{ slack_ts_to_timestamp('ts') }} as message_at,
        {{ slack_ts_to_timestamp('thread_ts') }} as thread_at,
        {{ day_file_date('filename') }} as file_day,

        ---------- lineage
        {{ export_relative_path('filename') }} as source_file

    from source

)

select * from renamed
