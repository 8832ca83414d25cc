{#-
  The data tests over every stored prediction (evaluation_prediction_people: each person of each
  prediction, parsed from JSON) grow with every daily evaluation, and a finished run's predictions
  never change. A test whose `where` config names the placeholder __untested_eval_runs__ therefore
  checks, in a `beep build`, only the runs that finished after the ones the last passing build
  tested: Beep passes that moment as BEEP_EVAL_RUNS_TESTED_THROUGH, and leaves it out when the
  project, the vars or dbt changed since, or with --full-refresh (beep.build.eval_runs_tested_through).
  Without it (a plain `dbt build`, an analyst's) the placeholder is `true`: every run is tested.

  dbt's get_where_subquery, overridden to replace the placeholder and to limit the tests of the tables
  kept day file by day file to their untested rows (macros/untested_rows.sql); as dbt's own otherwise. The env var
  is read only at execution: at parse time dbt would track it and parse the tests again whenever
  it changes.
-#}
{% macro get_where_subquery(relation) -%}
    {% set where = config.get('where', '') %}
    {% if where and '__untested_eval_runs__' in where %}
        {% set where = where | replace('__untested_eval_runs__', untested_eval_runs()) %}
    {% endif %}
    {#- the rows of a table kept day file by day file that no passing build tested (macros/untested_rows.sql) -#}
    {% set untested = untested_test_filter(relation) %}
    {% if untested is not none %}
        {% set where = '(' ~ untested ~ ')' ~ (' and (' ~ where ~ ')' if where else '') %}
    {% endif %}
    {% if where %}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {% do return(filtered) %}
    {%- else -%}
        {% do return(relation) %}
    {%- endif -%}
{%- endmacro %}

{% macro untested_eval_runs() -%}
    {%- set through = env_var('BEEP_EVAL_RUNS_TESTED_THROUGH', '') if execute else '' -%}
    {%- if through -%}
        {#- the runs as a list of literals: DuckDB pushes such a filter down to the predictions' scan,
            an `in (select ...)` it applies only after parsing every stored run's people -#}
        {%- set runs = run_query("select eval_run_id from main.eval_runs where finished_at is null or finished_at > "
                                 ~ "cast('" ~ (through | replace("'", "")) ~ "' as timestamp) order by 1") -%}
        {%- set ids = runs.columns[0].values() | list -%}
        {%- if ids -%}
            eval_run_id in ({% for id in ids %}'{{ id | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor %})
        {%- else -%}
            false
        {%- endif -%}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
