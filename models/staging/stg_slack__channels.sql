{{ require_slack_export_file(source('slack_export', 'channels'),
    "Every Slack export has channels.json at its top level. Re-export from Slack, or copy channels.json "
    ~ "from the export's .zip into that folder, then run again.") }}

{%- set channel_columns = {
    'id': 'VARCHAR', 'name': 'VARCHAR', 'created': 'BIGINT', 'is_archived': 'BOOLEAN',
    'members': 'VARCHAR[]', 'topic': 'JSON', 'purpose': 'JSON', 'user': 'VARCHAR'} -%}
{#- public channels always; private channels, group DMs and DMs only in "all conversations" exports -#}
{%- set listings = [(source('slack_export', 'channels'), 'public'), (source('slack_export', 'groups'), 'private'),
                    (source('slack_export', 'mpims'), 'group_dm'), (source('slack_export', 'dms'), 'dm')] %}

with

{% for file, kind in listings if kind == 'public' or slack_export_file_exists(file) %}
source_{{ kind }} as (

    select *, '{{ kind }}' as channel_type from {{ read_slack_json_array(file, channel_columns) }}

),

{% endfor %}

unioned as (

    {% for file, kind in listings if kind == 'public' or slack_export_file_exists(file) %}
    select * from source_{{ kind }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

renamed as (

    select
        ---------- ids
        id as channel_id,
        -- day files live in a folder named after the channel (DMs: after their id)
        coalesce(nullif(name, ''), id) as channel_folder,

        ---------- properties
        coalesce(nullif(name, ''), id) as channel_name,
        channel_type,
        coalesce(is_archived, false) as is_archived,
        {{ json_string('topic', '$.value') }} as topic,
        {{ json_string('purpose', '$.value') }} as purpose,
        {{ list_length('members') }} as n_members,

        ---------- timestamps
        {{ epoch_to_timestamp('created') }} as created_at,

        ---------- lineage
        {{ export_relative_path('filename') }} as source_file

    from unioned
    where id is not null

)

select * from renamed
