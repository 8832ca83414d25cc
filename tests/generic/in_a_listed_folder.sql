{# Warns about rows whose folder no listing names, by name or by id (macros/listed_channel_folders.sql):
   such a conversation is kept, named after its folder, and `beep ingest` counts it (unlisted_channel). #}
{% test in_a_listed_folder(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} not in (
    select listed.folder from {{ listed_channel_folders(ref('stg_slack__channels')) }} as listed
)
{% endtest %}
