-- Every raw message object is counted exactly once by message_fate_counts: compare with a fresh
-- read of the day files, independent of the models.
with

raw_count as (

    select day_files.n_messages as n from {{ count_slack_day_file_messages() }} as day_files

),

fate_count as (

    select coalesce(sum(n_messages), 0) as n from {{ ref('message_fate_counts') }}

)

select raw_count.n as raw_messages, fate_count.n as counted_messages
from raw_count cross join fate_count
where raw_count.n <> fate_count.n
