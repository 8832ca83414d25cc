-- Labels are 0..n-1 without gaps (LabelEncoder semantics), and every responder has one.
with

labels as (

    select * from {{ ref('user_labels') }}

),

gaps as (

    select 'labels not dense' as problem
    from labels
    having count(*) > 0 and (min(label) <> 0 or max(label) <> count(*) - 1)

),

unlabelled as (

    select 'example without a label' as problem
    from {{ ref('training_examples') }}
    where label is null

)

select * from gaps
union all
select * from unlabelled
