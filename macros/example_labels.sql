{#-
  An example's label and completion (models/marts/training_examples.sql), one definition for the model
  and for the rows a daily build relabels (macros/incremental_messages.sql, relabel_rows).
-#}

{#- The responder's label: theirs in user_labels, else the shared `__other__` label. -#}
{% macro responder_label(labels_alias, other_alias) -%}
  coalesce({{ labels_alias }}.label, {{ other_alias }}.label)
{%- endmacro %}

{#- The completion, the seed's form: a space and the label. -#}
{% macro label_completion(label) -%}
  ' ' || cast({{ label }} as {{ dbt.type_string() }})
{%- endmacro %}
