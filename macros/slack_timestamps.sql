{#
  Slack `ts` strings ("1690360175.262899") are message ids: keep them as text, and derive an exact
  timestamp from the integer seconds and the microseconds (never through a float, which loses digits).
  Null when the text is not of that form.
#}
{% macro slack_ts_to_timestamp(ts_column) %}
  {{ return(adapter.dispatch('slack_ts_to_timestamp', 'beep')(ts_column)) }}
{% endmacro %}

{% macro duckdb__slack_ts_to_timestamp(ts_column) %}
  case when regexp_full_match({{ ts_column }}, '\d{1,12}(\.\d{1,6})?') then
    make_timestamp(
      cast(split_part({{ ts_column }}, '.', 1) as bigint) * 1000000
      + cast(rpad(coalesce(nullif(split_part({{ ts_column }}, '.', 2), ''), '0'), 6, '0') as bigint)
    )
  end
{% endmacro %}
