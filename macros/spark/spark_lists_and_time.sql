{#-
  The Spark side of macros/list_helpers.sql, macros/conversation_links.sql, macros/portable.sql
  (epoch_to_timestamp, list_length), macros/slack_timestamps.sql and beep_type_double.

  DuckDB lists are Spark arrays: lambdas are `x -> ...`, indexes start at 1 in element_at,
  collect_list drops nulls (values travel in a struct where a null must stay) and
  flatten is null as soon as one inner array is null. Timestamps are TIMESTAMP_NTZ, the wall clock
  in UTC, as DuckDB's TIMESTAMP is (the profile sets spark.sql.session.timeZone UTC).
-#}

{% macro spark__list_distinct_ordered(list_expression) %}
  array_distinct({{ list_expression }})
{% endmacro %}

{% macro spark__flatten_list(list_of_lists_expression) %}
  flatten(filter({{ list_of_lists_expression }}, inner_list -> inner_list is not null))
{% endmacro %}

{% macro spark__list_agg_ordered(value, order_by) %}
  {{ spark_collect_ordered(value, order_by) }}
{% endmacro %}

{% macro spark__map_from_columns(key_column, value_column) %}
  map_from_entries(collect_list(struct({{ key_column }}, {{ value_column }})))
{% endmacro %}

{% macro spark__recent_values(value, partition_by, order_by, n) %}
  reverse(transform(
      collect_list(struct({{ value }} as v)) over (partition by {{ partition_by }} order by {{ order_by }}
          rows between {{ n }} preceding and 1 preceding),
      s -> s.v))
{% endmacro %}

{#- collect_list over an ordered frame keeps the frame's order (and skips nulls, as string_agg does) -#}
{% macro spark__string_agg_over(value, delimiter, window_name) %}
  array_join(collect_list({{ value }}) over {{ window_name }}, {{ delimiter }})
{% endmacro %}

{% macro spark__unnest_list(list_expression) %}
  explode({{ list_expression }})
{% endmacro %}

{% macro spark__list_without(list_expression, value) %}
  filter({{ list_expression }}, x -> x <> {{ value }})
{% endmacro %}

{% macro spark__count_rows_in_last_minutes(partition_by, time_column, minutes) %}
  (count(*) over (partition by {{ partition_by }} order by {{ time_column }}
      range between interval '{{ minutes * 60 }}' second preceding and current row) - 1)
{% endmacro %}

{# Number of elements of an array: 0 for null (size() would be -1 with ANSI mode off). #}
{% macro spark__list_length(list_column) %}coalesce(array_size({{ list_column }}), 0){% endmacro %}

{% macro spark__epoch_to_timestamp(seconds) %}cast(timestamp_seconds({{ seconds }}) as timestamp_ntz){% endmacro %}

{# Slack ts text -> exact timestamp from whole seconds and microseconds (never through a float). #}
{% macro spark__slack_ts_to_timestamp(ts_column) %}
  case when {{ ts_column }} rlike {{ spark_sql_string('^\\d{1,12}(\\.\\d{1,6})?\\z') }} then
    cast(timestamp_micros(
      cast(split_part({{ ts_column }}, '.', 1) as bigint) * 1000000
      + cast(rpad(coalesce(nullif(split_part({{ ts_column }}, '.', 2), ''), '0'), 6, '0') as bigint)
    ) as timestamp_ntz)
  end
{% endmacro %}

{# dbt.type_float() is a 32-bit FLOAT on Spark. #}
{% macro spark__beep_type_double() %}double{% endmacro %}

{#-
  root_by_pointer_jumping on Spark. The DuckDB spelling (a CTE per step, each joining the previous
  one to itself) is a DAG of CTE references that Spark's planner expands into a tree: 2^steps
  scans, out of memory on a three-row unit test. Here the same pointer jumping runs on one array:
  the links numbered 1..n in seq order (i), the array of every entry's parent number, then
  "every entry becomes its entry's entry" repeated by aggregate() over a sequence (one lambda,
  whatever the number of steps), then one row per entry again, numbers mapped back to seq.
  Steps: `steps`, or fewer when ceil(log2(n)) + 1 already reach every root (a root is its own
  parent, so further steps change nothing): the same roots as the DuckDB macro's `steps` joins.
  Emits the last CTE, `<prefix>_<steps>` (seq, root_seq), as the DuckDB macro does.
-#}
{% macro spark__root_by_pointer_jumping(links, prefix, steps) %}
    , {{ prefix }}_indexed as (
        select seq, parent_seq, row_number() over (order by seq) as i from {{ links }}
    )
    , {{ prefix }}_parents as (
        select
            transform(array_sort(collect_list(struct(child.i, coalesce(parent.i, child.i) as parent_i))), s -> s.parent_i)
                as parents
        from {{ prefix }}_indexed as child
        left join {{ prefix }}_indexed as parent on parent.seq = child.parent_seq
    )
    , {{ prefix }}_{{ steps }} as (
        select here.seq, there.seq as root_seq
        from (
            select posexplode(aggregate(
                sequence(1, least({{ steps }}, cast(ceil(log2(greatest(size(parents), 1))) as int) + 1)),
                parents,
                (jumped, step) -> transform(jumped, r -> element_at(jumped, r))
            )) as (pos, root_i)
            from {{ prefix }}_parents
        ) as jumped
        inner join {{ prefix }}_indexed as here on here.i = jumped.pos + 1
        inner join {{ prefix }}_indexed as there on there.i = jumped.root_i
    )
{% endmacro %}

{# One array of the elements of several array expressions, in order; a null array counts as empty (concat alone would be null). #}
{% macro spark__concat_lists(list_expressions) %}
  concat({% for e in list_expressions %}coalesce({{ e }}, array()){{ ', ' if not loop.last }}{% endfor %})
{% endmacro %}

{# Number of elements of a JSON array held as JSON text (0 when null). #}
{% macro spark__json_list_length(json_column) %}coalesce(json_array_length({{ json_column }}), 0){% endmacro %}
