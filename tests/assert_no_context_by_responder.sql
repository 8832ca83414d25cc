-- The seed's rule: no context message of an example was written by its responder.
select conversation_id, target_ts, context_ts
from {{ ref('int_conversation_windows') }}
where context_user_id = responder_user_id
