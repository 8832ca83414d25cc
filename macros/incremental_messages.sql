{#-
  Models kept up to date day file by day file (DuckDB): incremental models downstream of
  stg_slack__messages (the one model that parses the day files) that recompute, on a build after the
  first, only what the day files changed since their last build can reach. Two units of scope:

    - 'message' (int_slack__messages_cleaned, stg_slack__reaction_counts): a row depends only on the
      staging rows of its message key (channel_folder, ts) — the copies of one message among the day
      files — and on tables that do not change with the day files (users, channels). The scope is the
      changed files' rows and every row, in any file, with a key they hold (a copy of a message in an
      older file is recomputed with it); a row without ts is its own key.
    - 'channel' (int_conversation_links, int_conversations): a row depends on the messages of its
      channel folder (conversations never cross channels: threads, the reply split's links within
      conversation_gap_minutes, the gap split's runs). The scope is every channel folder that holds a
      changed file (a thread reply arriving days later to an old parent, a message that joins or
      splits a conversation, an edit or deletion in a re-exported day are all in their channel), and
      there the rows from a cut before the earliest change on (duckdb__channel_cuts below): a message
      no reply link, evidence window or conversation crosses, so the rows before it do not change. A
      daily build recomputes the day and the conversations still going on, not the channels' history.
    - 'channel_id' (training_examples, whose rows name the channel by id): the same channels and
      cuts, by the id int_slack__messages_cleaned gives a folder (the listed channel's, else the
      folder's name). A new responder moves the labels of the responders sorted after them: the rows
      kept are relabelled in place (relabel_rows), the labels not being part of the fingerprint.

  The changed files are those whose (size, modification time) in the upstream model's listing differ
  from the listing this model last built from (<this>__day_files_built): new, re-exported and gone
  files. The upstream listing is stg_slack__messages__day_files_seen for a model over the staging
  rows, the upstream model's own <model>__day_files_built for a model over a model kept this way (so
  a model built alone, or after a failed build, still sees every change since its own last build).
  The pre-hook (prepare_day_file_scope) deletes the scope's rows from the table and the model's SQL
  reads only the scope's rows of its upstream models (scoped_rows): the incremental strategy appends.

  Everything is recomputed (every row deleted, every upstream row read) when the table's comment
  (last line: its fingerprint) does not match what it would be now: the model's SQL (vars included,
  as compiled, without the scope filter), its other parents' fingerprints (users, channels; a plain
  table such as user_labels: its content), the upstream model's code fingerprint, the dbt and DuckDB
  versions. The fingerprint it records for the models downstream (macros/reusable_table.sql) adds
  the day files it holds. A change of a macro the model calls is not seen: --full-refresh
  (beep build --rebuild). On other adapters (Spark) these models are plain tables, rebuilt whole
  (materialized reusable_table there), and scoped_rows is the upstream table itself.

  dbt's data tests over these tables check, in a `beep build` whose last build passed on the same
  project, vars and dbt, only the rows the builds since then computed (macros/untested_rows.sql): the
  pre-hook adds the scope it recomputes (or 'whole') to <this>__untested, which Beep empties only
  after a build whose every test passed. A failing row a build keeps is therefore tested again by
  every later build until one passes; a test across rows (unique) checks the keys the scope holds
  against the whole table.

  The scope is a table beside the model, made by the pre-hook and dropped by the post-hook:
  <this>__scope_files (source_file) and <this>__scope_keys (channel_folder, ts) or
  <this>__scope_channels (channel_folder, from_at, n_before), and for 'channel_id'
  <this>__scope_channel_ids (channel_id, from_at). The channel units keep the last build's cuts in
  <this>__last_scope (channel_folder, from_at, scope_files_md5, n_rows_recomputed), which the model downstream inherits;
  the message unit its keys in <this>__last_scope_keys (channel_folder, ts, scope_files_md5), from
  which int_conversation_links finds the earliest change.
-#}

{#- A model's table, without ref() (a hook may read a table the model does not depend on). -#}
{%- macro model_relation(model_name) -%}
  {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | selectattr('name', 'equalto', model_name) | first -%}
  {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro -%}

{#- A table beside this model (or the named one): <model>__<kind>. -#}
{%- macro day_file_scope_relation(kind, model_name=none) -%}
  {%- set relation = this if model_name is none else model_relation(model_name) -%}
  {{ return(api.Relation.create(database=relation.database, schema=relation.schema, identifier=relation.identifier ~ '__' ~ kind)) }}
{%- endmacro -%}

{#- The listing of the day files an upstream model holds: the reader's record of what it read, or a
    day-file-scoped model's record of what it built from. -#}
{%- macro day_files_listing_relation(upstream) -%}
  {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | selectattr('name', 'equalto', upstream) | first -%}
  {%- set hooks = node.config.get('post-hook') or node.config.get('post_hook') or [] -%}
  {%- set reads_files = 'record_day_files_read' in (hooks | map(attribute='sql') | join(' ')) -%}
  {{ return(day_file_scope_relation('day_files_seen' if reads_files else 'day_files_built', upstream)) }}
{%- endmacro -%}

{#- The upstream rows to compute: on an incremental build those in scope, else all of them. The
    markers delimit what the fingerprint leaves out (day_file_scope_code_fingerprint): the full and
    the incremental SQL then have one fingerprint. -#}
{% macro scoped_rows(relation, unit) %}
  {{ return(adapter.dispatch('scoped_rows', 'beep')(relation, unit)) }}
{% endmacro %}

{% macro default__scoped_rows(relation, unit) %}{{ relation }}{% endmacro %}

{% macro duckdb__scoped_rows(relation, unit) %}
  {#- (a dbt unit test has no `this`: it gives the model its rows) -#}
  {%- if this is not none and is_incremental() -%}
    /*beep-scope*/(select scoped.* from /*beep-scope-end*/{{ relation }}/*beep-scope*/ as scoped
      where {{ day_file_scope_predicate('scoped', unit) }})/*beep-scope-end*/
  {%- else -%}
    {{ relation }}
  {%- endif -%}
{% endmacro %}

{#- The rows of `alias` in scope (`at_column`: the time a channel unit's cut applies to). -#}
{% macro day_file_scope_predicate(alias, unit, at_column='message_at') %}
  {%- if unit == 'message' -%}
    ({{ alias }}.source_file in (select source_file from {{ day_file_scope_relation('scope_files') }})
     or ({{ alias }}.channel_folder, {{ alias }}.ts) in (select channel_folder, ts from {{ day_file_scope_relation('scope_keys') }}))
  {%- elif unit == 'channel' -%}
    (exists (select 1 from {{ day_file_scope_relation('scope_channels') }} as cut
             where cut.channel_folder = {{ alias }}.channel_folder
               and (cut.from_at is null or {{ alias }}.{{ at_column }} >= cut.from_at)))
  {%- elif unit == 'channel_id' -%}
    (exists (select 1 from {{ day_file_scope_relation('scope_channel_ids') }} as cut
             where cut.channel_id = {{ alias }}.channel_id
               and (cut.from_at is null or {{ alias }}.{{ at_column }} >= cut.from_at)))
  {%- else -%}
    {{ exceptions.raise_compiler_error("day file scope unit must be 'message', 'channel' or 'channel_id', got " ~ unit) }}
  {%- endif -%}
{% endmacro %}

{#- Whether a table has a column (asked of DuckDB, not of dbt's relation cache: a table a hook made
    in this run is not in it). -#}
{% macro duckdb__has_column(relation, column) %}
  {{ return(run_query("select count(*) from duckdb_columns() where database_name = " ~ sql_string(relation.database)
      ~ " and schema_name = " ~ sql_string(relation.schema) ~ " and table_name = " ~ sql_string(relation.identifier)
      ~ " and column_name = " ~ sql_string(column)).columns[0].values()[0] > 0) }}
{% endmacro %}

{#- What the rows are made by, the day files aside (none: something has no fingerprint). -#}
{% macro duckdb__day_file_scope_code_fingerprint(upstream, hashed_inputs, relabel_from=none) %}
  {%- set code = [] -%}
  {%- for part in model.compiled_code.split('/*beep-scope*/') -%}
    {%- do code.append(part.split('/*beep-scope-end*/') | last) -%}
  {%- endfor -%}
  {%- set listing = day_files_listing_relation(upstream) -%}
  {#- a listing from an older Beep (no code_fingerprint): none, everything is computed again -#}
  {%- if not duckdb__has_column(listing, 'code_fingerprint') -%}{{ return(none) }}{%- endif -%}
  {%- set upstream_code = run_query("select min(code_fingerprint), max(code_fingerprint) from " ~ listing).rows[0] -%}
  {%- if upstream_code[0] in (none, '') or upstream_code[0] != upstream_code[1] -%}{{ return(none) }}{%- endif -%}
  {#- the upstream table holds what its listing says (not a table made or changed outside dbt) -#}
  {%- if duckdb__recorded_fingerprint(model_relation(upstream)) != duckdb__day_files_fingerprint(upstream_code[0], listing) -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set parts = [code | join(''), dbt_version, run_query("select version()").columns[0].values()[0], upstream_code[0]] -%}
  {%- for unique_id in model.depends_on.nodes | sort -%}
    {%- set parent = graph.nodes.get(unique_id) -%}
    {%- if parent is none -%}{{ return(none) }}{%- endif -%}
    {%- set relation = api.Relation.create(database=parent.database, schema=parent.schema, identifier=parent.alias) -%}
    {%- if parent.name == upstream -%}
      {#- (its code: above; its rows: the scope) -#}
    {%- elif parent.name == relabel_from -%}
      {#- the labels: not part of the fingerprint, the pre-hook relabels the rows kept (relabel_rows) -#}
    {%- elif parent.name in hashed_inputs -%}
      {#- a small plain table (user_labels): the content of the columns the model reads -#}
      {%- do parts.append(unique_id ~ ' ' ~ run_query("select count(*) || ' ' || coalesce(md5(string_agg(t::varchar, chr(10) "
            ~ "order by t::varchar)), '') from (select " ~ hashed_inputs[parent.name] ~ " from " ~ relation ~ ") as t").columns[0].values()[0]) -%}
    {%- elif duckdb__has_column(day_file_scope_relation('day_files_built', parent.name), 'code_fingerprint') -%}
      {#- another model kept day file by day file: its code (its rows are scoped like the upstream's) -#}
      {%- set other = run_query("select min(code_fingerprint), max(code_fingerprint) from "
            ~ day_file_scope_relation('day_files_built', parent.name)).rows[0] -%}
      {%- if other[0] in (none, '') or other[0] != other[1]
            or duckdb__recorded_fingerprint(relation) != duckdb__day_files_fingerprint(other[0], day_file_scope_relation('day_files_built', parent.name)) -%}
        {{ return(none) }}
      {%- endif -%}
      {%- do parts.append(unique_id ~ ' code ' ~ other[0]) -%}
    {%- else -%}
      {%- if parent.config.materialized not in ('reusable_table', 'incremental') -%}{{ return(none) }}{%- endif -%}
      {%- set recorded = duckdb__recorded_fingerprint(relation) -%}
      {%- if recorded is none -%}{{ return(none) }}{%- endif -%}
      {%- do parts.append(unique_id ~ ' ' ~ recorded) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(local_md5(parts | join('\n'))) }}
{% endmacro %}

{#- The table's fingerprint: its code's and the day files it holds (a listing table's rows). -#}
{% macro duckdb__day_file_scope_fingerprint(code_fingerprint, listing) %}
  {%- if code_fingerprint is none -%}{{ return(none) }}{%- endif -%}
  {{ return(duckdb__day_files_fingerprint(code_fingerprint, listing)) }}
{% endmacro %}

{#- Pre-hook: choose the scope, delete its rows. `upstream`: the model whose day file listing says
    what changed (its rows, for unit 'message', give the keys); `hashed_inputs`: parents that are
    plain tables, fingerprinted by the content of the listed columns ({'user_labels': 'user_id, label'}). -#}
{% macro prepare_day_file_scope(upstream, unit, hashed_inputs={}, cuts='inherit', at_column='message_at', relabel_from=none) %}
  {{ return(adapter.dispatch('prepare_day_file_scope', 'beep')(upstream, unit, hashed_inputs, cuts, at_column, relabel_from)) }}
{% endmacro %}
{% macro default__prepare_day_file_scope(upstream, unit, hashed_inputs, cuts, at_column, relabel_from) %}{% endmacro %}
{% macro duckdb__prepare_day_file_scope(upstream, unit, hashed_inputs, cuts, at_column, relabel_from) %}
  {%- if execute and is_incremental() -%}
  {%- set listing = day_files_listing_relation(upstream) -%}
  {%- set built = day_file_scope_relation('day_files_built') -%}
  {%- set files = day_file_scope_relation('scope_files') -%}
  {%- set fingerprint = none -%}
  {%- set has_built = duckdb__has_column(built, 'code_fingerprint') -%}
  {%- if has_built -%}
    {%- set fingerprint = duckdb__day_file_scope_fingerprint(duckdb__day_file_scope_code_fingerprint(upstream, hashed_inputs, relabel_from), built) -%}
  {%- endif -%}
  {%- set reusable = fingerprint is not none and fingerprint == duckdb__recorded_fingerprint(this) -%}
  {%- if not reusable -%}
  {{ log(this.identifier ~ ": its SQL, an input other than the day files, or the upstream code changed (or it was "
         ~ "never built day file by day file): everything is computed again", info=true) }}
  {%- endif -%}
  create or replace table {{ files }} as
    {%- if reusable %}
    select source_file
    from {{ listing }} as listing
    full join {{ built }} as built using (source_file)
    where listing.n_bytes is distinct from built.n_bytes or listing.modified_us is distinct from built.modified_us;
    {%- else %}
    select source_file from {{ listing }}
    {%- if has_built %}
    union
    select source_file from {{ built }}
    {%- endif %};
    {%- endif %}
  {%- if unit == 'message' %}
  create or replace table {{ day_file_scope_relation('scope_keys') }} as
    select channel_folder, ts from {{ ref(upstream) }}
    where ts is not null and source_file in (select source_file from {{ files }})
    union
    select channel_folder, ts from {{ this }}
    where ts is not null and source_file in (select source_file from {{ files }});
  {%- else %}
  {{ duckdb__channel_cuts(upstream, files, reusable, cuts) }}
  {%- endif %}
  {%- if unit == 'channel_id' %}
  {#- a folder's channel id as int_slack__messages_cleaned gives it: the listed channel's, else the folder -#}
  {%- set channels = model_relation('stg_slack__channels') %}
  {#- a cut is a folder's: an id whose messages come from two folders (the channel's name and its id)
      is recomputed whole -#}
  create or replace table {{ day_file_scope_relation('scope_channel_ids') }} as
    with folders as (
        select distinct {{ day_file_folder('source_file') }} as channel_folder from {{ listing }}
        union
        select channel_folder from {{ day_file_scope_relation('scope_channels') }}
    ),
    folders_per_id as (
        select coalesce(channels.channel_id, folders.channel_folder) as channel_id, count(*) as n_folders
        from folders
        left join {{ listed_channel_folders(channels) }} as channels
            on channels.folder = folders.channel_folder
        group by 1
    )
    select coalesce(channels.channel_id, scope.channel_folder) as channel_id,
           case when count(*) filter (where scope.from_at is null) = 0 and max(folders_per_id.n_folders) = 1
                then min(scope.from_at) end as from_at
    from {{ day_file_scope_relation('scope_channels') }} as scope
    left join {{ listed_channel_folders(channels) }} as channels
        on channels.folder = scope.channel_folder
    left join folders_per_id
        on folders_per_id.channel_id = coalesce(channels.channel_id, scope.channel_folder)
    group by 1;
  {%- endif %}
  {%- if reusable and relabel_from is not none %}
  {{ relabel_rows(relabel_from) }};
  {%- endif %}
  {{ duckdb__record_untested_scope(unit, at_column, whole=not reusable) }};
  {%- if reusable %}
  delete from {{ this }} as t where {{ day_file_scope_predicate('t', unit, at_column) }}
  {%- else %}
  delete from {{ this }}
  {%- endif -%}
  {%- elif execute -%}
  {#- a full build: no scope (one left by a failed build would read as this build's) -#}
  {{ duckdb__record_untested_scope(unit, at_column, whole=true) }};
  drop table if exists {{ day_file_scope_relation('scope_files') }};
  drop table if exists {{ day_file_scope_relation('scope_keys') }};
  drop table if exists {{ day_file_scope_relation('scope_channels') }};
  drop table if exists {{ day_file_scope_relation('scope_channel_ids') }}
  {%- endif -%}
{% endmacro %}

{#- The channel units' scope, <this>__scope_channels (channel_folder, from_at, n_before): per channel
    folder that holds a changed file, the time from which its rows are computed again (null: all of
    them; 'infinity': none, its usable messages did not change) and, for seq, how many of its messages
    come before that time.

    cuts='compute' (int_conversation_links, over int_slack__messages_cleaned): the latest message of
    the channel, at or before the earliest change, where the channel can be cut without changing a
    row on either side: the message before it is more than conversation_gap_minutes older (no reply
    link, evidence window or gap run reaches across: they all look back at most that far), and no
    conversation this table holds that began before it goes on at or after it (a thread). The
    earliest change is the earliest of the messages the upstream recomputed (<upstream>__last_scope_keys:
    every key the changed files hold or held, as they are now and as this table holds them), their
    thread parents, and the messages this table holds that are no usable message any more. Without
    such a message the whole channel; without the upstream's keys for the same files, whole channels.
    cuts='inherit' (int_conversations, training_examples): the cuts the upstream model recorded in
    its last build (<upstream>__last_scope), when that build's changed files are the ones this model
    has to catch up with (a model built alone or after a failed build recomputes whole channels). -#}
{% macro duckdb__channel_cuts(upstream, files, reusable, cuts) %}
  {%- set scope_channels = day_file_scope_relation('scope_channels') -%}
  {%- set up_last = day_file_scope_relation('last_scope', upstream) -%}
  create or replace table {{ scope_channels }} as
    with touched as (
        select distinct {{ day_file_folder('source_file') }} as channel_folder from {{ files }}
    )
  {%- set up_keys = day_file_scope_relation('last_scope_keys', upstream) -%}
  {%- if reusable and cuts == 'compute' and duckdb__has_column(this, 'conversation_key')
        and duckdb__has_column(up_keys, 'scope_files_md5') %},
    same_files as (
        -- the upstream's last build caught up with the files this model has to (else whole channels)
        select coalesce((select md5(string_agg(source_file, chr(10) order by source_file)) from {{ files }}), '')
               = (select any_value(scope_files_md5) from {{ up_keys }}) as same
    ),
    keys as (
        -- the messages the upstream recomputed: every key the changed files hold or held (a message
        -- whose kept copy moved to an unchanged file included)
        select channel_folder, ts from {{ up_keys }} where ts is not null
    ),
    changed as (
        -- those messages as they are now, and as this table holds them
        select channel_folder, message_at, thread_ts
        from {{ ref(upstream) }}
        where exclusion_reason is null
          and (source_file in (select source_file from {{ files }})
               or (channel_folder, ts) in (select channel_folder, ts from keys))
        union all
        select channel_folder, message_at, thread_ts
        from {{ this }}
        where (channel_folder, ts) in (select channel_folder, ts from keys)
        union all
        -- the messages this table holds in those channels that are no usable message any more
        select kept.channel_folder, kept.message_at, kept.thread_ts
        from {{ this }} as kept
        where kept.channel_folder in (select channel_folder from touched)
          and not exists (select 1 from {{ ref(upstream) }} as now
                          where now.channel_folder = kept.channel_folder and now.ts = kept.ts
                            and now.exclusion_reason is null)
    ),
    earliest as (
        -- the earliest time a change reaches: a changed message, or the parent of its thread
        select channel_folder,
               least(min(message_at), coalesce(min({{ slack_ts_to_timestamp('thread_ts') }}), min(message_at))) as changed_at
        from changed
        group by channel_folder
    ),
    spans as (
        select channel_folder, seq, message_at,
               max(message_at) over (partition by conversation_key) as conversation_last_at
        from {{ this }}
        where channel_folder in (select channel_folder from earliest)
    ),
    stored as (
        -- each message the table holds there: the one before it, the latest end of the conversations
        -- begun before it, how many come before it
        select channel_folder, message_at,
               lag(message_at) over by_seq as previous_at,
               max(conversation_last_at) over (partition by channel_folder order by seq
                                               rows between unbounded preceding and 1 preceding) as open_until,
               row_number() over by_seq - 1 as n_before
        from spans
        window by_seq as (partition by channel_folder order by seq)
    ),
    cuts as (
        select stored.channel_folder,
               max(stored.message_at) as from_at,
               arg_max(stored.n_before, stored.message_at) as n_before
        from stored
        inner join earliest
            on earliest.channel_folder = stored.channel_folder
        where stored.message_at <= earliest.changed_at
          and (stored.previous_at is null
               or stored.previous_at < {{ dbt.dateadd('minute', -(var('conversation_gap_minutes') | int), 'stored.message_at') }})
          and (stored.open_until is null or stored.open_until < stored.message_at)
        group by stored.channel_folder
    )
    select touched.channel_folder,
           case when not (select same from same_files) then null
                when earliest.channel_folder is null then cast('infinity' as timestamp)
                else cuts.from_at end as from_at,
           case when not (select same from same_files) or earliest.channel_folder is null then 0
                else coalesce(cuts.n_before, 0) end as n_before
    from touched
    left join earliest
        on earliest.channel_folder = touched.channel_folder
    left join cuts
        on cuts.channel_folder = touched.channel_folder;
  {%- elif reusable and cuts == 'inherit' and duckdb__has_column(up_last, 'scope_files_md5') %}
    select touched.channel_folder,
           case when (select coalesce(md5(string_agg(source_file, chr(10) order by source_file)), '') from {{ files }})
                     = (select any_value(scope_files_md5) from {{ up_last }})
                then inherited.from_at end as from_at,
           0 as n_before
    from touched
    left join {{ up_last }} as inherited
        on inherited.channel_folder = touched.channel_folder;
  {%- else %}
    select channel_folder, cast(null as timestamp) as from_at, 0 as n_before from touched;
  {%- endif %}
{% endmacro %}

{#- The rows kept whose responder's label moved (a new responder shifts the labels of every responder
    sorted after them: user_labels, LabelEncoder semantics) get the label and completion the model gives
    (macros/example_labels.sql): the same rows as computing them again, at the cost of an update. -#}
{% macro relabel_rows(labels_model) %}
  update {{ this }} as kept
  set label = relabelled.label, completion = {{ label_completion('relabelled.label') }}
  from (
      select responders.user_id, {{ responder_label('labels', 'other_label') }} as label
      from (select distinct responder_user_id as user_id from {{ this }}) as responders
      left join {{ ref(labels_model) }} as labels
          on labels.user_id = responders.user_id
      left join {{ ref(labels_model) }} as other_label
          on other_label.user_id = '__other__'
  ) as relabelled
  where kept.responder_user_id = relabelled.user_id
    and kept.label is distinct from relabelled.label
{% endmacro %}

{#- seq's offset on an incremental build (int_conversation_links): the channel's messages before its cut. -#}
{% macro scoped_seq_offset(folder) %}
  {{ return(adapter.dispatch('scoped_seq_offset', 'beep')(folder)) }}
{% endmacro %}
{% macro default__scoped_seq_offset(folder) %}{% endmacro %}
{% macro duckdb__scoped_seq_offset(folder) %}
  {%- if this is not none and is_incremental() -%}
    /*beep-scope*/ + coalesce((select cut.n_before from {{ day_file_scope_relation('scope_channels') }} as cut
                               where cut.channel_folder = {{ folder }}), 0)/*beep-scope-end*/
  {%- endif -%}
{% endmacro %}

{#- Post-hook: the day files the table now holds (with its code fingerprint, for the models
    downstream), its fingerprint in its comment, the scope dropped. -#}
{% macro record_day_file_scope(upstream, unit, hashed_inputs={}, relabel_from=none, at_column='message_at') %}
  {{ return(adapter.dispatch('record_day_file_scope', 'beep')(upstream, unit, hashed_inputs, relabel_from, at_column)) }}
{% endmacro %}
{% macro default__record_day_file_scope(upstream, unit, hashed_inputs, relabel_from, at_column) %}{% endmacro %}
{% macro duckdb__record_day_file_scope(upstream, unit, hashed_inputs, relabel_from, at_column) %}
  {%- if execute -%}
  {%- set listing = day_files_listing_relation(upstream) -%}
  {%- set built = day_file_scope_relation('day_files_built') -%}
  {%- set files = day_file_scope_relation('scope_files') -%}
  {%- set code_fingerprint = duckdb__day_file_scope_code_fingerprint(upstream, hashed_inputs, relabel_from) -%}
  {%- set fingerprint = duckdb__day_file_scope_fingerprint(code_fingerprint, listing) -%}
  {%- set scoped = duckdb__has_column(files, 'source_file') %}
  create or replace table {{ built }} as
    select source_file, n_bytes, modified_us,
           {% if scoped -%}
           source_file in (select source_file from {{ files }})
           {%- else %}true{% endif %} as recomputed_in_last_build,
           {{ sql_string(code_fingerprint or '') }} as code_fingerprint
    from {{ listing }};
  comment on table {{ built }} is {{ sql_string('The day files whose rows ' ~ this.identifier
    ~ ' holds, as of its last build (macros/incremental_messages.sql): the next build recomputes what the files changed since reach.') }};
  comment on column {{ built }}.source_file is 'The day file, relative to the export folder.';
  comment on column {{ built }}.n_bytes is 'Its size when the staging model read it.';
  comment on column {{ built }}.modified_us is 'Its modification time when the staging model read it (microseconds since the epoch).';
  comment on column {{ built }}.recomputed_in_last_build is 'The file was in the last build''s scope: new or changed since the build before, or everything was recomputed (a model scoped by channel recomputed the file''s whole channel).';
  comment on column {{ built }}.code_fingerprint is 'What made the rows besides the files (SQL and vars, other inputs, versions): the models downstream kept the same way recompute everything when it changes (empty: unknown).';
  {%- set last_keys = day_file_scope_relation('last_scope_keys') %}
  {%- if duckdb__has_column(day_file_scope_relation('scope_keys'), 'ts') %}
  create or replace table {{ last_keys }} as
    with files_md5 as (
        select coalesce((select md5(string_agg(source_file, chr(10) order by source_file)) from {{ files }}), '') as md5
    )
    select keys.channel_folder, keys.ts, files_md5.md5 as scope_files_md5
    from {{ day_file_scope_relation('scope_keys') }} as keys cross join files_md5
    union all
    select null, null, md5 from files_md5;
  comment on table {{ last_keys }} is {{ sql_string('The messages the last incremental build of ' ~ this.identifier
    ~ ' recomputed (macros/incremental_messages.sql): the channel models downstream recompute from before the earliest of them.') }};
  comment on column {{ last_keys }}.channel_folder is 'A message key''s channel folder (null on the one row that only carries the md5).';
  comment on column {{ last_keys }}.ts is 'A message key''s ts: a key a new, changed or gone day file holds or held.';
  comment on column {{ last_keys }}.scope_files_md5 is 'The md5 of the changed day files'' names, one a line, sorted: a model downstream reads these keys only when it catches up with the same files.';
  {%- else %}
  drop table if exists {{ last_keys }};
  {%- endif %}
  {%- set last_scope = day_file_scope_relation('last_scope') %}
  {%- if duckdb__has_column(day_file_scope_relation('scope_channels'), 'from_at') %}
  create or replace table {{ last_scope }} as
    select channel_folder, from_at,
           (select coalesce(md5(string_agg(source_file, chr(10) order by source_file)), '') from {{ files }}) as scope_files_md5,
           (select count(*) from {{ this }} as t where {{ day_file_scope_predicate('t', unit, at_column) }}) as n_rows_recomputed
    from {{ day_file_scope_relation('scope_channels') }};
  comment on table {{ last_scope }} is {{ sql_string('The channels the last incremental build of ' ~ this.identifier
    ~ ' recomputed, and from when (macros/incremental_messages.sql): the models downstream recompute the same rows.') }};
  comment on column {{ last_scope }}.channel_folder is 'A channel folder that held a new, changed or gone day file.';
  comment on column {{ last_scope }}.from_at is 'Its rows from this time on were computed again (null: all of them; infinity: none).';
  comment on column {{ last_scope }}.n_rows_recomputed is 'How many of the table''s rows that build computed (the same on every row of this table).';
  comment on column {{ last_scope }}.scope_files_md5 is 'The md5 of the changed day files'' names, one a line, sorted: a model downstream inherits these times only when it catches up with the same files.';
  {%- else %}
  drop table if exists {{ last_scope }};
  {%- endif %}
  drop table if exists {{ files }};
  drop table if exists {{ day_file_scope_relation('scope_keys') }};
  drop table if exists {{ day_file_scope_relation('scope_channels') }};
  drop table if exists {{ day_file_scope_relation('scope_channel_ids') }};
  comment on table {{ this }} is {{ sql_string(reusable_table_comment(fingerprint) if fingerprint is not none
                                               else (model.description | trim)) }}
  {%- endif -%}
{% endmacro %}
