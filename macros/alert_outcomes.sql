{#-
  The per-outcome counts and the precision of a group of alerts (alert_outcomes rows), shared by the
  alert_precision_by_* marts so that every grain counts alike. Portable SQL (DuckDB and Spark).
-#}
{% macro alert_outcome_counts(alias) -%}
        count(*) as n_alerts,
        sum(case when {{ alias }}.outcome = 'useful' then 1 else 0 end) as n_useful,
        sum(case when {{ alias }}.outcome = 'not_for_me' then 1 else 0 end) as n_not_for_me,
        sum(case when {{ alias }}.outcome = 'answered_within_hour' then 1 else 0 end) as n_answered_within_hour,
        sum(case when {{ alias }}.outcome = 'ignored' then 1 else 0 end) as n_ignored,
        sum(case when {{ alias }}.outcome = 'pending' then 1 else 0 end) as n_pending,
        sum(case when {{ alias }}.is_hit then 1 else 0 end) as n_hits,
        avg({{ alias }}.probability) as mean_probability
{%- endmacro %}

{% macro alert_precision_columns(alias) -%}
    {{ alias }}.n_alerts - {{ alias }}.n_pending as n_decided,
    case when {{ alias }}.n_alerts > {{ alias }}.n_pending
        then cast({{ alias }}.n_hits as {{ beep_type_double() }}) / ({{ alias }}.n_alerts - {{ alias }}.n_pending) end as precision
{%- endmacro %}
