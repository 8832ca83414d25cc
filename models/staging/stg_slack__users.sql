{{ require_slack_export_file(source('slack_export', 'users'),
    "Every Slack export has users.json at its top level (Enterprise Grid exports: org_users.json). "
    ~ "Re-export from Slack, or copy users.json from the export's .zip into that folder, then run again.")
   if not slack_export_file_exists(source('slack_export', 'org_users')) }}

{%- set user_columns = {
    'id': 'VARCHAR', 'name': 'VARCHAR', 'real_name': 'VARCHAR', 'deleted': 'BOOLEAN',
    'is_bot': 'BOOLEAN', 'is_app_user': 'BOOLEAN', 'profile': 'JSON'} -%}
{%- set users_file = source('slack_export', 'users') if slack_export_file_exists(source('slack_export', 'users')) else source('slack_export', 'org_users') %}

with

source as (

    select * from {{ read_slack_json_array(users_file, user_columns) }}

),

renamed as (

    select
        ---------- ids
        id as user_id,

        ---------- names
        name as handle,
        coalesce(nullif(real_name, ''), nullif({{ json_string('profile', '$.real_name') }}, '')) as real_name,
        nullif({{ json_string('profile', '$.display_name') }}, '') as display_name,
        coalesce(
            nullif({{ json_string('profile', '$.display_name') }}, ''),
            nullif(real_name, ''),
            nullif({{ json_string('profile', '$.real_name') }}, ''),
            nullif(name, ''),
            id
        ) as user_name,

        ---------- flags
        coalesce(is_bot, false) or coalesce(is_app_user, false) as is_bot,
        coalesce(deleted, false) as is_deleted,

        ---------- lineage
        {{ export_relative_path('filename') }} as source_file

    from source
    where id is not null

)

select * from renamed
