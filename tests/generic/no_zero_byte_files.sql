{# Warns about day files of zero bytes: DuckDB reads them as no rows, so they would vanish silently. #}
{% test no_zero_byte_files(model, column_name) %}
select source_file, {{ column_name }}
from {{ model }}
where {{ column_name }} = 0
{% endtest %}
