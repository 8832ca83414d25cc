{#-
  The day files a passing build already counted (tests/assert_fate_counts_reconcile.sql).

  The reconciliation test compares message_fate_counts with a fresh count of every day file's
  message objects: on a 1,000,000-message export it reads all 800 MB of JSON again on every build,
  the one step of a daily build that still read the whole history. After a `beep build` in which it
  passed, Beep records the day files as they were then (stg_slack__messages__day_files_tested:
  path, size, modification time and the staging model's code fingerprint, copied from
  stg_slack__messages__day_files_seen, and each file's rows in stg_slack__messages, whose sum the
  test had just found equal to a fresh count; beep.build.record_tested_day_files). A day file still
  listed with the same size, modification time and code fingerprint holds the messages counted then.
  So the next build counts afresh only the other files, and takes the recorded count of these: not
  their staging rows, so a build that lost or duplicated the rows of a file it should have kept
  still fails the test.

  Beep asks for this with BEEP_DAY_FILES_TESTED (set only when the last build passed with the same
  project, vars and dbt, and no --full-refresh: beep.build.EvalRunsTested). Without it (a plain
  `dbt build`, an analyst's), on Spark, or when the record is missing, every file is counted. The env
  var is read only at execution: at parse time dbt would track it and parse the tests again whenever
  it changes.
-#}

{#- None: count every day file. Otherwise the day files to count afresh (paths in the export). -#}
{% macro untested_day_files() -%}
  {%- if not execute or target.type != 'duckdb' or not env_var('BEEP_DAY_FILES_TESTED', '') -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set tested = tested_day_files_relation() -%}
  {%- set seen = day_files_seen_relation() -%}
  {%- set present = run_query("select count(*) from duckdb_tables() where database_name = " ~ sql_string(tested.database)
        ~ " and schema_name = " ~ sql_string(tested.schema) ~ " and table_name in (" ~ sql_string(tested.identifier)
        ~ ", " ~ sql_string(seen.identifier) ~ ")").columns[0].values()[0] -%}
  {%- if present < 2 -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set fresh = run_query("select source_file from " ~ seen ~ " as seen where not exists (select 1 from "
        ~ kept_tested_day_files() ~ " as kept where kept.source_file = seen.source_file) order by 1") -%}
  {%- set files = fresh.columns[0].values() | list -%}
  {#- a long list is no cheaper than the glob (a first build after a change of code reads every file) -#}
  {{ return(none if files | length > 5000 else files) }}
{%- endmacro %}

{% macro tested_day_files_relation() -%}
  {%- set staging = ref('stg_slack__messages') -%}
  {{ return(api.Relation.create(database=staging.database, schema=staging.schema,
                                identifier=staging.identifier ~ '__day_files_tested')) }}
{%- endmacro %}

{% macro day_files_seen_relation() -%}
  {%- set staging = ref('stg_slack__messages') -%}
  {{ return(api.Relation.create(database=staging.database, schema=staging.schema,
                                identifier=staging.identifier ~ '__day_files_seen')) }}
{%- endmacro %}

{#- The day files listed now exactly as a passing build counted them, with the message objects it
    counted in each (a subquery: source_file, n_messages). -#}
{% macro kept_tested_day_files() -%}
  (select seen.source_file, tested.n_messages
   from {{ day_files_seen_relation() }} as seen
   inner join {{ tested_day_files_relation() }} as tested
       on tested.source_file = seen.source_file
       and tested.n_bytes = seen.n_bytes
       and tested.modified_us = seen.modified_us
       and tested.code_fingerprint = seen.code_fingerprint)
{%- endmacro %}

{#- The message objects of the listed day files (paths in the export), counted as
    count_slack_day_file_messages counts them. (Beep scopes the test on DuckDB only; the default
    reads each file as count_slack_day_file_messages' default reads them all.) -#}
{% macro count_slack_day_file_list_messages(files) %}
  {{ return(adapter.dispatch('count_slack_day_file_list_messages', 'beep')(files)) }}
{% endmacro %}
{% macro default__count_slack_day_file_list_messages(files) %}
  (
    select count(*) as n_messages from (
      {%- for file in files %}
      select ts from {{ read_slack_day_files({'ts': 'VARCHAR'}, file) }}{{ " union all" if not loop.last }}
      {%- endfor %}
    ) as listed
  )
{% endmacro %}
{% macro duckdb__count_slack_day_file_list_messages(files) %}
  (
    select {{ duckdb__day_file_text_message_count('content') }} as n_messages
    from read_text([
      {%- for file in files %}
      {{ sql_string(slack_export_glob() ~ '/' ~ (file | replace('[', '[[]') | replace('*', '[*]') | replace('?', '[?]'))) }}{{ "," if not loop.last }}
      {%- endfor %}
    ])
  )
{% endmacro %}
