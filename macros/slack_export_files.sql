{#
  Reading the raw Slack export. Everything DuckDB-specific about files lives here, behind
  adapter.dispatch, so another adapter can implement the same macros (e.g. reading from a stage).
#}

{#-
  The export folder: var slack_export when given, else the environment variable BEEP_SLACK_EXPORT
  (which beep build / beep run set: an environment variable, unlike a --vars value, leaves dbt's
  partial parsing in place when the export changes; only the models that read it are parsed again).
  Without either
  (a plain `dbt build`), the export this DuckDB file last ingested or built, as `beep ingest` and
  `beep build` recorded it (tables ingests and pipeline_steps); the bundled sample only on a fresh
  DB. When the last ingest was refused, or that export is gone, dbt stops and says what to pass:
  it never builds the sample in place of the user's export.
-#}
{% macro slack_export_path() %}
  {%- set given = var('slack_export') -%}
  {%- if given in [none, ''] -%}{%- set given = env_var('BEEP_SLACK_EXPORT', '') -%}{%- endif -%}
  {%- set path = (given if given not in [none, ''] else recorded_slack_export()) | string -%}
  {{ return(path.rstrip('/').rstrip('\\')) }}
{% endmacro %}

{% macro recorded_slack_export() %}
  {%- set sample = 'sample_data/acme-slack-export' -%}
  {%- if not execute -%}{{ return(sample) }}{%- endif -%}
  {{ return(adapter.dispatch('recorded_slack_export', 'beep')(sample)) }}
{% endmacro %}

{# Adapters without Beep's Python-owned tables have no record: the sample, unless slack_export is given. #}
{% macro default__recorded_slack_export(sample) %}{{ return(sample) }}{% endmacro %}

{% macro duckdb__recorded_slack_export(sample) %}
  {%- set tables = {} -%}
  {%- for name in ['ingests', 'pipeline_steps'] -%}
    {%- do tables.update({name: adapter.get_relation(database=target.database, schema='main', identifier=name) is not none}) -%}
  {%- endfor -%}
  {%- if not (tables['ingests'] and tables['pipeline_steps']) -%}{{ return(sample) }}{%- endif -%}
  {%- set result = run_query("""
      select kind, export_path, source_path, error
      from (
          select 'ingest' as kind, export_path, source_path, null as error, ingested_at as event_at from main.ingests
          union all
          select 'build', result ->> '$.export_path', result ->> '$.export_path', null, finished_at
          from main.pipeline_steps where step = 'build'
          union all
          select 'refused', null, result ->> '$.source_path', result ->> '$.error', finished_at
          from main.pipeline_steps where step = 'ingest_refused'
      ) order by event_at desc, (kind = 'build') desc limit 1""") -%}
  {%- if result.rows | length == 0 -%}{{ return(sample) }}{%- endif -%}
  {%- set kind, export_path, source_path, error = result.rows[0] -%}
  {%- if kind == 'refused' -%}
    {{ exceptions.raise_compiler_error(
        "The last `beep ingest` into this DuckDB file (" ~ source_path ~ ") was refused, and dbt will not build "
        ~ "the bundled sample in its place. Fix that export and ingest it again, or name the folder to build: "
        ~ "dbt build --vars '{slack_export: /path/to/unzipped/export}' (the sample: {slack_export: " ~ sample ~ "}).") }}
  {%- endif -%}
  {%- set glob = glob_literal(export_path) ~ '/*' -%}
  {%- if run_query("select count(*) from glob(" ~ sql_string(glob) ~ ")").columns[0].values()[0] == 0 -%}
    {{ exceptions.raise_compiler_error(
        "This DuckDB file was last built from the export " ~ export_path ~ ", which no longer exists, and dbt will "
        ~ "not build the bundled sample in its place. Run `beep ingest " ~ source_path ~ "` again, or name the "
        ~ "folder to build: dbt build --vars '{slack_export: /path/to/unzipped/export}'.") }}
  {%- endif -%}
  {{ return(export_path) }}
{% endmacro %}

{# A SQL string literal of `text` (quotes doubled: a folder may be called "Bob's export"). #}
{% macro sql_string(text) %}{{ return(adapter.dispatch('sql_string', 'beep')(text)) }}{% endmacro %}
{% macro default__sql_string(text) %}'{{ text | replace("'", "''") }}'{% endmacro %}

{# The export folder as a glob pattern that matches only itself ("[old]" would be a character class). #}
{% macro slack_export_glob() %}
  {{ return(glob_literal(slack_export_path())) }}
{% endmacro %}

{# A path as a glob pattern that matches only itself. #}
{% macro glob_literal(path) %}
  {{ return(path | replace('[', '[[]') | replace('*', '[*]') | replace('?', '[?]')) }}
{% endmacro %}


{#- A file of the export by its path inside the export folder ('users.json', '*/*.json'), or as a
    table of source slack_export (models/staging/_slack_export.yml), whose identifier is that path. -#}
{% macro slack_export_file(file) %}
  {{ return(file if file is string else file.identifier) }}
{% endmacro %}

{# Whether a file exists in the export (checked at run time; true while dbt only parses). #}
{% macro slack_export_file_exists(relative_path) %}
  {{ return(adapter.dispatch('slack_export_file_exists', 'beep')(slack_export_file(relative_path))) }}
{% endmacro %}

{% macro duckdb__slack_export_file_exists(relative_path) %}
  {%- if not execute -%}{{ return(true) }}{%- endif -%}
  {%- set result = run_query("select count(*) from glob(" ~ sql_string(slack_export_glob() ~ '/' ~ relative_path) ~ ")") -%}
  {{ return(result.columns[0].values()[0] > 0) }}
{% endmacro %}


{# Stop with a message that says what is wrong and what to do, before DuckDB says something vaguer. #}
{% macro require_slack_export_file(relative_path, hint) %}
  {%- set relative_path = slack_export_file(relative_path) -%}
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
  {{ return(adapter.dispatch('read_slack_json_array', 'beep')(slack_export_file(relative_path), columns)) }}
{% endmacro %}

{% macro duckdb__read_slack_json_array(relative_path, columns) %}
  {{ duckdb__read_json_arrays(sql_string(slack_export_glob() ~ '/' ~ relative_path), columns) }}
{% endmacro %}

{#- DuckDB's read_json over ``files`` (SQL: a quoted glob or a list of quoted paths) of JSON arrays of
    objects, with the given columns and each row's file name: the one way Beep reads export files. -#}
{% macro duckdb__read_json_arrays(files, columns) %}
  read_json(
    {{ files }},
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
{% macro read_slack_day_files(columns, day_files='*/*.json') %}
  {{ return(adapter.dispatch('read_slack_day_files', 'beep')(columns, slack_export_file(day_files))) }}
{% endmacro %}

{% macro duckdb__read_slack_day_files(columns, day_files) %}
  {{- require_slack_export_file(day_files,
        "An export holds one folder per channel with a YYYY-MM-DD.json file per day; this one has none. "
        ~ "Export the workspace again with its message history, or point slack_export at the right folder.") -}}
  {{ duckdb__read_slack_json_array(day_files, columns) }}
{% endmacro %}


{#- How many message objects the day files hold, read independently of the staging models (the fate
    reconciliation test compares it with message_fate_counts). The default reads the files as
    messages; DuckDB counts each file's array elements without building a row per message: on a
    1,000,000-message export 1.1-1.3 s of one core instead of 2.6-4.0 s of CPU. A zero-byte or
    blank file holds no messages, as read_json reads it; a byte order mark is skipped, as read_json
    does. Only the start is trimmed: trimming both ends of every file's text cost 5.7 CPU s (JSON
    allows the white space after the array). -#}
{% macro count_slack_day_file_messages(day_files='*/*.json') %}
  {{ return(adapter.dispatch('count_slack_day_file_messages', 'beep')(slack_export_file(day_files))) }}
{% endmacro %}

{% macro default__count_slack_day_file_messages(day_files) %}
  (select count(*) as n_messages from {{ read_slack_day_files({'ts': 'VARCHAR'}, day_files) }})
{% endmacro %}

{% macro duckdb__count_slack_day_file_messages(day_files) %}
  {{- require_slack_export_file(day_files, "An export holds one folder per channel with a YYYY-MM-DD.json file per day; this one has none.") -}}
  (
    select {{ duckdb__day_file_text_message_count('content') }} as n_messages
    from read_text({{ sql_string(slack_export_glob() ~ '/' ~ day_files) }})
  )
{% endmacro %}
{#- The message objects of day files read as text (column ``content``), summed. -#}
{% macro duckdb__day_file_text_message_count(content) -%}
    coalesce(sum(json_array_length(nullif(ltrim({{ content }}, chr(65279) || chr(32) || chr(9) || chr(10) || chr(13)), ''))), 0)
{%- endmacro %}


{# Every day file with its size in bytes (without reading its content). #}
{% macro list_slack_day_files(day_files='*/*.json') %}
  {{ return(adapter.dispatch('list_slack_day_files', 'beep')(slack_export_file(day_files))) }}
{% endmacro %}

{% macro duckdb__list_slack_day_files(day_files) %}
  (select filename, size from read_blob({{ sql_string(slack_export_glob() ~ '/' ~ day_files) }}))
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


{#-
  Incremental reading of the day files (DuckDB; stg_slack__messages, materialized 'incremental').

  A model that reads the day files through read_new_slack_day_files reads, on a build after its
  first, only the day files that are new or whose size or modification time changed since it read
  them; the rows of those files and of files that are gone are deleted first (prune_changed_day_files,
  its pre-hook), the new rows inserted (delete+insert on source_file). Each file is read whole, so a
  message edited or deleted in a re-exported day, or a thread parent whose reply fields changed days
  later, is re-read with its file: the staging rows need no lookback.

  Two tables beside the model hold what it read (never read by anything but these macros):
  <model>__day_files_seen (source_file, n_bytes, modified_us, read_in_last_build, code_fingerprint) as of its last
  build (`beep build` and `beep run` say how many files that build read), and
  <model>__day_files_pending, the listing taken when the model compiles, each file flagged
  `unchanged` when it is in _seen with the same size and modification time. The post-hook
  (record_day_files_read) makes the listing the new _seen and writes the model's fingerprint in its
  table comment (macros/reusable_table.sql reads it: the models over it are kept while it is).

  Everything is read again (and every row replaced) on the first build, with --full-refresh, and when
  the table's comment is not the fingerprint of its _seen files and code (the model's SQL, the export
  folder, the dbt and DuckDB versions changed, or the table was made or changed outside dbt). A
  change of a macro the model calls is not seen: rebuild with --full-refresh (beep build --rebuild).
  The listing is taken before the files are read, so a file that changes during a build is read
  again on the next one. Other adapters (Spark): every file, on every build.
-#}
{% macro read_new_slack_day_files(columns, day_files='*/*.json') %}
  {{ return(adapter.dispatch('read_new_slack_day_files', 'beep')(columns, slack_export_file(day_files))) }}
{% endmacro %}

{% macro default__read_new_slack_day_files(columns, day_files) %}
  {{ read_slack_day_files(columns, day_files) }}
{% endmacro %}

{% macro day_files_state_relation(kind) %}
  {{ return(api.Relation.create(database=this.database, schema=this.schema, identifier=this.identifier ~ '__day_files_' ~ kind)) }}
{% endmacro %}

{#- The part of the fingerprint that is not the files: what the rows are made by. -#}
{% macro duckdb__day_files_code_fingerprint(day_files) %}
  {{ return(local_md5([model.raw_code, slack_export_path(), day_files, dbt_version,
                       run_query("select version()").columns[0].values()[0]] | join('\n'))) }}
{% endmacro %}

{#- The fingerprint of a table holding the rows of the listed files (a listing table's rows). -#}
{% macro duckdb__day_files_fingerprint(code_fingerprint, listing) %}
  {%- set files = run_query("select count(*), coalesce(md5(string_agg(source_file || chr(0) || n_bytes || chr(0) || modified_us, "
                            ~ "chr(10) order by source_file)), '') from " ~ listing).rows[0] -%}
  {{ return(local_md5(code_fingerprint ~ ' ' ~ files[0] ~ ' ' ~ files[1])) }}
{% endmacro %}

{% macro duckdb__read_new_slack_day_files(columns, day_files) %}
  {%- if not execute -%}{{ return(duckdb__read_slack_day_files(columns, day_files)) }}{%- endif -%}
  {%- set pending = day_files_state_relation('pending') -%}
  {%- set seen = day_files_state_relation('seen') -%}
  {%- do run_query("create or replace table " ~ pending ~ " as select " ~ export_relative_path('filename')
        ~ " as source_file, size as n_bytes, epoch_us(last_modified) as modified_us, false as unchanged from read_blob("
        ~ sql_string(slack_export_glob() ~ '/' ~ day_files) ~ ")") -%}
  {%- set reusable = is_incremental() and adapter.get_relation(database=seen.database, schema=seen.schema, identifier=seen.identifier) is not none
        and duckdb__recorded_fingerprint(this) == duckdb__day_files_fingerprint(duckdb__day_files_code_fingerprint(day_files), seen) -%}
  {%- if not reusable -%}
    {{ return(duckdb__read_slack_day_files(columns, day_files)) }}
  {%- endif -%}
  {%- do run_query("update " ~ pending ~ " as p set unchanged = true from " ~ seen ~ " as s "
        ~ "where p.source_file = s.source_file and p.n_bytes = s.n_bytes and p.modified_us = s.modified_us") -%}
  {%- set changed = run_query("select source_file from " ~ pending ~ " where not unchanged order by source_file").columns[0].values() -%}
  {%- set n_gone = run_query("select count(*) from " ~ seen ~ " as s anti join " ~ pending ~ " as p using (source_file)").columns[0].values()[0] -%}
  {{ log(this.identifier ~ ": " ~ (changed | length) ~ " new or changed day file(s) to read, " ~ n_gone
         ~ " gone; the others' rows kept (--full-refresh reads them all)", info=true) }}
  {%- if changed | length == 0 -%}
    (select
      {%- for name, type in columns.items() %}
      cast(null as {{ type }}) as {{ adapter.quote(name) }},
      {%- endfor %}
      cast(null as varchar) as filename
     where false)
  {%- else -%}
    {%- set files -%}
      [{%- for file in changed -%}
        {{ sql_string(slack_export_glob() ~ '/' ~ glob_literal(file)) }}{{ ', ' if not loop.last }}
      {%- endfor -%}]
    {%- endset -%}
    {{ duckdb__read_json_arrays(files, columns) }}
  {%- endif -%}
{% endmacro %}

{#- Pre-hook: the rows of every file not unchanged since it was read (changed, gone) are deleted. -#}
{% macro prune_changed_day_files() %}
  {{ return(adapter.dispatch('prune_changed_day_files', 'beep')()) }}
{% endmacro %}
{% macro default__prune_changed_day_files() %}{% endmacro %}
{% macro duckdb__prune_changed_day_files() %}
  {%- if execute and is_incremental() -%}
  delete from {{ this }} as t
  where not exists (select 1 from {{ day_files_state_relation('pending') }} as p where p.unchanged and p.source_file = t.source_file)
  {%- endif -%}
{% endmacro %}

{#- Post-hook: the listing read becomes what was seen, and the table's comment its fingerprint. -#}
{% macro record_day_files_read(day_files='*/*.json') %}
  {{ return(adapter.dispatch('record_day_files_read', 'beep')(slack_export_file(day_files))) }}
{% endmacro %}
{% macro default__record_day_files_read(day_files) %}{% endmacro %}
{% macro duckdb__record_day_files_read(day_files) %}
  {%- if execute -%}
  {%- set pending = day_files_state_relation('pending') -%}
  {%- set code_fingerprint = duckdb__day_files_code_fingerprint(day_files) -%}
  {%- set fingerprint = duckdb__day_files_fingerprint(code_fingerprint, pending) -%}
  create or replace table {{ day_files_state_relation('seen') }} as
    select source_file, n_bytes, modified_us, not unchanged as read_in_last_build,
           {{ sql_string(code_fingerprint) }} as code_fingerprint
    from {{ pending }};
  drop table {{ pending }};
  {#- described like every table an analyst can see (tests/python/test_every_column_described.py) #}
  comment on table {{ day_files_state_relation('seen') }} is {{ sql_string('The day files ' ~ this.identifier
    ~ ' read at its last build (macros/slack_export_files.sql): the next build reads only the files new or changed since.') }};
  comment on column {{ day_files_state_relation('seen') }}.source_file is 'The day file, relative to the export folder.';
  comment on column {{ day_files_state_relation('seen') }}.n_bytes is 'Its size when it was read.';
  comment on column {{ day_files_state_relation('seen') }}.modified_us is 'Its modification time when it was read (microseconds since the epoch).';
  comment on column {{ day_files_state_relation('seen') }}.read_in_last_build is 'The last build read it (new or changed since the build before).';
  comment on column {{ day_files_state_relation('seen') }}.code_fingerprint is 'What made the rows besides the files (the model''s SQL, the export folder, the dbt and DuckDB versions): the models computed message by message from it recompute everything when it changes (macros/incremental_messages.sql).';
  comment on table {{ this }} is {{ sql_string(reusable_table_comment(fingerprint)) }}
  {%- endif -%}
{% endmacro %}
