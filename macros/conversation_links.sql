{#
  Helpers of the reply split (var conversation_split 'reply', models/intermediate/int_conversations.sql).
  The list and time-window spellings are DuckDB's and dispatched; following links to their root is
  plain SQL.
#}

{# One row per element of a list column (in a select list). #}
{% macro unnest_list(list_expression) %}
  {{ return(adapter.dispatch('unnest_list', 'beep')(list_expression)) }}
{% endmacro %}

{% macro duckdb__unnest_list(list_expression) %}
  unnest({{ list_expression }})
{% endmacro %}

{# A list without one value (e.g. the users a message mentions, less its author). #}
{% macro list_without(list_expression, value) %}
  {{ return(adapter.dispatch('list_without', 'beep')(list_expression, value)) }}
{% endmacro %}

{% macro duckdb__list_without(list_expression, value) %}
  list_filter({{ list_expression }}, lambda x: x <> {{ value }})
{% endmacro %}

{# How many earlier rows of the partition fall within the last `minutes` before this row's time. #}
{% macro count_rows_in_last_minutes(partition_by, time_column, minutes) %}
  {{ return(adapter.dispatch('count_rows_in_last_minutes', 'beep')(partition_by, time_column, minutes)) }}
{% endmacro %}

{% macro duckdb__count_rows_in_last_minutes(partition_by, time_column, minutes) %}
  (count(*) over (partition by {{ partition_by }} order by {{ time_column }}
      range between interval {{ minutes }} minute preceding and current row) - 1)
{% endmacro %}

{#
  CTEs that find, for every row of `links` (columns seq: a number unique over the whole relation, and
  parent_seq: a link to an earlier row, or null for a root), the root its links lead to, as column
  root_seq of the last CTE, `<prefix>_<steps>`. Links always point backwards, so following them
  ends; pointer jumping (each step replaces a row's ancestor by its ancestor's ancestor) reaches a
  root 2^steps links away in `steps` hash joins on one integer, however long the chains, instead of
  one recursive step per link. Emits ", <prefix>_0 as (...), ..." to follow other CTEs.
#}
{% macro root_by_pointer_jumping(links, prefix='jump', steps=20) %}
  {{ return(adapter.dispatch('root_by_pointer_jumping', 'beep')(links, prefix, steps)) }}
{% endmacro %}

{#- DuckDB and the rest; Spark runs the same steps on an array (macros/spark/spark_lists_and_time.sql). -#}
{% macro default__root_by_pointer_jumping(links, prefix, steps) %}
    , {{ prefix }}_0 as (
        select seq, coalesce(parent_seq, seq) as root_seq from {{ links }}
    )
    {%- for step in range(1, steps + 1) %}
    , {{ prefix }}_{{ step }} as (
        select here.seq, up.root_seq
        from {{ prefix }}_{{ step - 1 }} as here
        inner join {{ prefix }}_{{ step - 1 }} as up
            on up.seq = here.root_seq
    )
    {%- endfor %}
{% endmacro %}

{#
  How many previous messages of a conversation its prior participants are read from
  (int_conversations.prior_participant_ids); the live tracker keeps as many of each conversation's
  messages (python_steps/beep/slack/conversations.py reads this macro).
#}
{% macro prior_participant_messages() %}{{ return(50) }}{% endmacro %}
