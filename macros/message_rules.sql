{#-
  Which raw Slack messages are usable, in one place: models/intermediate/int_slack__messages_cleaned.sql
  calls these macros, and the live path (the Slack app, `beep predict`) renders the same macros and
  runs their SQL in DuckDB on each incoming message (python_steps/beep/rules/messages.py). Change a
  rule here and both change; tests/python/test_rules_parity.py replays exports through both.
-#}

{#-
  The message subtypes by class. A subtype in no class (and not a content subtype) is left out as
  'other_subtype'; a message without a subtype is content.
-#}
{% macro message_subtype_classes() %}
  {{ return({
      'edit_event': ['message_changed', 'message_deleted', 'message_replied'],
      'join_leave': ['channel_join', 'channel_leave', 'group_join', 'group_leave'],
      'channel_event': [
          'channel_topic', 'channel_purpose', 'channel_name', 'channel_archive', 'channel_unarchive',
          'group_topic', 'group_purpose', 'group_name', 'group_archive', 'group_unarchive',
          'pinned_item', 'unpinned_item', 'reminder_add', 'bot_add', 'bot_remove', 'huddle_thread',
          'channel_convert_to_private', 'channel_convert_to_public', 'sh_room_created'],
      'tombstone': ['tombstone'],
      'bot': ['bot_message'],
      'content': ['thread_broadcast', 'file_share', 'me_message'],
  }) }}
{% endmacro %}

{#-
  Slackbot's user id. Every real export has Slackbot messages (reminders, tombstones, "only visible to
  you" notes), and users.json often lacks Slackbot or lists it with is_bot false: its messages are a
  bot's whatever users.json says.
-#}
{% macro slackbot_user_id() %}{{ return('USLACKBOT') }}{% endmacro %}

{%- macro message_rules_in_list(column, values) -%}
  {{ column }} in ('{{ values | join("', '") }}')
{%- endmacro -%}

{#-
  Why a raw message is not usable (null: usable), before cleaning. The reasons are checked in this
  order; the first that applies wins. Arguments are SQL expressions: message_at (null: no usable ts),
  copy_number (> 1: a second copy of the same message), subtype, user_id, bot_id, is_bot (the
  author is a bot user, e.g. users.json's is_bot; Slackbot is one whatever it says), text (the raw text).
-#}
{% macro message_exclusion_reason(message_at, copy_number, subtype, user_id, bot_id, is_bot, text) %}
  {%- set classes = message_subtype_classes() -%}
  case
            when {{ message_at }} is null then 'missing_ts'
            when {{ copy_number }} > 1 then 'duplicate'
            {%- for reason in ['edit_event', 'join_leave', 'channel_event', 'tombstone'] %}
            when {{ message_rules_in_list(subtype, classes[reason]) }} then '{{ reason }}'
            {%- endfor %}
            when {{ message_rules_in_list(subtype, classes['bot']) }}
                or ({{ user_id }} is null and {{ bot_id }} is not null)
                or coalesce({{ is_bot }}, false)
                or {{ user_id }} = '{{ slackbot_user_id() }}' then 'bot'
            when {{ user_id }} is null then 'no_user'
            when {{ subtype }} is not null
                and not {{ message_rules_in_list(subtype, classes['content']) }} then 'other_subtype'
            when trim(coalesce({{ text }}, '')) = '' then 'empty_text'
        end
{%- endmacro %}

{#- The final reason: a usable message whose cleaned text is empty is left out too. -#}
{% macro message_final_exclusion_reason(raw_reason, clean_text) %}
  case
            when {{ raw_reason }} is null and {{ clean_text }} = '' then 'empty_after_cleaning'
            else {{ raw_reason }}
        end
{%- endmacro %}
