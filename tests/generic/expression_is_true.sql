{# Fails for every row where the SQL expression is not true (null counts as a failure). #}
{% test expression_is_true(model, expression, column_name=None) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
