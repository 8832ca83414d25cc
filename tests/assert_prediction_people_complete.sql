{#-
  evaluation_prediction_people: every person row has its rank and its person id, and each prediction
  (run, model, example) has one row of rank 1 (a join that fanned out would repeat it). In `beep build`
  only the runs no passing build tested (macros/untested_eval_runs.sql); in a plain `dbt build`, all.

  One test, one read of the view: as three (not_null person_rank, not_null person_id, the combination
  unique at rank 1) each parsed every stored person from JSON again, 3.6 s for one evaluation's
  2.5 million rows at 200,000 messages, against 1.5 s as one (docs/benchmarks.md, "A daily run").
-#}
select eval_run_id, model, example_id,
       count(*) filter (where person_rank = 1) as n_rank_1,
       count(*) filter (where person_rank is null) as n_without_rank,
       count(*) filter (where person_id is null) as n_without_person
from {{ ref('evaluation_prediction_people') }}
where {{ untested_eval_runs() }}
group by eval_run_id, model, example_id
having count(*) filter (where person_rank = 1) > 1
    or count(*) filter (where person_rank is null) > 0
    or count(*) filter (where person_id is null) > 0
