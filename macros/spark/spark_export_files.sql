{#-
  Reading the raw Slack export on Spark (the spark__ side of macros/slack_export_files.sql).

  Spark's JSON reader cannot read a pretty-printed array file from SQL (multiLine is not
  expressible there), so every file is read as bytes with the binaryFile source and parsed with
  from_json into an array of structs (FAILFAST: a malformed file stops the build naming Spark's
  error), one row per element. binaryFile gives each file's path and length too (DuckDB's
  filename=true and read_blob). Its listing leaves zero-byte files out: on Spark they are counted by
  `beep ingest` / `beep build` in Python instead (docs/spark.md, "Limits").

  `filename` here is already the path inside the export ('users.json', 'general/2024-01-02.json'):
  the depth of the pattern read says how many trailing path segments that is, so it never depends
  on how Spark spells the export folder (file:/..., s3a://..., a relative path).
-#}

{# A path for Spark's file sources that matches only itself (Hadoop glob characters escaped). #}
{% macro spark_export_location(relative_path) -%}
  {%- set root = slack_export_path() | replace('\\', '/') -%}
  {%- for c in ['[', ']', '{', '}', '*', '?'] -%}
    {%- set root = root | replace(c, '\\' ~ c) -%}
  {%- endfor -%}
  {{- (root ~ '/' ~ relative_path) | replace('`', '``') -}}
{%- endmacro %}

{# The last `n` segments of a path column: the file's path inside the export. #}
{% macro spark_trailing_segments(path_column, n) -%}
  array_join(slice(split({{ path_column }}, '/'), -{{ n }}, {{ n }}), '/')
{%- endmacro %}

{# How many segments a relative path or pattern has ('users.json' 1, '*/*.json' 2). #}
{% macro spark_segments(relative_path) -%}
  {{- return(relative_path.strip('/').split('/') | length) -}}
{%- endmacro %}

{#-
  Whether a file (or pattern) of the export exists: a listing of the export's top-level .json
  files for a top-level name ('users.json'; '*': the folder holds an export at all), of its
  day files for a pattern inside folders ('*/*.json'), matched against the pattern. Spark stops
  with "Path does not exist" where a listing's pattern matches nothing at all (a missing export
  folder, an export without a single day file): `beep build` checks both before dbt starts.
-#}
{% macro spark__slack_export_file_exists(relative_path) %}
  {%- if not execute -%}{{ return(true) }}{%- endif -%}
  {%- set n = spark_segments(relative_path) -%}
  {%- set listed = '*.json' if n == 1 else '*/*.json' -%}
  {%- set pattern = '^' ~ (relative_path.strip('/') | replace('.', '\\.') | replace('*', '[^/]*') | replace('?', '[^/]')) ~ '$' -%}
  {%- set sql -%}
    select count(*) from binaryFile.`{{ spark_export_location(listed) }}`
    where {{ 'true' if relative_path == '*' else spark_trailing_segments('path', n) ~ ' rlike ' ~ spark_sql_string(pattern) }}
  {%- endset -%}
  {{ return(run_query(sql).columns[0].values()[0] > 0) }}
{% endmacro %}


{% macro spark__read_slack_json_array(relative_path, columns) %}
  (
    select
      {%- for name in columns %}
      {{ adapter.quote(name) }},
      {%- endfor %}
      filename
    from (
      select
        {{ spark_trailing_segments('path', spark_segments(relative_path)) }} as filename,
        inline(from_json(
            cast(content as string),
            {{ spark_sql_string('array<struct<' ~ spark_struct_fields(columns) ~ '>>') }},
            map('mode', 'FAILFAST')
        ))
      from binaryFile.`{{ spark_export_location(relative_path) }}`
    )
  )
{% endmacro %}

{# name:type pairs of a read_json columns mapping, in Spark DDL. #}
{% macro spark_struct_fields(columns) -%}
  {%- set fields = [] -%}
  {%- for name, type in columns.items() -%}
    {%- do fields.append('`' ~ name ~ '`:' ~ spark_type_from_duckdb(type)) -%}
  {%- endfor -%}
  {{- fields | join(',') -}}
{%- endmacro %}


{% macro spark__read_slack_day_files(columns, day_files) %}
  {{- require_slack_export_file(day_files,
        "An export holds one folder per channel with a YYYY-MM-DD.json file per day; this one has none. "
        ~ "Export the workspace again with its message history, or point slack_export at the right folder.") -}}
  {{ spark__read_slack_json_array(day_files, columns) }}
{% endmacro %}


{# Every day file with its size in bytes (content not read: binaryFile prunes the column). Zero-byte files are not listed. #}
{% macro spark__list_slack_day_files(day_files) %}
  (select {{ spark_trailing_segments('path', spark_segments(day_files)) }} as filename, length as size
   from binaryFile.`{{ spark_export_location(day_files) }}`)
{% endmacro %}


{# `filename` is already relative on Spark (see above). #}
{% macro spark__export_relative_path(filename_column) %}{{ filename_column }}{% endmacro %}

{% macro spark__day_file_folder(filename_column) %}
  regexp_extract({{ filename_column }}, {{ spark_sql_string('([^/]+)/[^/]+$') }}, 1)
{% endmacro %}

{% macro spark__day_file_date(filename_column) %}
  try_cast(nullif(regexp_extract({{ filename_column }}, {{ spark_sql_string('(\\d{4}-\\d{2}-\\d{2})\\.json$') }}, 1), '') as date)
{% endmacro %}
