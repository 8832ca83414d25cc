{#
  Reading the raw Slack export. Everything DuckDB-specific about files lives here, behind
  adapter.dispatch, so another adapter can implement the same macros (e.g. reading from a stage).
#}

{% macro slack_export_path() %}
  {%- set path = var('slack_export') | string -%}
  {{ return(path.rstrip('/').rstrip('\\')) }}
{% endmacro %}

{# A SQL string literal of `text` (quotes doubled: a folder may be called "Bob's export"). #}
{% macro sql_string(text) %}'{{ text | replace("'", "''") }}'{% endmacro %}

{# The export folder as a glob pattern that matches only itself ("[old]" would be a character class). #}
{% macro slack_export_glob() %}
  {{ return(slack_export_path() | replace('[', '[[]') | replace('*', '[*]') | replace('?', '[?]')) }}
{% endmacro %}


{# Whether a file exists in the export (checked at run time; true while dbt only parses). #}
{% macro slack_export_file_exists(relative_path) %}
  {{ return(adapter.dispatch('slack_export_file_exists', 'beep')(relative_path)) }}
{% endmacro %}

{% macro duckdb__slack_export_file_exists(relative_path) %}
  {%- if not execute -%}{{ return(true) }}{%- endif -%}
  {%- set result = run_query("select count(*) from glob(" ~ sql_string(slack_export_glob() ~ '/' ~ relative_path) ~ ")") -%}
  {{ return(result.columns[0].values()[0] > 0) }}
{% endmacro %}


{# Stop with a message that says what is wrong and what to do, before DuckDB says something vaguer. #}
{% macro require_slack_export_file(relative_path, hint) %}
  {%- if execute and not slack_export_file_exists(relative_path) -%}
    {%- if not slack_export_file_exists('*') -%}
      {{ exceptions.raise_compiler_error(
          "The Slack export folder '" ~ slack_export_path() ~ "' does not exist. "
          ~ "Point the dbt var slack_export at an unzipped export (dbt build --vars '{slack_export: /path/to/export}') "
          ~ "or run `beep ingest PATH` on the .zip or folder first.") }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error(
        "Missing " ~ relative_path ~ " in the Slack export '" ~ slack_export_path() ~ "'. " ~ hint) }}
  {%- endif -%}
{% endmacro %}


{# A JSON array file of the export as rows, with the listed columns (missing keys become null). #}
{% macro read_slack_json_array(relative_path, columns) %}
  {{ return(adapter.dispatch('read_slack_json_array', 'beep')(relative_path, columns)) }}
{% endmacro %}

{% macro duckdb__read_slack_json_array(relative_path, columns) %}
  read_json(
    {{ sql_string(slack_export_glob() ~ '/' ~ relative_path) }},
    format = 'array',
    records = true,
    filename = true,
    maximum_object_size = 33554432,
    columns = {
      {%- for name, type in columns.items() %}
      '{{ name }}': '{{ type }}'{{ ',' if not loop.last }}
      {%- endfor %}
    }
  )
{% endmacro %}


{# Every day file of every conversation folder: <folder>/<YYYY-MM-DD>.json, one row per message. #}
{% macro read_slack_day_files(columns) %}
  {{ return(adapter.dispatch('read_slack_day_files', 'beep')(columns)) }}
{% endmacro %}

{% macro duckdb__read_slack_day_files(columns) %}
  {{- require_slack_export_file('*/*.json',
        "An export holds one folder per channel with a YYYY-MM-DD.json file per day; this one has none. "
        ~ "Export the workspace again with its message history, or point slack_export at the right folder.") -}}
  {{ duckdb__read_slack_json_array('*/*.json', columns) }}
{% endmacro %}


{# Every day file with its size in bytes (without reading its content). #}
{% macro list_slack_day_files() %}
  {{ return(adapter.dispatch('list_slack_day_files', 'beep')()) }}
{% endmacro %}

{% macro duckdb__list_slack_day_files() %}
  (select filename, size from read_blob({{ sql_string(slack_export_glob() ~ '/*/*.json') }}))
{% endmacro %}


{# The file path relative to the export folder, with forward slashes. #}
{% macro export_relative_path(filename_column) %}
  {{ return(adapter.dispatch('export_relative_path', 'beep')(filename_column)) }}
{% endmacro %}
{% macro duckdb__export_relative_path(filename_column) %}
  replace(replace({{ filename_column }}, '\', '/'), {{ sql_string(slack_export_path() | replace('\\', '/') ~ '/') }}, '')
{% endmacro %}

{# The conversation folder of a day file: general/2023-01-02.json -> general #}
{% macro day_file_folder(filename_column) %}
  {{ return(adapter.dispatch('day_file_folder', 'beep')(filename_column)) }}
{% endmacro %}
{% macro duckdb__day_file_folder(filename_column) %}
  regexp_extract(replace({{ filename_column }}, '\', '/'), '([^/]+)/[^/]+$', 1)
{% endmacro %}

{# The day of a day file: general/2023-01-02.json -> 2023-01-02 (null when not a date) #}
{% macro day_file_date(filename_column) %}
  {{ return(adapter.dispatch('day_file_date', 'beep')(filename_column)) }}
{% endmacro %}
{% macro duckdb__day_file_date(filename_column) %}
  try_cast(regexp_extract({{ filename_column }}, '(\d{4}-\d{2}-\d{2})\.json$', 1) as date)
{% endmacro %}
