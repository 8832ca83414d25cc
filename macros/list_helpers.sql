{# List helpers for the windowing models (DuckDB lists; another adapter would use arrays). #}

{# Distinct elements of a list, keeping the first occurrence's order (pass a column, not an expression). #}
{% macro list_distinct_ordered(list_expression) %}
  {{ return(adapter.dispatch('list_distinct_ordered', 'beep')(list_expression)) }}
{% endmacro %}

{% macro duckdb__list_distinct_ordered(list_expression) %}
  list_filter({{ list_expression }}, lambda x, i: list_position({{ list_expression }}, x) = i)
{% endmacro %}

{# Flatten a list of lists into one list. #}
{% macro flatten_list(list_of_lists_expression) %}
  {{ return(adapter.dispatch('flatten_list', 'beep')(list_of_lists_expression)) }}
{% endmacro %}

{% macro duckdb__flatten_list(list_of_lists_expression) %}
  flatten({{ list_of_lists_expression }})
{% endmacro %}

{# An aggregate collecting values into a list in the given order. #}
{% macro list_agg_ordered(value, order_by) %}
  {{ return(adapter.dispatch('list_agg_ordered', 'beep')(value, order_by)) }}
{% endmacro %}

{% macro duckdb__list_agg_ordered(value, order_by) %}
  list({{ value }} order by {{ order_by }})
{% endmacro %}

{# User ids mentioned in raw Slack text (<@U123> or <@U123|name>). #}
{% macro slack_mentioned_user_ids(text_column) %}
  {{ return(adapter.dispatch('slack_mentioned_user_ids', 'beep')(text_column)) }}
{% endmacro %}

{% macro duckdb__slack_mentioned_user_ids(text_column) %}
  {#- without '<@' there is nothing to extract (the same empty list, without a regular expression) -#}
  case when contains(coalesce({{ text_column }}, ''), '<@')
    then list_distinct(regexp_extract_all(coalesce({{ text_column }}, ''), '<@([UW][A-Z0-9]+)(?:\|[^>]*)?>', 1))
    else cast([] as varchar[])
  end
{% endmacro %}

{# 1..n as a relation with column k (portable: a union of literals). #}
{% macro integers_1_to_n(n) %}
  {%- for k in range(1, n + 1) %}
  select {{ k }} as k{{ ' union all' if not loop.last }}
  {%- endfor %}
{% endmacro %}

{# A MAP from one column to another over a whole relation (used to look up display names). #}
{% macro map_from_columns(key_column, value_column) %}
  {{ return(adapter.dispatch('map_from_columns', 'beep')(key_column, value_column)) }}
{% endmacro %}

{% macro duckdb__map_from_columns(key_column, value_column) %}
  map(list({{ key_column }}), list({{ value_column }}))
{% endmacro %}

{#
  The values of `value` over the previous `n` rows of a window, most recent first (e.g. who wrote
  the messages before this one). Pass the result through list_distinct_ordered in a later CTE: a
  list expression inside a lambda would be evaluated again for every element.
#}
{% macro recent_values(value, partition_by, order_by, n) %}
  {{ return(adapter.dispatch('recent_values', 'beep')(value, partition_by, order_by, n)) }}
{% endmacro %}

{% macro duckdb__recent_values(value, partition_by, order_by, n) %}
  list_reverse(coalesce(list({{ value }}) over (partition by {{ partition_by }} order by {{ order_by }}
      rows between {{ n }} preceding and 1 preceding), []))
{% endmacro %}

{# One list of the elements of several list expressions, in order; null lists count as empty. #}
{% macro concat_lists(list_expressions) %}
  {{ return(adapter.dispatch('concat_lists', 'beep')(list_expressions)) }}
{% endmacro %}

{% macro duckdb__concat_lists(list_expressions) %}
  flatten([{{ list_expressions | join(', ') }}])
{% endmacro %}

{# The values of a window's frame joined into one text by `delimiter` (an SQL expression), in the window's order; nulls skipped. #}
{% macro string_agg_over(value, delimiter, window_name) %}
  {{ return(adapter.dispatch('string_agg_over', 'beep')(value, delimiter, window_name)) }}
{% endmacro %}

{% macro duckdb__string_agg_over(value, delimiter, window_name) %}
  string_agg({{ value }}, {{ delimiter }}) over {{ window_name }}
{% endmacro %}
