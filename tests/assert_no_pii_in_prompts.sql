{#-
  No e-mail address or international phone number reaches a prompt (with mask_pii on, the default):
  the prompts are what a provider sees. The patterns here are looser than the masking rules, so a
  number the masking missed shows up as a failing row.
-#}
{{ config(enabled=var('mask_pii', true)) }}

with examples as (
    select example_id, prompt from {{ ref('training_examples') }}
    where {{ untested_rows(ref('training_examples')) }}
)

select example_id, prompt
from examples
where {{ regex_matches('prompt', '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}') }}
   or {{ regex_matches('prompt', '\\+\\d{1,3}[\\s.-]?\\(?\\d{2,4}\\)?[\\s.-]?\\d{3,}') }}
