{#-
  The Spark side of macros/json_arrays.sql. from_json with an array<string> schema gives each element
  as text whatever it is (an object as its JSON text, a number as its digits) and null for what is
  not an array; json_array_length is null for what is not an array.
-#}

{% macro spark__json_is_array(json_text) %}
  coalesce(json_array_length({{ json_text }}) is not null, false)
{% endmacro %}

{% macro spark__json_array_elements(json_text, element_alias, position_alias) %}
  inline(transform(from_json({{ json_text }}, 'array<string>'),
      (json_element, i) -> named_struct({{ spark_sql_string(element_alias) }}, json_element,
                                        {{ spark_sql_string(position_alias) }}, i + 1)))
{% endmacro %}

{% macro spark__json_string_list(json_text) %}
  from_json({{ json_text }}, 'array<string>')
{% endmacro %}

{% macro spark__json_distinct_strings_count(json_text) %}
  coalesce(array_size(array_distinct(filter(from_json({{ json_text }}, 'array<string>'), s -> trim(s) <> ''))), 0)
{% endmacro %}
