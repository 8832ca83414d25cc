-- refine_verdict_counts adds up to refined_training_examples, which (unbalanced) has every training example.
with counts as (select sum(n_examples) as n from {{ ref('refine_verdict_counts') }}),
refined as (select count(*) as n from {{ ref('refined_training_examples') }}),
examples as (select count(*) as n from {{ ref('training_examples') }})
select counts.n as counted, refined.n as refined, examples.n as examples
from counts, refined, examples
where counts.n <> refined.n
{%- if not var('refine_balance', false) %} or refined.n <> examples.n{% endif %}
