{#-
  The Slack app's alert decisions (table alerts, written by `beep slack serve`: python_steps/beep/migrations.py,
  m010_slack_alerts), typed for the alert marts: one row per conversation and person, sent or suppressed
  and why. Ephemeral, like every stg_beep__ model: the mart views read the table itself and stay live
  while the app writes. On a DuckDB where the app never ran: typed, no rows.
-#}
{{ config(materialized='ephemeral') }}

{{ source_or_empty('beep_slack', 'alerts', [
        ['alert_id', 'string'], ['conversation_id', 'string'], ['channel_id', 'string'], ['message_ts', 'string'],
        ['person_id', 'string'], ['author_id', 'string'], ['probability', 'float'], ['model', 'string'],
        ['reason', 'string'], ['status', 'string'], ['suppressed_reason', 'string'], ['error', 'string'],
        ['permalink', 'string'], ['decided_at', 'timestamp'], ['sent_at', 'timestamp'],
    ]) }}
