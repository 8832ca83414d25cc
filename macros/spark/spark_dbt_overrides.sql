{#-
  Overrides of dbt-spark's own macros where they are wrong for Beep. They are spark__ macros of
  dbt's dispatched macros, found in the root project first, so DuckDB (duckdb__ / default__) is
  untouched.
-#}

{#-
  dbt.listagg: dbt-spark ignores order_by_clause (with a warning), which would join a prompt's
  messages in any order. Here the values are sorted by it, nulls skipped as in DuckDB's string_agg.
-#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
  {%- set collected = spark_collect_ordered(measure, order_by_clause) if order_by_clause else 'collect_list(' ~ measure ~ ')' -%}
  {%- if limit_num -%}
    {%- set collected = 'slice(' ~ collected ~ ', 1, ' ~ limit_num ~ ')' -%}
  {%- endif -%}
  array_join({{ collected }}, {{ delimiter_text }})
{%- endmacro %}

{#-
  dbt.dateadd: dbt-spark goes through unix seconds and drops the microseconds (a Slack ts has
  them, and a message 10 minutes and 1 microsecond back would count as within 10 minutes). Here:
  interval arithmetic, exact to the microsecond, for timestamp and timestamp_ntz alike.
-#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
  {%- set seconds = {'hour': 3600, 'minute': 60, 'second': 1, 'millisecond': 0.001, 'microsecond': 0.000001} -%}
  {%- set days = {'day': 1, 'week': 7} -%}
  {%- set months = {'month': 1, 'quarter': 3, 'year': 12} -%}
  {%- if datepart in seconds -%}
    ({{ from_date_or_timestamp }} + make_dt_interval(0, 0, 0, cast(({{ interval }}) * {{ seconds[datepart] }} as decimal(18, 6))))
  {%- elif datepart in days -%}
    ({{ from_date_or_timestamp }} + make_dt_interval(cast(({{ interval }}) * {{ days[datepart] }} as int), 0, 0, 0))
  {%- elif datepart in months -%}
    ({{ from_date_or_timestamp }} + make_ym_interval(0, cast(({{ interval }}) * {{ months[datepart] }} as int)))
  {%- else -%}
    {{ exceptions.raise_compiler_error("dateadd: datepart '" ~ datepart ~ "' is not implemented on Spark (macros/spark/spark_dbt_overrides.sql)") }}
  {%- endif -%}
{%- endmacro %}

{#-
  Seed loading: dbt-spark's session method pastes each value between quotes unescaped (an
  apostrophe or a backslash in a few-shot example breaks the insert, a null becomes the text
  'None'), and inserts into a location that still holds the previous build's files. Here every
  value is a literal escaped for Spark, nulls are null, and the first batch overwrites.
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set statements = [] -%}
  {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
    {%- set sql -%}
      {#- the first batch replaces what the table's location holds (an external table's files outlive its drop) #}
      insert {{ 'overwrite' if loop.first else 'into' }} {{ this.render() }} values
      {% for row in chunk -%}
        ({%- for value in row -%}
          {%- set col_name = agate_table.column_names[loop.index0] -%}
          {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
          cast({{ spark_seed_literal(value) }} as {{ 'string' if type | lower == 'varchar' else type }})
          {%- if not loop.last %}, {% endif -%}
        {%- endfor -%})
        {%- if not loop.last %},{% endif %}
      {% endfor -%}
    {%- endset -%}
    {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
    {%- if loop.index0 == 0 -%}{%- do statements.append(sql) -%}{%- endif -%}
  {%- endfor -%}
  {{ return(statements[0] if statements else '') }}
{% endmacro %}

{# A seed value as a Spark SQL literal. #}
{% macro spark_seed_literal(value) -%}
  {%- if value is none -%}null
  {%- elif value is boolean -%}{{ 'true' if value else 'false' }}
  {%- elif value is number -%}{{ value }}
  {%- else -%}{{ spark_sql_string(value | string) }}
  {%- endif -%}
{%- endmacro %}

{# Seeds' column_types say varchar (DuckDB's word); Spark's string type has no length. #}
{% macro spark__create_csv_table(model, agate_table) %}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set quote_seed_column = model['config'].get('quote_columns', None) -%}
  {% set sql %}
    create table {{ this.render() }} (
        {%- for col_name in agate_table.column_names -%}
            {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
            {{ adapter.quote_seed_column(col_name | string, quote_seed_column) }} {{ 'string' if type | lower == 'varchar' else type }}
            {%- if not loop.last -%}, {%- endif -%}
        {%- endfor -%}
    )
    {{ file_format_clause() }}
    {{ partition_cols(label="partitioned by") }}
    {{ clustered_cols(label="clustered by") }}
    {{ location_clause() }}
    {{ comment_clause() }}
  {% endset %}
  {% call statement('_') -%}
    {{ sql }}
  {%- endcall %}
  {{ return(sql) }}
{% endmacro %}
