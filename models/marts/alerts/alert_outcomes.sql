{#-
  What became of every alert `beep slack serve` sent (status sent) or would have sent (dry_run): one row
  per alert with its outcome, the first that applies:
    useful                the person pressed "useful" (their latest press counts);
    not_for_me            they pressed "not for me";
    answered_within_hour  no press, but they wrote in the conversation within an hour of the alert;
    ignored               none of these, and the app has seen messages for an hour since the alert;
    pending               not an hour yet (by the latest message the app saw, so the view needs no clock).
  A hit is useful or answered_within_hour. Dry-run rows measure the same without a DM: whether the
  person the model named turned up by themselves.
-#}
{{ config(materialized='view') }}

with

alerts as (
    select
        *,
        coalesce(sent_at, decided_at) as alerted_at
    from {{ ref('stg_beep__alerts') }}
    where status in ('sent', 'dry_run')
),

presses as (
    select
        alert_id,
        feedback,
        pressed_at,
        row_number() over (partition by alert_id order by pressed_at desc, action_ts desc) as press_rank
    from {{ ref('stg_beep__alert_feedback') }}
),

latest_press as (
    select alert_id, feedback, pressed_at from presses where press_rank = 1
),

messages as (
    select * from {{ ref('stg_beep__slack_messages') }}
),

answers as (
    select
        alerts.alert_id,
        min(messages.message_at) as answered_at
    from alerts
    inner join messages
        on messages.conversation_id = alerts.conversation_id
        and messages.user_id = alerts.person_id
        and messages.message_at > alerts.alerted_at
        and messages.message_at <= {{ dbt.dateadd('hour', 1, 'alerts.alerted_at') }}
    group by alerts.alert_id
),

seen as (
    select max(message_at) as last_message_at from messages
),

final as (
    select
        alerts.alert_id,
        alerts.model,
        alerts.person_id,
        alerts.conversation_id,
        alerts.channel_id,
        alerts.status as delivery,
        alerts.probability,
        alerts.reason,
        alerts.alerted_at,
        latest_press.feedback,
        latest_press.pressed_at,
        answers.answered_at,
        case
            when latest_press.feedback = 'useful' then 'useful'
            when latest_press.feedback = 'not_for_me' then 'not_for_me'
            when answers.answered_at is not null then 'answered_within_hour'
            when seen.last_message_at >= {{ dbt.dateadd('hour', 1, 'alerts.alerted_at') }} then 'ignored'
            else 'pending'
        end as outcome
    from alerts
    cross join seen
    left join latest_press on latest_press.alert_id = alerts.alert_id
    left join answers on answers.alert_id = alerts.alert_id
)

select
    *,
    outcome in ('useful', 'answered_within_hour') as is_hit
from final
