{#
  materialized='reusable_table': a table that is rebuilt only when something it is made of changed.

  On DuckDB the table carries, on the last line of its comment (after the model's description), a
  fingerprint of everything its rows depend on:
    - its compiled SQL (which spells out the export folder, the vars and every rule it applies),
    - for each file of the export it reads (a source of slack_export: a file or a glob): the name,
      size and modification time of every file that matches (listed, never opened),
    - for each model it reads: that table's own fingerprint (a reusable_table's, or the one an
      incremental model over the day files records: macros/slack_export_files.sql),
    - the DuckDB and dbt versions.
  When the table exists with the fingerprint its inputs have now, it is kept as it is. Reading a
  1,000,000-message export's JSON is the slowest step of a build, and a rebuild after a change of
  vars (context_messages, conversation_split, a cleaning rule, ...) reads the same files: the staging
  tables and every model upstream of the changed SQL are kept. A model that reads anything else
  (a view, an ephemeral model over the Python steps' tables, another source, a seed, a plain table)
  has no fingerprint and is always rebuilt, and so is everything downstream of it.

  `dbt build --full-refresh` (`beep build --rebuild`) always rebuilds. The check trusts that only
  dbt writes these tables: a table changed by hand keeps its comment (rebuild it with
  --full-refresh). Other adapters (Spark): a plain table.
#}

{% materialization reusable_table, adapter='duckdb' %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set fingerprint = duckdb__reusable_table_fingerprint(model, compiled_code) -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- if fingerprint is not none and existing_relation is not none and existing_relation.is_table
        and not should_full_refresh() and duckdb__recorded_fingerprint(existing_relation) == fingerprint -%}
    {{ log(this.identifier ~ ": its inputs and SQL are unchanged since it was built; kept as it is "
           ~ "(--full-refresh rebuilds it)", info=true) }}
    {%- call statement('main') -%} select count(*) from {{ existing_relation }} {%- endcall -%}
    {{ return({'relations': [existing_relation]}) }}
  {%- endif -%}
  {%- set result = dbt.materialization_table_duckdb() -%}
  {%- if fingerprint is not none -%}
    {%- call statement('record_fingerprint') -%}
      comment on table {{ target_relation }} is {{ sql_string(reusable_table_comment(fingerprint)) }}
    {%- endcall -%}
    {{ adapter.commit() }}
  {%- endif -%}
  {{ return(result) }}
{% endmaterialization %}

{% materialization reusable_table, adapter='spark' %}
  {{ return(dbt.materialization_table_spark()) }}
{% endmaterialization %}

{% materialization reusable_table, default %}
  {{ return(dbt.materialization_table_default()) }}
{% endmaterialization %}


{#- The table's comment: the model's description (persist_docs wrote it; the analyst reads it) and,
    on its last line, the fingerprint. Called while a model runs (its materialization or a post-hook). -#}
{% macro reusable_table_comment(fingerprint) %}
  {%- set description = (model.description | trim) if model is defined and model.description else '' -%}
  {{- return((description ~ '\n\n' if description else '')
             ~ 'beep fingerprint ' ~ fingerprint ~ ': rebuilt only when its inputs or SQL change (macros/reusable_table.sql)') -}}
{% endmacro %}

{#- The fingerprint of a model's inputs (see above), or none when one of them has none. -#}
{% macro duckdb__reusable_table_fingerprint(node, compiled_sql) %}
  {%- set parts = [compiled_sql, dbt_version, run_query("select version()").columns[0].values()[0]] -%}
  {%- for unique_id in node.depends_on.nodes | sort -%}
    {%- if unique_id.startswith('source.') -%}
      {#- the export's files; another source (the Python steps' tables) has no fingerprint -#}
      {%- if graph.sources[unique_id].source_name != 'slack_export' -%}{{ return(none) }}{%- endif -%}
      {%- set listing = run_query(
          "select count(*), coalesce(md5(string_agg(filename || chr(0) || size || chr(0) || epoch_us(last_modified), chr(10) "
          ~ "order by filename)), '') from read_blob("
          ~ sql_string(slack_export_glob() ~ '/' ~ graph.sources[unique_id].identifier) ~ ")").rows[0] -%}
      {%- do parts.append(unique_id ~ ' ' ~ listing[0] ~ ' ' ~ listing[1]) -%}
    {%- else -%}
      {%- set parent = graph.nodes.get(unique_id) -%}
      {#- an incremental model over the day files records one too (macros/slack_export_files.sql) -#}
      {%- if parent is none or parent.config.materialized not in ('reusable_table', 'incremental') -%}{{ return(none) }}{%- endif -%}
      {%- set recorded = duckdb__recorded_fingerprint(api.Relation.create(
          database=parent.database, schema=parent.schema, identifier=parent.alias)) -%}
      {%- if recorded is none -%}{{ return(none) }}{%- endif -%}
      {%- do parts.append(unique_id ~ ' ' ~ recorded) -%}
    {%- endif -%}
  {%- endfor -%}
  {{- return(local_md5(parts | join('\n'))) -}}
{% endmacro %}

{#- The fingerprint in a table's comment, or none (no such table, no comment, not Beep's). -#}
{% macro duckdb__recorded_fingerprint(relation) %}
  {%- set rows = run_query(
      "select comment from duckdb_tables() where database_name = " ~ sql_string(relation.database)
      ~ " and schema_name = " ~ sql_string(relation.schema) ~ " and table_name = " ~ sql_string(relation.identifier)).rows -%}
  {%- set comment = rows[0][0] if rows | length == 1 else none -%}
  {%- set last_line = (comment or '').split('\n') | last -%}
  {%- if not last_line.startswith('beep fingerprint ') -%}{{ return(none) }}{%- endif -%}
  {{- return(last_line.split(' ')[2].rstrip(':')) -}}
{% endmacro %}
