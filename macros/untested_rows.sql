{#-
  Data tests over the tables kept day file by day file (macros/incremental_messages.sql) check only
  the rows no passing build has tested, when Beep says so (BEEP_UNTESTED_ROWS=1: the last build
  passed on the same project, vars and dbt, beep.build.EvalRunsTested). The rows are those of the
  scopes in <model>__untested: every incremental build's pre-hook adds the scope it recomputes (its
  changed day files and message keys, or its channels from a cut on), a build that recomputes
  everything adds 'whole'; Beep empties the table after a `beep build` whose every data test passed
  (beep.build.clear_untested_scopes). So a row a failing build left is tested again by each build
  until one passes, and a kept row that passed is not read again while it stays the same.

  Which tests are scoped (get_where_subquery, macros/untested_eval_runs.sql):
    - row by row (not_null, accepted_values, expression_is_true): the rows in scope;
    - unique and unique_combination: every row whose key a row in scope has (a duplicate between a
      new row and a kept one is found), and the rows with a null in the key;
    - the singular tests over conversations and prompts: the conversations in scope (untested_conversations),
      training_examples' scope read over int_conversations too (a conversation left without examples);
    - not: relationships (a parent's change could orphan a kept child), tests of severity warn (they
      report their rows on every build), and tests that read a column the model rewrites in place
      outside its scope (meta `rewritten_in_place` in the model's config: training_examples' label
      and completion, which a new responder shifts).
  Without the env var (a plain `dbt build`, an analyst's, a `beep build --select`, --rebuild, a changed
  project, vars or dbt, the build after a --no-tests or Spark build), or without the <model>__untested
  table (a table an older Beep built), every row is tested.
-#}

{#- The table of a model's untested scopes. -#}
{% macro untested_scope_relation(relation) -%}
  {{ return(api.Relation.create(database=relation.database, schema=relation.schema, identifier=relation.identifier ~ '__untested')) }}
{%- endmacro %}

{#- Pre-hook part (duckdb__prepare_day_file_scope): add this build's scope, or 'whole', to <this>__untested. -#}
{% macro duckdb__record_untested_scope(unit, at_column, whole) -%}
  {%- set untested = untested_scope_relation(this) -%}
  {%- if whole %}
  create or replace table {{ untested }} as
    select true as whole, cast(null as varchar) as source_file, cast(null as varchar) as channel_folder,
           cast(null as varchar) as ts, cast(null as varchar) as channel_id, cast(null as timestamp) as from_at,
           {{ sql_string(at_column) }} as at_column, current_timestamp as recorded_at;
  {%- else %}
  create table if not exists {{ untested }} (
      whole boolean, source_file varchar, channel_folder varchar, ts varchar, channel_id varchar,
      from_at timestamp, at_column varchar, recorded_at timestamp);
  {%- if unit == 'message' %}
  insert into {{ untested }} (whole, source_file, at_column, recorded_at)
    select false, source_file, {{ sql_string(at_column) }}, current_timestamp from {{ day_file_scope_relation('scope_files') }};
  insert into {{ untested }} (whole, channel_folder, ts, at_column, recorded_at)
    select false, channel_folder, ts, {{ sql_string(at_column) }}, current_timestamp from {{ day_file_scope_relation('scope_keys') }};
  {%- elif unit == 'channel' %}
  insert into {{ untested }} (whole, channel_folder, from_at, at_column, recorded_at)
    select false, channel_folder, from_at, {{ sql_string(at_column) }}, current_timestamp from {{ day_file_scope_relation('scope_channels') }};
  {%- else %}
  insert into {{ untested }} (whole, channel_id, from_at, at_column, recorded_at)
    select false, channel_id, from_at, {{ sql_string(at_column) }}, current_timestamp from {{ day_file_scope_relation('scope_channel_ids') }};
  {%- endif %}
  {%- endif %}
  comment on table {{ untested }} is {{ sql_string('The rows of ' ~ this.identifier ~ ' no passing beep build has tested: the '
    ~ 'scopes its builds recomputed since (macros/untested_rows.sql). Emptied after a build whose every data test passed.') }};
  comment on column {{ untested }}.whole is 'A build recomputed every row: the next tested build tests them all.';
  comment on column {{ untested }}.source_file is 'A day file whose rows a build recomputed (models scoped by message).';
  comment on column {{ untested }}.channel_folder is 'With ts: a message key a build recomputed; without: a channel folder recomputed from from_at on.';
  comment on column {{ untested }}.ts is 'The message key''s Slack ts (models scoped by message).';
  comment on column {{ untested }}.channel_id is 'A channel id recomputed from from_at on (training_examples).';
  comment on column {{ untested }}.from_at is 'The cut: the channel''s rows from this time on were recomputed (null: all of them; infinity: none).';
  comment on column {{ untested }}.at_column is 'The column of the model the cut applies to (message_at, target_at).';
  comment on column {{ untested }}.recorded_at is 'When the build''s pre-hook recorded the scope.'
{%- endmacro %}

{#- A predicate true on the rows of `relation` to test ('true' when every row is to be tested), over
    its columns (unqualified, or named by its table). `rows_of` and `at_column`: the same scope as a
    predicate over another table that has the same key columns (int_conversations under
    training_examples' scope: channel_id, message_at for target_at). -#}
{% macro untested_rows(relation, rows_of=none, at_column=none) -%}
  {{ return(adapter.dispatch('untested_rows', 'beep')(relation, rows_of, at_column)) }}
{%- endmacro %}

{% macro default__untested_rows(relation, rows_of, at_column) -%}{{ return('true') }}{%- endmacro %}

{% macro duckdb__untested_rows(relation, rows_of, at_column) -%}
  {#- read at execution only: at parse time dbt would track the env var and parse again when it changes -#}
  {%- if not execute or env_var('BEEP_UNTESTED_ROWS', '') != '1' -%}{{ return('true') }}{%- endif -%}
  {%- set untested = untested_scope_relation(relation) -%}
  {#- dbt's relation cache, not a query: a table this run's pre-hook made (a first incremental build)
      is not in it, and every row is tested -#}
  {%- if adapter.get_relation(database=untested.database, schema=untested.schema, identifier=untested.identifier) is none -%}
    {{ return('true') }}
  {%- endif -%}
  {#- one query: whether a scope is 'whole', whether there are message keys, and the channel units'
      cuts (per channel folder or id, from the earliest cut on; all of it: null; none: infinity), as a
      predicate of literals while there are at most 100 of them -#}
  {%- set quote = "''''" -%}
  {%- set row = run_query("with cuts as (select coalesce(channel_folder, channel_id) as channel, "
      ~ "case when channel_folder is not null then 'channel_folder' else 'channel_id' end as key, "
      ~ (sql_string(at_column) if at_column else "any_value(at_column)") ~ " as at_column, "
      ~ "case when bool_or(from_at is null) then null else cast(min(from_at) as varchar) end as from_at "
      ~ "from " ~ untested ~ " where ts is null and coalesce(channel_folder, channel_id) is not null "
      ~ "and (from_at is null or from_at < cast('infinity' as timestamp)) group by 1, 2), "
      ~ "literals as (select key, channel, at_column, from_at, " ~ quote ~ " || replace(channel, " ~ quote ~ ", " ~ quote ~ " || " ~ quote ~ ") || " ~ quote ~ " as channel_sql from cuts) "
      ~ "select (select count(*) filter (where whole) from " ~ untested ~ ") as n_whole, "
      ~ "(select count(*) filter (where source_file is not null or ts is not null) from " ~ untested ~ ") as n_keys, "
      ~ "(select count(*) from literals) as n_cuts, "
      ~ "(select string_agg(case when from_at is null then key || ' = ' || channel_sql "
      ~ "else '(' || key || ' = ' || channel_sql || ' and ' || at_column || ' >= cast(' || " ~ quote ~ " || from_at || " ~ quote ~ " || ' as timestamp))' end, "
      ~ "' or ' order by key, channel) from literals) as cuts").rows[0] -%}
  {%- if row[0] > 0 -%}{{ return('true') }}{%- endif -%}
  {%- set parts = [] -%}
  {%- if row[1] > 0 -%}
    {%- do parts.append("source_file in (select u.source_file from " ~ untested ~ " as u where u.source_file is not null)"
        ~ " or (channel_folder, ts) in (select u.channel_folder, u.ts from " ~ untested ~ " as u where u.ts is not null)") -%}
  {%- endif -%}
  {%- if row[2] > 50 -%}
    {#- many channels: a join with the cuts (an OR of literals costs about 0.3 ms per channel on each
        row scanned, twice that on one thread: 0.09 s at 300 channels over 940,000 rows, 6 s at
        10,000; the join about 0.1 s at any count). The model's columns are named by its table (the
        relation tested, unaliased). -#}
    {%- set key_row = run_query("select any_value(case when channel_folder is not null then 'channel_folder' else 'channel_id' end), "
        ~ (sql_string(at_column) if at_column else "any_value(at_column)") ~ " from " ~ untested
        ~ " where ts is null and coalesce(channel_folder, channel_id) is not null").rows[0] -%}
    {%- set tested = adapter.quote((rows_of or relation).identifier) -%}
    {%- do parts.append("exists (select 1 from " ~ untested ~ " as cut where cut.ts is null and cut." ~ key_row[0] ~ " = "
        ~ tested ~ "." ~ key_row[0] ~ " and (cut.from_at is null or " ~ tested ~ "." ~ key_row[1] ~ " >= cut.from_at))") -%}
  {%- elif row[3] -%}
    {%- do parts.append(row[3]) -%}
  {%- endif -%}
  {{ return("(" ~ (parts | join(" or ")) ~ ")" if parts else "false") }}
{%- endmacro %}

{#- The test node's rows of `relation` to check (get_where_subquery): none when every row is to be
    tested or the test is not one scoped (above). -#}
{% macro untested_test_filter(relation) -%}
  {%- if not execute or env_var('BEEP_UNTESTED_ROWS', '') != '1' or target.type != 'duckdb' -%}{{ return(none) }}{%- endif -%}
  {%- set meta = model.get('test_metadata') or {} -%}
  {%- set name = meta.get('name') -%}
  {%- if name not in ('not_null', 'accepted_values', 'expression_is_true', 'unique', 'unique_combination') -%}{{ return(none) }}{%- endif -%}
  {%- if (config.get('severity') or 'error') | lower == 'warn' -%}{{ return(none) }}{%- endif -%}
  {%- set parent = graph.nodes.get(model.get('attached_node') or '') -%}
  {%- if parent is none or parent.resource_type != 'model' or parent.alias != relation.identifier -%}{{ return(none) }}{%- endif -%}
  {%- set hooks = parent.config.get('pre-hook') or parent.config.get('pre_hook') or [] -%}
  {%- if 'prepare_day_file_scope' not in (hooks | map(attribute='sql') | join(' ')) -%}{{ return(none) }}{%- endif -%}
  {%- set kwargs = meta.get('kwargs') or {} -%}
  {%- set read = ([kwargs.get('column_name') or ''] + (kwargs.get('columns') or []) + [kwargs.get('expression') or '']) | join(' ') | lower -%}
  {%- for column in (parent.config.get('meta') or {}).get('rewritten_in_place', []) -%}
    {%- if column | lower in read -%}{{ return(none) }}{%- endif -%}
  {%- endfor -%}
  {%- set predicate = untested_rows(relation) -%}
  {%- if predicate == 'true' -%}{{ return(none) }}{%- endif -%}
  {%- if name == 'unique' or name == 'unique_combination' -%}
    {%- set keys = [kwargs.get('column_name')] if name == 'unique' else kwargs.get('columns') -%}
    {%- set key_list = keys | join(', ') -%}
    {{ return("(" ~ key_list ~ ") in (select " ~ key_list ~ " from " ~ relation ~ " where " ~ predicate ~ ")"
              ~ " or " ~ (keys | join(' is null or ')) ~ " is null") }}
  {%- endif -%}
  {{ return(predicate) }}
{%- endmacro %}

{#- The singular tests over conversations (prompts, reply links): a predicate on conversation_id,
    true on the conversations with a row in an untested scope of int_conversations or (with
    `examples`) of training_examples, 'true' when every row is to be tested. training_examples' scope
    is also read over int_conversations (channel_id, message_at for target_at): a conversation whose
    examples a build deleted and did not write again has no example left to name it. -#}
{% macro untested_conversations(examples=true) -%}
  {%- set conversations = ref('int_conversations') -%}
  {%- set predicate = untested_rows(conversations) -%}
  {%- if predicate == 'true' -%}{{ return('true') }}{%- endif -%}
  {%- set parts = ["select conversation_id from " ~ conversations ~ " where " ~ predicate] -%}
  {%- if examples -%}
    {%- set example_rows = ref('training_examples') -%}
    {%- set predicate = untested_rows(example_rows) -%}
    {%- if predicate == 'true' -%}{{ return('true') }}{%- endif -%}
    {%- do parts.append("select conversation_id from " ~ example_rows ~ " where " ~ predicate) -%}
    {%- do parts.append("select conversation_id from " ~ conversations ~ " where "
          ~ untested_rows(example_rows, rows_of=conversations, at_column='message_at')) -%}
  {%- endif -%}
  {{ return("conversation_id in (" ~ (parts | join(" union ")) ~ ")") }}
{%- endmacro %}
