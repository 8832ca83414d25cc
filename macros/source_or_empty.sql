{#-
  Models over the tables the Python steps own (refine_verdicts, eval_runs, …) must build on a fresh
  DuckDB too, before any step has created them. `source_or_empty` selects `columns` from the source
  when its table exists, and otherwise a typed select of no rows with the same columns, so the
  model, its tests and everything downstream keep one shape.

  columns: [[name, type], ...] in order; type is a logical type spelled through dbt's cross-database
  type macros: string, integer, bigint, float (double precision), boolean, timestamp.
-#}
{% macro source_or_empty(source_name, table_name, columns) %}
  {%- set relation = source(source_name, table_name) -%}
  {%- set found = namespace(exists=false) -%}
  {%- if execute -%}
    {%- set found.exists = adapter.get_relation(
          database=relation.database, schema=relation.schema, identifier=relation.identifier) is not none -%}
  {%- endif -%}
  {%- if found.exists -%}
    select
      {%- for name, type in columns %}
        {{ name }}{{ "," if not loop.last }}
      {%- endfor %}
    from {{ relation }}
  {%- else -%}
    select
      {%- for name, type in columns %}
        cast(null as {{ beep_logical_type(type) }}) as {{ name }}{{ "," if not loop.last }}
      {%- endfor %}
    where 1 = 0
  {%- endif -%}
{% endmacro %}

{% macro beep_logical_type(type) %}
  {%- set types = {
      'string': dbt.type_string,
      'integer': dbt.type_int,
      'bigint': dbt.type_bigint,
      'float': beep_type_double,
      'boolean': dbt.type_boolean,
      'timestamp': dbt.type_timestamp,
  } -%}
  {%- if type not in types -%}
    {{ exceptions.raise_compiler_error("source_or_empty: unknown type '" ~ type ~ "' (use one of " ~ types.keys() | join(', ') ~ ")") }}
  {%- endif -%}
  {{- types[type]() -}}
{% endmacro %}

{# A double-precision float: dbt's type_float is single precision (FLOAT4) on DuckDB. #}
{% macro beep_type_double() %}
  {{ return(adapter.dispatch('beep_type_double', 'beep')()) }}
{% endmacro %}
{% macro default__beep_type_double() %}double{% endmacro %}
{% macro duckdb__beep_type_double() %}double{% endmacro %}
