{#-
  The day files a passing run of the fate reconciliation already counted (tests/assert_fate_counts_reconcile.sql).

  The reconciliation compares message_fate_counts with a fresh count of every day file's message
  objects: on a 1,000,000-message export it read all 800 MB of JSON again on every build, the one
  step of a daily build that still read the whole history. So, after a run in which it passed (on
  DuckDB; on-run-end in dbt_project.yml), the day files are recorded as counted
  (stg_slack__messages__day_files_tested): path, size, modification time, the staging model's code
  fingerprint, and the file's message objects, counted from the file itself (never taken from the
  models): carried over from the last record for a file unchanged since, counted again otherwise.

  Beep asks for the record to be used with BEEP_DAY_FILES_TESTED, which `beep build` sets only when
  the last build passed with the same project, vars and dbt, and no --full-refresh
  (beep.build.EvalRunsTested), to the most files worth reading one by one (beep.build.FRESH_FILES_LIMIT:
  past it the test reads the folder whole, one read being cheaper). Then the test lists the export folder itself (read_blob: no content
  read), counts afresh only the files not recorded exactly as they are now, and takes the recorded
  counts of the rest; a listed file it cannot read fails it. Without that variable (a plain `dbt
  build`, an analyst's), on Spark, or without a record, every day file is read. The env var is read
  only at execution: at parse time dbt would track it and parse the tests again whenever it changes.
  A file rewritten with the same size and modification time would be missed, as the incremental
  staging model misses it.
-#}

{#- A side table of stg_slack__messages (its schema; its name plus ``suffix``), found through the
    graph rather than ref(): a ref would make the test a child of stg_slack__messages, and `dbt build
    --select message_fate_counts` (indirect selection cautious) would no longer run it. -#}
{% macro stg_messages_side_table(suffix) -%}
  {%- set node = graph.nodes['model.beep.stg_slack__messages'] -%}
  {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias ~ suffix)) }}
{%- endmacro %}

{#- Whether a side table exists (asked of DuckDB: dbt's relation cache does not know the tables the
    staging model's hooks create). -#}
{% macro duckdb__side_table_exists(relation) -%}
  {{ return(run_query("select count(*) from duckdb_tables() where database_name = " ~ sql_string(relation.database)
        ~ " and schema_name = " ~ sql_string(relation.schema) ~ " and table_name = " ~ sql_string(relation.identifier)).columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- The day files in the export folder now: path in the export, size, modification time (microseconds). -#}
{% macro duckdb__listed_day_files_sql() -%}
  (select {{ export_relative_path('filename') }} as source_file, size as n_bytes, epoch_us(last_modified) as modified_us
   from read_blob({{ sql_string(slack_export_glob() ~ '/*/*.json') }}))
{%- endmacro %}

{#- The files of ``listed`` (a subquery: source_file, n_bytes, modified_us) that a passing run
    recorded exactly as they are, with the messages it counted in each, and the others with null
    (a subquery: source_file, n_messages). -#}
{% macro duckdb__day_files_against_record(listed) -%}
  (select listed.source_file, tested.n_messages
   from {{ listed }} as listed
   left join {{ stg_messages_side_table('__day_files_tested') }} as tested
       on tested.source_file = listed.source_file
       and tested.n_bytes = listed.n_bytes
       and tested.modified_us = listed.modified_us
       and tested.code_fingerprint = (select any_value(code_fingerprint) from {{ stg_messages_side_table('__day_files_seen') }}))
{%- endmacro %}

{#- None: count every day file. Otherwise (the day files to count afresh, paths in the export; the
    messages recorded in the others), from one listing of the export folder. -#}
{% macro untested_day_files() -%}
  {%- if not execute or target.type != 'duckdb' or not env_var('BEEP_DAY_FILES_TESTED', '') -%}
    {{ return(none) }}
  {%- endif -%}
  {%- for suffix in ('__day_files_tested', '__day_files_seen') -%}
    {%- if not duckdb__side_table_exists(stg_messages_side_table(suffix)) -%}{{ return(none) }}{%- endif -%}
  {%- endfor -%}
  {#- one row per file to read, then one row with the recorded messages of the others -#}
  {%- set found = run_query("with files as materialized (select * from " ~ duckdb__day_files_against_record(duckdb__listed_day_files_sql())
        ~ " as files) select * from (select 0 as part, source_file, null::bigint as n from files where n_messages is null "
        ~ "union all select 1, null, coalesce(sum(n_messages), 0) from files) order by part, source_file") -%}
  {%- set fresh = [] if found.rows | length < 2 else found.columns[1].values()[:-1] | list -%}
  {#- past the limit Beep passes, one read of the folder is cheaper than the files one by one -#}
  {{ return(none if fresh | length > env_var('BEEP_DAY_FILES_TESTED') | int else (fresh, found.rows[-1][2] | int)) }}
{%- endmacro %}

{#- The listed day files (paths in the export; none: every day file, in one read of the folder)
    read as text: one row per file read (a missing file gives none), with its message objects (the
    count of count_slack_day_file_messages). -#}
{% macro read_day_file_list_counts(files) %}
  {{ return(adapter.dispatch('read_day_file_list_counts', 'beep')(files)) }}
{% endmacro %}
{% macro default__read_day_file_list_counts(files) %}
  {{ exceptions.raise_compiler_error("The fate reconciliation counts a list of day files on DuckDB only "
                                     "(BEEP_DAY_FILES_TESTED is for DuckDB builds).") }}
{% endmacro %}
{% macro duckdb__read_day_file_list_counts(files) %}
  (
    select {{ export_relative_path('filename') }} as source_file,
           {{ duckdb__day_file_text_message_count('content') }} as n_messages
    {%- if files is none %}
    from read_text({{ sql_string(slack_export_glob() ~ '/*/*.json') }})
    {%- else %}
    from read_text([
      {%- for file in files %}
      {{ sql_string(slack_export_glob() ~ '/' ~ glob_literal(file)) }}{{ "," if not loop.last }}
      {%- endfor %}
    ])
    {%- endif %}
    group by filename
  )
{% endmacro %}

{#- on-run-end: after a run in which the fate reconciliation passed on DuckDB, record the day files
    as counted (above). -#}
{% macro record_tested_day_files(results) %}
  {%- if not execute or target.type != 'duckdb' -%}{{ return('') }}{%- endif -%}
  {%- set passed = [] -%}
  {%- for result in results if result.node.unique_id == 'test.beep.assert_fate_counts_reconcile' and result.status == 'pass' -%}
    {%- do passed.append(result) -%}
  {%- endfor -%}
  {%- set seen = stg_messages_side_table('__day_files_seen') -%}
  {%- if not passed or not duckdb__side_table_exists(seen) -%}
    {{ return('') }}
  {%- endif -%}
  {%- set tested = stg_messages_side_table('__day_files_tested') -%}
  {#- the files as the staging model listed them in this run (the test listed the folder itself) -#}
  {%- set listed = "(select source_file, n_bytes, modified_us from " ~ seen ~ ")" -%}
  {%- set against = duckdb__day_files_against_record(listed) if duckdb__side_table_exists(tested)
                    else "(select source_file, null::bigint as n_messages from " ~ listed ~ ")" -%}
  {%- set fresh = run_query("select source_file from " ~ against ~ " as files where n_messages is null order by 1").columns[0].values() | list -%}
  {#- many files (a first run): one read of the folder, as count_slack_day_file_messages reads it (the
      limit Beep passes; 500, beep.build.FRESH_FILES_LIMIT, in a plain `dbt build`) -#}
  {%- set counted = "(select null as source_file, 0::bigint as n_messages where false)" if not fresh
        else duckdb__read_day_file_list_counts(fresh if fresh | length <= (env_var('BEEP_DAY_FILES_TESTED', '') or 500) | int else none) -%}
  create or replace table {{ tested }} as
  with against as (select * from {{ against }}), counted as (select * from {{ counted }})
  select listed.source_file, listed.n_bytes, listed.modified_us,
         (select any_value(code_fingerprint) from {{ seen }}) as code_fingerprint,
         coalesce(against.n_messages, counted.n_messages) as n_messages
  from {{ listed }} as listed
  inner join against using (source_file)
  left join counted using (source_file)
  where against.n_messages is not null or counted.source_file is not null;
  comment on table {{ tested }} is 'The day files as the last run in which assert_fate_counts_reconcile passed counted them (macros/tested_day_files.sql): `beep build` then reads only the files new or changed since.';
  comment on column {{ tested }}.source_file is 'The day file, relative to the export folder.';
  comment on column {{ tested }}.n_bytes is 'Its size when that run counted it.';
  comment on column {{ tested }}.modified_us is 'Its modification time then (microseconds since the epoch).';
  comment on column {{ tested }}.code_fingerprint is 'The staging model''s code fingerprint then (stg_slack__messages__day_files_seen: its SQL, the export folder, dbt and DuckDB): files read by other code are counted again.';
  comment on column {{ tested }}.n_messages is 'Its message objects, counted from the file (JSON array elements), not from the models.'
{% endmacro %}
