{#-
  The folder each listed conversation's day files are in, one row per folder: its name (channel_folder,
  the id for a DM without one) and, for a conversation whose name is not a folder's, its id too —
  private channels and DMs of some exports are in a folder named by their id (docs: "DMs/private
  channels use folders named by their id or name"). An id that is also another channel's name is
  not taken as a folder (that channel's folder wins). Every column of stg_slack__channels, plus
  `folder`. The one rule for int_slack__messages_cleaned and the incremental scope of the models
  that name channels by id (macros/incremental_messages.sql).
-#}
{% macro listed_channel_folders(channels) -%}
    (
        select channels.channel_folder as folder, channels.*
        from {{ channels }} as channels
        union all
        select channels.channel_id as folder, channels.*
        from {{ channels }} as channels
        where channels.channel_id <> channels.channel_folder
            and channels.channel_id not in (select named.channel_folder from {{ channels }} as named)
    )
{%- endmacro %}
