{#-
  Models kept up to date message by message (DuckDB; int_slack__messages_cleaned,
  stg_slack__reaction_counts): incremental models over stg_slack__messages whose every row depends
  only on the staging rows of its own message key (channel_folder, ts) — the copies of one message
  among the day files — and on tables that do not change with the day files (users, channels).

  A build after the first recomputes only the message keys that a changed day file holds, before or
  after its change:
    - the changed files are those whose (size, modification time) in stg_slack__messages'
      record (<staging>__day_files_seen) differs from the record this model last built from
      (<this>__day_files_built): new, re-exported (an edited or deleted message, a thread parent
      whose reply fields changed days later) and gone files;
    - the scope is those files' rows and every row, in any file, with a key they hold (so a copy of a
      message in an older file is recomputed with it); a row without ts is its own key;
    - the pre-hook (prepare_message_scope) deletes the scope's rows from the table, and the model's
      SQL reads only the scope's staging rows (scoped_day_file_rows): the incremental strategy
      appends them.
  Everything is recomputed (every row deleted, every staging row read) when the table's comment
  (last line: its fingerprint) does not match what it would be now: the model's SQL (vars included,
  as compiled, without the scope filter), a parent's fingerprint other than the day-file model's
  (users.json, channels.json: those change every row), the staging model's code, the dbt and DuckDB
  versions. The fingerprint it records for the models downstream (macros/reusable_table.sql) adds
  the day files it holds. A change of a macro the model calls is not seen: --full-refresh
  (beep build --rebuild). On other adapters (Spark) these models are plain tables, rebuilt whole
  (materialized reusable_table there), and scoped_day_file_rows is the staging table itself.

  A scope is two tables beside the model, made by the pre-hook and dropped by the post-hook:
  <this>__scope_files (source_file) and <this>__scope_keys (channel_folder, ts).
-#}

{%- macro message_scope_relation(kind) -%}
  {{ return(api.Relation.create(database=this.database, schema=this.schema, identifier=this.identifier ~ '__' ~ kind)) }}
{%- endmacro -%}

{#- The staging rows to compute: on an incremental build those in scope, else all of them. The
    markers delimit what the fingerprint leaves out (message_scope_code_fingerprint): the full and
    the incremental SQL then have one fingerprint. -#}
{% macro scoped_day_file_rows(relation) %}
  {{ return(adapter.dispatch('scoped_day_file_rows', 'beep')(relation)) }}
{% endmacro %}

{% macro default__scoped_day_file_rows(relation) %}{{ relation }}{% endmacro %}

{% macro duckdb__scoped_day_file_rows(relation) %}
  {#- (a dbt unit test has no `this`: it gives the model its rows) -#}
  {%- if this is not none and is_incremental() -%}
    /*beep-scope*/(select scoped.* from /*beep-scope-end*/{{ relation }}/*beep-scope*/ as scoped
      where scoped.source_file in (select source_file from {{ message_scope_relation('scope_files') }})
         or (scoped.channel_folder, scoped.ts) in (select channel_folder, ts from {{ message_scope_relation('scope_keys') }}))/*beep-scope-end*/
  {%- else -%}
    {{ relation }}
  {%- endif -%}
{% endmacro %}

{#- What the rows are made by, the day files aside (none: something has no fingerprint). -#}
{% macro duckdb__message_scope_code_fingerprint(day_file_model) %}
  {%- set code = [] -%}
  {%- for part in model.compiled_code.split('/*beep-scope*/') -%}
    {%- do code.append(part.split('/*beep-scope-end*/') | last) -%}
  {%- endfor -%}
  {%- set seen = day_files_seen_relation(day_file_model) -%}
  {#- a record from an older Beep (no code_fingerprint): none, everything is computed again -#}
  {#- (read from DuckDB itself: made by a hook in this run, dbt's relation cache does not know it) -#}
  {%- if not duckdb__has_column(seen, 'code_fingerprint') -%}{{ return(none) }}{%- endif -%}
  {%- set staging_code = run_query("select min(code_fingerprint), max(code_fingerprint) from " ~ seen).rows[0] -%}
  {%- if staging_code[0] is none or staging_code[0] != staging_code[1] -%}{{ return(none) }}{%- endif -%}
  {%- set parts = [code | join(''), dbt_version, run_query("select version()").columns[0].values()[0], staging_code[0]] -%}
  {%- for unique_id in model.depends_on.nodes | sort -%}
    {%- set parent = graph.nodes.get(unique_id) -%}
    {%- if parent is none or parent.name != day_file_model -%}
      {%- if parent is none or parent.config.materialized not in ('reusable_table', 'incremental') -%}{{ return(none) }}{%- endif -%}
      {%- set recorded = duckdb__recorded_fingerprint(api.Relation.create(
          database=parent.database, schema=parent.schema, identifier=parent.alias)) -%}
      {%- if recorded is none -%}{{ return(none) }}{%- endif -%}
      {%- do parts.append(unique_id ~ ' ' ~ recorded) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(local_md5(parts | join('\n'))) }}
{% endmacro %}

{#- Whether a table has a column (asked of DuckDB, not of dbt's relation cache). -#}
{% macro duckdb__has_column(relation, column) %}
  {{ return(run_query("select count(*) from duckdb_columns() where database_name = " ~ sql_string(relation.database)
      ~ " and schema_name = " ~ sql_string(relation.schema) ~ " and table_name = " ~ sql_string(relation.identifier)
      ~ " and column_name = " ~ sql_string(column)).columns[0].values()[0] > 0) }}
{% endmacro %}

{%- macro day_files_seen_relation(day_file_model) -%}
  {%- set node = graph.nodes.values() | selectattr('name', 'equalto', day_file_model) | first -%}
  {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias ~ '__day_files_seen')) }}
{%- endmacro -%}

{#- The table's fingerprint: its code's and the day files it holds (a listing table's rows). -#}
{% macro duckdb__message_scope_fingerprint(code_fingerprint, listing) %}
  {%- if code_fingerprint is none -%}{{ return(none) }}{%- endif -%}
  {{ return(duckdb__day_files_fingerprint(code_fingerprint, listing)) }}
{% endmacro %}

{#- Pre-hook: choose the scope, delete its rows. -#}
{% macro prepare_message_scope(day_file_model='stg_slack__messages') %}
  {{ return(adapter.dispatch('prepare_message_scope', 'beep')(day_file_model)) }}
{% endmacro %}
{% macro default__prepare_message_scope(day_file_model) %}{% endmacro %}
{% macro duckdb__prepare_message_scope(day_file_model) %}
  {%- if execute and is_incremental() -%}
  {%- set staging = ref(day_file_model) -%}
  {%- set seen = day_files_seen_relation(day_file_model) -%}
  {%- set built = message_scope_relation('day_files_built') -%}
  {%- set fingerprint = none -%}
  {%- if duckdb__has_column(built, 'source_file') -%}
    {%- set fingerprint = duckdb__message_scope_fingerprint(duckdb__message_scope_code_fingerprint(day_file_model), built) -%}
  {%- endif -%}
  {%- if fingerprint is not none and fingerprint == duckdb__recorded_fingerprint(this) -%}
  create or replace table {{ message_scope_relation('scope_files') }} as
    select source_file
    from {{ seen }} as seen
    full join {{ built }} as built using (source_file)
    where seen.n_bytes is distinct from built.n_bytes or seen.modified_us is distinct from built.modified_us;
  create or replace table {{ message_scope_relation('scope_keys') }} as
    select channel_folder, ts from {{ staging }}
    where ts is not null and source_file in (select source_file from {{ message_scope_relation('scope_files') }})
    union
    select channel_folder, ts from {{ this }}
    where ts is not null and source_file in (select source_file from {{ message_scope_relation('scope_files') }});
  delete from {{ this }}
  where source_file in (select source_file from {{ message_scope_relation('scope_files') }})
     or (channel_folder, ts) in (select channel_folder, ts from {{ message_scope_relation('scope_keys') }})
  {%- else -%}
  {{ log(this.identifier ~ ": its SQL, users, channels or the staging code changed (or it was never built "
         ~ "incrementally): every message is computed again", info=true) }}
  create or replace table {{ message_scope_relation('scope_files') }} as
    select distinct source_file from {{ staging }};
  create or replace table {{ message_scope_relation('scope_keys') }} as
    select channel_folder, ts from {{ staging }} where false;
  delete from {{ this }}
  {%- endif -%}
  {%- elif execute -%}
  {#- a full build: no scope (one left by a failed build would read as this build's) -#}
  drop table if exists {{ message_scope_relation('scope_files') }};
  drop table if exists {{ message_scope_relation('scope_keys') }}
  {%- endif -%}
{% endmacro %}

{#- Post-hook: the day files the table now holds, its fingerprint in its comment, the scope dropped. -#}
{% macro record_message_scope(day_file_model='stg_slack__messages') %}
  {{ return(adapter.dispatch('record_message_scope', 'beep')(day_file_model)) }}
{% endmacro %}
{% macro default__record_message_scope(day_file_model) %}{% endmacro %}
{% macro duckdb__record_message_scope(day_file_model) %}
  {%- if execute -%}
  {%- set seen = day_files_seen_relation(day_file_model) -%}
  {%- set built = message_scope_relation('day_files_built') -%}
  {%- set fingerprint = duckdb__message_scope_fingerprint(duckdb__message_scope_code_fingerprint(day_file_model), seen) -%}
  {%- set scoped = duckdb__has_column(message_scope_relation('scope_files'), 'source_file') %}
  create or replace table {{ built }} as
    select source_file, n_bytes, modified_us,
           {% if scoped -%}
           source_file in (select source_file from {{ message_scope_relation('scope_files') }})
           {%- else %}true{% endif %} as recomputed_in_last_build
    from {{ seen }};
  comment on table {{ built }} is {{ sql_string('The day files whose messages ' ~ this.identifier
    ~ ' holds, as of its last build (macros/incremental_messages.sql): the next build recomputes the messages of the files changed since.') }};
  comment on column {{ built }}.source_file is 'The day file, relative to the export folder.';
  comment on column {{ built }}.n_bytes is 'Its size when the staging model read it.';
  comment on column {{ built }}.modified_us is 'Its modification time when the staging model read it (microseconds since the epoch).';
  comment on column {{ built }}.recomputed_in_last_build is 'The last build recomputed its messages (the file was new or changed, or everything was recomputed).';
  drop table if exists {{ message_scope_relation('scope_files') }};
  drop table if exists {{ message_scope_relation('scope_keys') }};
  comment on table {{ this }} is {{ sql_string(reusable_table_comment(fingerprint) if fingerprint is not none
                                               else (model.description | trim)) }}
  {%- endif -%}
{% endmacro %}
