{#-
  Every raw message object is counted exactly once by message_fate_counts: compare with a fresh
  read of the day files, independent of the models (macros/slack_export_files.sql,
  count_slack_day_file_messages: each file's array elements, not read_json's rows).

  In a daily `beep build` the fresh read covers only the day files a passing build has not counted
  yet (macros/tested_day_files.sql): a file whose size, modification time and staging code
  fingerprint are those it had when a run of this test passed stands with the messages counted from
  it then. Without it (a plain `dbt build`, --full-refresh, the first build, Spark) every day file is
  read.
-#}
{%- set scoped = untested_day_files() %}
with

raw_count as (

{%- if scoped is none %}

    select day_files.n_messages as n from {{ count_slack_day_file_messages() }} as day_files

{%- else %}
{%- set fresh_files, recorded_messages = scoped %}

    -- null (a failing row) when a listed file could not be read
    {%- if fresh_files %}
    select (select case when count(*) = {{ fresh_files | length }} then sum(n_messages) end
            from {{ read_day_file_list_counts(fresh_files) }})
    {%- else %}
    select 0
    {%- endif %}
        + {{ recorded_messages }} as n

{%- endif %}

),

fate_count as (

    select coalesce(sum(n_messages), 0) as n from {{ ref('message_fate_counts') }}

)

select raw_count.n as raw_messages, fate_count.n as counted_messages
from raw_count cross join fate_count
where raw_count.n is distinct from fate_count.n
