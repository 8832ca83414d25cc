{#
  Every day file of the export with its size, so that files DuckDB reads as no rows (a zero-byte
  file, an empty array) are visible and counted rather than silently absent.
#}

with

source as (

    select * from {{ list_slack_day_files(source('slack_export', 'day_files')) }}

),

renamed as (

    select
        ---------- ids
        {{ export_relative_path('filename') }} as source_file,

        ---------- properties
        {{ day_file_folder('filename') }} as channel_folder,
        {{ day_file_date('filename') }} as file_day,
        size as n_bytes

    from source

)

select * from renamed
