{#-
  Schemas by layer (docs/analysts.md). dbt_project.yml names each folder's schema (+schema: staging,
  intermediate, marts); the tables Beep's Python steps own (python_steps/beep/migrations.py) and the
  seeds stay in the target's schema, DuckDB's `main`. Beep's connections read unqualified names
  through `main,marts,intermediate,staging` (python_steps/beep/db.py: SEARCH_PATH).
-#}

{#- The schema a model lands in: its folder's name as it is (dbt's own default would prefix the
    target's, `main_staging`); nodes without one (seeds) in the target's schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {{- return(adapter.dispatch('generate_schema_name', 'beep')(custom_schema_name, node)) -}}
{%- endmacro %}

{% macro default__generate_schema_name(custom_schema_name, node) -%}
  {{- return(target.schema if custom_schema_name is none else custom_schema_name | trim) -}}
{%- endmacro %}

{#- Spark keeps every table in the target's schema (its Parquet under location_root/<model>/, one
    folder per name), as before the layers: the DuckDB views over that Parquet land in the layer
    schemas (python_steps/beep/spark_dataset.py: publish_to_duckdb, from the manifest's config.schema). -#}
{% macro spark__generate_schema_name(custom_schema_name, node) -%}
  {{- return(target.schema) -}}
{%- endmacro %}


{#-
  on-run-end (dbt_project.yml): a DuckDB file built by a Beep from before the layer schemas holds
  the models as tables and views in `main`. `main` comes first in the search path, so such an old
  copy would hide the model's new one: once the new one exists in its layer schema, the old one in
  `main` is dropped, and so are the tables the incremental and reusable machinery kept beside it
  (<model>__day_files_seen, <model>__day_files_built, ...: macros/incremental_messages.sql, now kept
  beside the model in its layer schema). Only names of this project's models are looked at (never a
  Python step's table or a seed), and only where the model exists in its layer schema (a selected
  build leaves the others as they are).
-#}
{#- The tables the incremental machinery keeps beside a model (<model>__<kind>: day_files_state_relation in
    macros/slack_export_files.sql, day_file_scope_relation in macros/incremental_messages.sql). Only these
    exact names are dropped with a model's old copy: an analyst's own `<model>__q3_snapshot` is never touched. -#}
{% macro bookkeeping_suffixes() -%}
  {%- for kind in ['day_files_seen', 'day_files_pending', 'day_files_built', 'scope_files', 'scope_keys',
                   'scope_channels', 'scope_channel_ids', 'last_scope', 'last_scope_keys', 'untested'] -%}, moved.name || '__{{ kind }}'{%- endfor -%}
{%- endmacro %}

{% macro drop_models_left_in_main() %}
  {{- return(adapter.dispatch('drop_models_left_in_main', 'beep')()) -}}
{% endmacro %}

{% macro default__drop_models_left_in_main() %}{{ return('') }}{% endmacro %}

{% macro duckdb__drop_models_left_in_main() %}
  {%- if not execute -%}{{ return('') }}{%- endif -%}
  {%- set moved = [] -%}
  {%- for node in graph.nodes.values() -%}
    {%- if node.resource_type == 'model' and node.config.materialized != 'ephemeral' and node.schema != target.schema -%}
      {%- do moved.append("(" ~ sql_string(node.alias) ~ ", " ~ sql_string(node.schema) ~ ")") -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if not moved -%}{{ return('') }}{%- endif -%}
  {%- set stale = run_query(
      "select old.table_name, old.table_type from (values " ~ moved | join(', ') ~ ") as moved(name, layer) "
      ~ "join information_schema.tables as new on new.table_catalog = current_database() "
      ~ "and new.table_schema = moved.layer and new.table_name = moved.name "
      ~ "join information_schema.tables as old on old.table_catalog = current_database() "
      ~ "and old.table_schema = " ~ sql_string(target.schema)
      ~ " and list_contains([moved.name" ~ bookkeeping_suffixes() ~ "], old.table_name) order by 1").rows -%}
  {%- set drops = [] -%}
  {%- set names = [] -%}
  {%- for row in stale -%}
    {%- do names.append(row[0]) -%}
    {%- do drops.append("drop " ~ ('view' if row[1] == 'VIEW' else 'table') ~ " if exists "
                        ~ adapter.quote(target.schema) ~ "." ~ adapter.quote(row[0])) -%}
  {%- endfor -%}
  {%- if drops -%}
    {{ log("Dropped " ~ drops | length ~ " models' copies left in " ~ target.schema ~ " by a Beep from before the "
           ~ "layer schemas (now in staging, intermediate, marts): " ~ names | join(', '), info=true) }}
  {%- endif -%}
  {{- return(drops | join(';\n')) -}}
{% endmacro %}
