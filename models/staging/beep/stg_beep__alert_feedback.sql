{#-
  The "useful" / "not for me" presses on alert DMs (table alert_feedback, written by `beep slack serve`),
  typed; ephemeral (live inside the mart views); no rows where the app never ran.
-#}
{{ config(materialized='ephemeral') }}

{{ source_or_empty('beep_slack', 'alert_feedback', [
        ['alert_id', 'string'], ['person_id', 'string'], ['feedback', 'string'], ['action_ts', 'string'],
        ['pressed_at', 'timestamp'],
    ]) }}
