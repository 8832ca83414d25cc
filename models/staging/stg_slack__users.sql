{{ require_slack_export_file(source('slack_export', 'users'),
    "Every Slack export has users.json at its top level (Enterprise Grid exports: org_users.json). "
    ~ "Re-export from Slack, or copy users.json from the export's .zip into that folder, then run again.")
   if not slack_export_file_exists(source('slack_export', 'org_users')) }}

{%- set user_columns = {
    'id': 'VARCHAR', 'name': 'VARCHAR', 'real_name': 'VARCHAR', 'deleted': 'BOOLEAN',
    'is_bot': 'BOOLEAN', 'is_app_user': 'BOOLEAN', 'profile': 'JSON'} -%}
{#- Enterprise Grid exports can hold both: users.json (the workspace's members) and org_users.json (the
    organization's, a superset). Both are read, a person once: users.json's row first, as `beep ingest`
    counts unknown users against both. -#}
{%- set users_files = [] %}
{%- for file in [source('slack_export', 'users'), source('slack_export', 'org_users')] if slack_export_file_exists(file) %}
{%- do users_files.append(file) %}
{%- endfor %}

with

{% for file in users_files %}
source_{{ loop.index }} as (

    select * from {{ read_slack_json_array(file, user_columns) }}

),

{% endfor %}
source as (

    select * from source_1
    {%- if users_files | length > 1 %}
    union all
    select * from source_2
    where id not in (select id from source_1 where id is not null)
    {%- endif %}

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
