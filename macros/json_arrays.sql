{#-
  JSON arrays held as JSON text (a column read as 'JSON', e.g. a message's `reactions`), taken apart
  without trusting their shape: what is not an array reads as no elements, an element that is not
  an object reads as no fields. The Spark side is in macros/spark/spark_json_arrays.sql.
-#}

{# Whether the JSON text is an array (false for null, an object, a string, a number). #}
{% macro json_is_array(json_text) %}
  {{ return(adapter.dispatch('json_is_array', 'beep')(json_text)) }}
{% endmacro %}
{% macro duckdb__json_is_array(json_text) %}
  coalesce(case when json_valid({{ json_text }}) then json_type({{ json_text }}) = 'ARRAY' end, false)
{% endmacro %}

{#- In a select list: one row per element of a JSON array, as `element` (the element's JSON text)
    and `position` (1 for the first), named by the two aliases. Not an array: no row. -#}
{% macro json_array_elements(json_text, element_alias, position_alias) %}
  {{ return(adapter.dispatch('json_array_elements', 'beep')(json_text, element_alias, position_alias)) }}
{% endmacro %}
{% macro duckdb__json_array_elements(json_text, element_alias, position_alias) %}
  unnest(json_extract({{ json_text }}, '$[*]')) as {{ element_alias }},
  generate_subscripts(json_extract({{ json_text }}, '$[*]'), 1) as {{ position_alias }}
{% endmacro %}

{#- The elements of a JSON array as a list of strings: strings as they are, numbers as their text,
    nulls as null; not an array: an empty (or null) list. -#}
{% macro json_string_list(json_text) %}
  {{ return(adapter.dispatch('json_string_list', 'beep')(json_text)) }}
{% endmacro %}
{% macro duckdb__json_string_list(json_text) %}
  json_extract_string({{ json_text }}, '$[*]')
{% endmacro %}

{# How many distinct non-blank strings a JSON array holds (0 when it is not an array). #}
{% macro json_distinct_strings_count(json_text) %}
  {{ return(adapter.dispatch('json_distinct_strings_count', 'beep')(json_text)) }}
{% endmacro %}
{% macro duckdb__json_distinct_strings_count(json_text) %}
  coalesce(len(list_distinct(list_filter(json_extract_string({{ json_text }}, '$[*]'), lambda s: trim(s) <> ''))), 0)
{% endmacro %}
