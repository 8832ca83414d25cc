{#-
  training_examples with the refine step's verdicts: weak examples keep their prompt but their
  completion becomes ' nil' (nobody needs to be alerted). A view, so it is fresh as soon as
  `beep refine` has stored verdicts.

  Which verdicts: those of one key (few-shot hash x provider x model) — by default the key of the
  most recently finished refine run (refine_runs.status = 'finished'); vars refine_provider,
  refine_model and refine_fewshot_hash narrow the choice. Examples without a verdict under that key
  are 'undecided' and keep their completion, like 'refused' ones (the export decides what to keep).

  Balancing (var refine_balance, default false): keep every example of the smaller of strong / weak
  and a seeded pseudo-random sample of the larger one (dbt.hash of example_id and var
  refine_balance_seed) of the same size; refused and undecided rows are kept as they are.

  Works on a fresh DuckDB where refine_verdicts / refine_runs don't exist yet: typed empty inputs.
-#}
{{ config(materialized='view') }}

with

runs as (
    select * from {{ ref('stg_beep__refine_runs') }}
),

verdicts as (
    select * from {{ ref('stg_beep__refine_verdicts') }}
),

chosen as (
    select fewshot_hash, provider, model
    from runs
    where status = 'finished'
    {%- if var('refine_provider') %} and provider = {{ sql_string(var("refine_provider")) }}{% endif %}
    {%- if var('refine_model') %} and model = {{ sql_string(var("refine_model")) }}{% endif %}
    {%- if var('refine_fewshot_hash') %} and fewshot_hash = {{ sql_string(var("refine_fewshot_hash")) }}{% endif %}
    order by finished_at desc, started_at desc
    limit 1
),

decided as (
    select v.example_id, v.verdict, v.confidence, v.reason, v.fewshot_hash, v.provider, v.model
    from verdicts as v
    inner join chosen as c
        on v.fewshot_hash = c.fewshot_hash and v.provider = c.provider and v.model = c.model
),

labelled as (
    select
        t.example_id,
        t.conversation_id,
        t.channel_id,
        t.channel_name,
        t.target_ts,
        t.target_at,
        t.responder_user_id,
        t.label,
        t.prompt,
        case when d.verdict = 'weak' then ' nil' else t.completion end as completion,
        t.n_context_messages,
        t.responder_spoke_before,
        t.prior_participant_ids,
        t.mentioned_user_ids,
        coalesce(d.verdict, 'undecided') as verdict,
        case when d.verdict = 'weak' then 'nil' else cast(t.label as {{ dbt.type_string() }}) end as target_label,
        t.completion as original_completion,
        d.confidence as verdict_confidence,
        d.reason as verdict_reason,
        (select fewshot_hash from chosen) as refine_fewshot_hash,
        (select provider from chosen) as refine_provider,
        (select model from chosen) as refine_model
    from {{ ref('training_examples') }} as t
    left join decided as d on d.example_id = t.example_id
)

{% if var('refine_balance') -%}
, ranked as (
    select
        example_id,
        verdict,
        row_number() over (
            partition by verdict order by {{ dbt.hash("example_id || " ~ sql_string(var('refine_balance_seed') | string)) }}, example_id
        ) as balance_rank,
        least(
            sum(case when verdict = 'strong' then 1 else 0 end) over (),
            sum(case when verdict = 'weak' then 1 else 0 end) over ()
        ) as balance_size
    from labelled
),

kept as (
    select example_id from ranked
    where verdict not in ('strong', 'weak') or balance_rank <= balance_size
)

select labelled.*
from labelled
inner join kept on kept.example_id = labelled.example_id
{%- else -%}
select * from labelled
{%- endif %}
