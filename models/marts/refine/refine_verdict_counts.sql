{#- How many examples refined_training_examples has per verdict (strong / weak / refused / undecided, zeros included). -#}
{{ config(materialized='view') }}

with verdicts as (
    select * from (values ('strong', 1), ('weak', 2), ('refused', 3), ('undecided', 4)) as v (verdict, sort_order)
),

counted as (
    select verdict, count(*) as n_examples
    from {{ ref('refined_training_examples') }}
    group by verdict
),

total as (
    select count(*) as n_total from {{ ref('refined_training_examples') }}
)

select
    v.verdict,
    coalesce(c.n_examples, 0) as n_examples,
    case when t.n_total > 0 then coalesce(c.n_examples, 0) * 1.0 / t.n_total else 0 end as share,
    (select max(refine_fewshot_hash) from {{ ref('refined_training_examples') }}) as refine_fewshot_hash,
    (select max(refine_provider) from {{ ref('refined_training_examples') }}) as refine_provider,
    (select max(refine_model) from {{ ref('refined_training_examples') }}) as refine_model
from verdicts as v
cross join total as t
left join counted as c on c.verdict = v.verdict
order by v.sort_order
