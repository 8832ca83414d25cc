-- Every prompt ends with the prompt suffix, and the suffix occurs nowhere else in it.
{%- set suffix_sql = sql_string(var('prompt_suffix')) %}

select example_id, prompt
from {{ ref('training_examples') }}
where {{ untested_rows(ref('training_examples')) }}
  and ({{ dbt.right('prompt', 'length(' ~ suffix_sql ~ ')') }} <> {{ suffix_sql }}
   or (length(prompt) - length(replace(prompt, {{ suffix_sql }}, ''))) <> length({{ suffix_sql }})
   or length(prompt) > {{ var('max_prompt_chars') }} + length({{ suffix_sql }}))
