{# Small expressions whose spelling differs between warehouses, dispatched so another adapter can override them. #}

{# The string at a JSON path ('$.a.b') of a JSON column. #}
{% macro json_string(json_column, path) %}
  {{ return(adapter.dispatch('json_string', 'beep')(json_column, path)) }}
{% endmacro %}
{% macro duckdb__json_string(json_column, path) %}json_extract_string({{ json_column }}, '{{ path }}'){% endmacro %}

{# Seconds since the epoch -> timestamp. #}
{% macro epoch_to_timestamp(seconds) %}
  {{ return(adapter.dispatch('epoch_to_timestamp', 'beep')(seconds)) }}
{% endmacro %}
{% macro duckdb__epoch_to_timestamp(seconds) %}to_timestamp({{ seconds }})::timestamp{% endmacro %}

{# Number of elements of a list / array. #}
{% macro list_length(list_column) %}
  {{ return(adapter.dispatch('list_length', 'beep')(list_column)) }}
{% endmacro %}
{% macro duckdb__list_length(list_column) %}coalesce(len({{ list_column }}), 0){% endmacro %}

{# Whether a string matches a regular expression anywhere (RE2 syntax). #}
{% macro regex_matches(expression, pattern) %}
  {{ return(adapter.dispatch('regex_matches', 'beep')(expression, pattern)) }}
{% endmacro %}
{% macro duckdb__regex_matches(expression, pattern) %}regexp_matches({{ expression }}, '{{ pattern | replace("'", "''") }}'){% endmacro %}

{# Number of elements of a JSON array held as JSON text (0 when null). #}
{% macro json_list_length(json_column) %}
  {{ return(adapter.dispatch('json_list_length', 'beep')(json_column)) }}
{% endmacro %}
{% macro duckdb__json_list_length(json_column) %}coalesce(json_array_length({{ json_column }}), 0){% endmacro %}
