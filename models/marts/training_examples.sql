{#
  One training example per reply: the cleaned context (oldest first, joined by a blank line, cut to
  var max_prompt_chars keeping the most recent text, ending in var prompt_suffix) -> the responder's
  label (completion " <label>", the seed's form; the export step adapts it to the tokenizer of the
  model being fine-tuned).
#}

{%- set suffix_sql = "'" ~ var('prompt_suffix') | replace("'", "''") ~ "'" %}

with

targets as (

    select * from {{ ref('int_conversations') }}
    where is_reply_target

),

windows as (

    select * from {{ ref('int_conversation_windows') }}

),

labels as (

    select * from {{ ref('user_labels') }}

),

contexts as (

    select
        conversation_id,
        target_ts,
        count(*) as n_context_messages,
        {{ dbt.listagg('context_text', 'chr(10) || chr(10)', 'order by context_position') }} as context_text,
        {{ flatten_list(list_agg_ordered('context_mentioned_user_ids', 'context_position desc')) }}
            as context_mentions
    from windows
    group by conversation_id, target_ts

),

joined as (

    select
        targets.*,
        contexts.n_context_messages,
        contexts.context_text,
        contexts.context_mentions,
        coalesce(labels.label, other_label.label) as label
    from targets
    inner join contexts
        on targets.conversation_id = contexts.conversation_id
        and targets.ts = contexts.target_ts
    left join labels
        on targets.user_id = labels.user_id
    left join labels as other_label
        on other_label.user_id = '__other__'

),

final as (

    select
        ---------- ids
        {{ dbt.hash("channel_folder || '|' || conversation_id || '|' || ts") }} as example_id,
        conversation_id,
        channel_id,
        channel_name,
        ts as target_ts,
        message_at as target_at,

        ---------- label
        user_id as responder_user_id,
        label,

        ---------- training pair
        ltrim({{ dbt.right('context_text', var('max_prompt_chars')) }}) || {{ suffix_sql }} as prompt,
        ' ' || cast(label as varchar) as completion,

        ---------- context facts (known at prediction time)
        cast(n_context_messages as integer) as n_context_messages,
        user_spoke_before as responder_spoke_before,
        prior_participant_ids,
        {{ list_distinct_ordered('context_mentions') }} as mentioned_user_ids

    from joined

)

select * from final
