{#
  One training example per reply: the cleaned context (oldest first, joined by a blank line, cut to
  var max_prompt_chars keeping the most recent text, ending in var prompt_suffix) -> the responder's
  label (completion " <label>", the seed's form; the export step adapts it to the tokenizer of the
  model being fine-tuned).

  The context is read with lag() over each conversation, one sorted pass, rather than by grouping
  int_conversation_windows (one row per target and context message) with ordered aggregates: the
  same messages (the previous var context_messages of the conversation; with var
  context_excludes_responder, minus the responder's own), but a 1,000,000-message export's ordered
  string_agg over 2.2 million window rows cost 6 CPU seconds, the lags about one.
  tests/assert_prompts_are_their_windows.sql recomputes every prompt another way and compares;
  assert_prompts_point_in_time.sql checks that no later text leaks in.

  On DuckDB it is incremental, channel by channel (macros/incremental_messages.sql, unit
  'channel_id'): a build after the first recomputes only the examples of the channels that hold a new,
  changed or gone day file, from the cut int_conversations recomputed from (no conversation crosses
  it). When the labels moved (user_labels' user_id -> label: a new responder shifts every responder
  sorted after them), the examples kept get their new label and completion by an update
  (relabel_rows; the label and completion are one macro each, macros/example_labels.sql). On Spark a
  table rebuilt whole.
#}
{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'table'),
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    meta={'rewritten_in_place': ['label', 'completion']},
    pre_hook="{{ prepare_day_file_scope('int_conversations', 'channel_id', at_column='target_at', relabel_from='user_labels') }}",
    post_hook="{{ record_day_file_scope('int_conversations', 'channel_id', relabel_from='user_labels', at_column='target_at') }}") }}

{%- set suffix_sql = sql_string(var('prompt_suffix')) %}
{%- set n_back = var('context_messages') | int %}
{%- set excludes_responder = var('context_excludes_responder') %}
{%- set mention_lists = [] %}
{%- for k in range(1, n_back + 1) %}{% do mention_lists.append('case when in_window_' ~ k ~ ' then mentions_back_' ~ k ~ ' end') %}{% endfor %}

with

conversations as (

    select * from {{ scoped_rows(ref('int_conversations'), 'channel_id') }}

),

labels as (

    select * from {{ ref('user_labels') }}

),

with_previous as (

    -- the k-th previous message of the conversation (k = 1 .. context_messages), null before its start
    select
        *,
        {%- for k in range(1, n_back + 1) %}
        lag(clean_text, {{ k }}) over conversation_order as text_back_{{ k }},
        lag(mentioned_user_ids, {{ k }}) over conversation_order as mentions_back_{{ k }},
        lag(user_id, {{ k }}) over conversation_order as user_back_{{ k }}{{ ',' if not loop.last }}
        {%- endfor %}
    from conversations
    window conversation_order as (partition by conversation_key order by position)

),

targets as (

    -- a context message counts when it exists and, with context_excludes_responder, is not the responder's
    select
        *,
        {%- for k in range(1, n_back + 1) %}
        position > {{ k }}{% if excludes_responder %} and user_back_{{ k }} <> user_id{% endif %} as in_window_{{ k }}{{ ',' if not loop.last }}
        {%- endfor %}
    from with_previous
    where is_reply_target

),

contexts as (

    select
        targets.*,
        {%- for k in range(1, n_back + 1) %}
        case when in_window_{{ k }} then 1 else 0 end{{ ' +' if not loop.last }}
        {%- endfor %} as n_context_messages,
        -- oldest first; concat_ws skips the nulls (messages outside the window)
        concat_ws(chr(10) || chr(10)
            {%- for k in range(n_back, 0, -1) %}, case when in_window_{{ k }} then text_back_{{ k }} end{% endfor %}
        ) as context_text,
        -- most recent first
        {{ concat_lists(mention_lists) }} as context_mentions
    from targets

),

joined as (

    select
        contexts.*,
        {{ responder_label('labels', 'other_label') }} as label
    from contexts
    left join labels
        on contexts.user_id = labels.user_id
    left join labels as other_label
        on other_label.user_id = '__other__'
    where contexts.n_context_messages > 0

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
        {{ label_completion('label') }} as completion,

        ---------- context facts (known at prediction time)
        cast(n_context_messages as integer) as n_context_messages,
        user_spoke_before as responder_spoke_before,
        prior_participant_ids,
        {{ list_distinct_ordered('context_mentions') }} as mentioned_user_ids

    from joined

)

select * from final
