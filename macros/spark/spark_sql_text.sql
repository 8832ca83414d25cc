{#-
  Spark SQL spellings shared by the spark__ macros (docs/spark.md, "Portability rules").

  Spark processes backslash escapes inside string literals ('\d' is the letter d), so every
  regular expression and text literal handed to Spark goes through spark_sql_string: backslashes
  doubled, quotes escaped. Spark's regexp_replace replaces every match (no 'g' flag; its 4th
  argument is a position) and refers to groups as $1 (a "\1" would be a literal 1).
-#}

{# A Spark SQL string literal holding exactly `text`. #}
{% macro spark_sql_string(text) -%}
  '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{# regexp_replace(expression, pattern, replacement) with the pattern and replacement as raw text. #}
{% macro spark_regexp_replace(expression, pattern, replacement) -%}
  regexp_replace({{ expression }}, {{ spark_sql_string(pattern) }}, {{ spark_sql_string(replacement) }})
{%- endmacro %}

{#-
  A DuckDB column type as Beep's models spell it for read_json ('VARCHAR', 'BIGINT', 'JSON',
  'VARCHAR[]', 'STRUCT("user" VARCHAR, ts VARCHAR)', 'STRUCT(id VARCHAR)[]') in Spark's DDL
  (string, bigint, string, array<string>, struct<`user`:string,`ts`:string>, array<struct<`id`:string>>).
  JSON becomes a string: Spark's JSON reader keeps a nested object's text, which get_json_object reads.
-#}
{% macro spark_type_from_duckdb(duckdb_type) -%}
  {%- set t = duckdb_type | trim -%}
  {%- set upper = t | upper -%}
  {%- if upper.endswith('[]') -%}
    array<{{ spark_type_from_duckdb(t[:-2]) }}>
  {%- elif upper.startswith('STRUCT(') and upper.endswith(')') -%}
    {%- set fields = [] -%}
    {%- for field in t[7:-1].split(',') -%}
      {%- set parts = field | trim -%}
      {%- set name = parts.split(' ')[0] | replace('"', '') -%}
      {%- set field_type = parts[parts.split(' ')[0] | length:] -%}
      {%- do fields.append('`' ~ name ~ '`:' ~ spark_type_from_duckdb(field_type)) -%}
    {%- endfor -%}
    struct<{{ fields | join(',') }}>
  {%- else -%}
    {%- set scalars = {'VARCHAR': 'string', 'TEXT': 'string', 'STRING': 'string', 'JSON': 'string',
                       'BIGINT': 'bigint', 'INTEGER': 'int', 'INT': 'int', 'BOOLEAN': 'boolean',
                       'DOUBLE': 'double', 'TIMESTAMP': 'timestamp_ntz', 'DATE': 'date'} -%}
    {%- if upper not in scalars -%}
      {{ exceptions.raise_compiler_error("spark_type_from_duckdb: no Spark type for the column type '" ~ t ~ "' (macros/spark/spark_sql_text.sql lists the known ones; add it there)") }}
    {%- endif -%}
    {{ scalars[upper] }}
  {%- endif -%}
{%- endmacro %}

{#-
  The elements of an ordered list built from struct(order keys..., v): an array of structs
  collected with collect_list is sorted by `order_by` (a SQL fragment "a, b desc"), then reduced
  to its values. collect_list drops nulls, so the value travels in a struct: a null value is kept
  (DuckDB's list() keeps it too).
-#}
{% macro spark_ordered_values(structs_expression, order_by) -%}
  {%- set keys = order_by | trim -%}
  {%- if keys[:8] | lower == 'order by' -%}{%- set keys = keys[8:] | trim -%}{%- endif -%}
  {%- set terms = [] -%}
  {%- for term in keys.split(',') -%}
    {%- set words = term | trim -%}
    {%- set lower = words | lower -%}
    {%- set descending = lower.endswith(' desc') -%}
    {%- set expression = words[:-5] if descending else (words[:-4] if lower.endswith(' asc') else words) -%}
    {%- do terms.append({'expression': expression | trim, 'descending': descending}) -%}
  {%- endfor -%}
  transform(
    array_sort(
      {{ structs_expression }},
      (l, r) -> case
        {%- for term in terms %}
        when l.k{{ loop.index0 }} < r.k{{ loop.index0 }} then {{ 1 if term.descending else -1 }}
        when l.k{{ loop.index0 }} > r.k{{ loop.index0 }} then {{ -1 if term.descending else 1 }}
        {%- endfor %}
        else 0 end
    ),
    s -> s.v
  )
{%- endmacro %}

{# collect_list(struct(<order keys> as k0.., value as v)) for spark_ordered_values. #}
{% macro spark_collect_ordered(value, order_by) -%}
  {%- set keys = order_by | trim -%}
  {%- if keys[:8] | lower == 'order by' -%}{%- set keys = keys[8:] | trim -%}{%- endif -%}
  {%- set exprs = [] -%}
  {%- for term in keys.split(',') -%}
    {%- set words = term | trim -%}
    {%- set lower = words | lower -%}
    {%- set expression = words[:-5] if lower.endswith(' desc') else (words[:-4] if lower.endswith(' asc') else words) -%}
    {%- do exprs.append((expression | trim) ~ ' as k' ~ loop.index0) -%}
  {%- endfor -%}
  {{ spark_ordered_values('collect_list(struct(' ~ exprs | join(', ') ~ ', ' ~ value ~ ' as v))', order_by) }}
{%- endmacro %}

{# sql_string (macros/slack_export_files.sql) on Spark: '' inside a literal is two adjacent literals there, so 'it''s' would read "its". #}
{% macro spark__sql_string(text) -%}{{ spark_sql_string(text) }}{%- endmacro %}
