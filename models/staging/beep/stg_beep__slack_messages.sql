{#-
  The live messages the Slack app saw, cleaned as the dataset cleans them, each in its conversation
  (table slack_messages, written by `beep slack serve`); the alert marts read who answered a
  conversation after an alert. Typed; ephemeral; no rows where the app never ran.
-#}
{{ config(materialized='ephemeral') }}

{{ source_or_empty('beep_slack', 'slack_messages', [
        ['channel_id', 'string'], ['ts', 'string'], ['thread_ts', 'string'], ['user_id', 'string'],
        ['conversation_id', 'string'], ['message_at', 'timestamp'],
    ]) }}
