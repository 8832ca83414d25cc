"""The tables the Python steps own, created and evolved through numbered migrations.

dbt owns the dataset (staging / intermediate / marts); these tables hold what the steps with a
side effect or a cost produced: ingests, refinement verdicts, exports, fine-tune jobs, predictions
and metrics. Each migration runs once per DuckDB file, in order, recorded in `_beep_migrations`.
Never edit a migration that has shipped: add a new one at the end of :data:`MIGRATIONS`, and
describe its tables and every column in models/staging/beep/_beep.yml (dbt sources): dbt docs show
that text, and :func:`beep.table_docs.write_comments` writes it into the DuckDB file as comments.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from beep.table_docs import write_comments

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def m001_ingests(con: duckdb.DuckDBPyConnection) -> None:
    """What `beep ingest` checked and prepared: one row per ingest, one per problem it found."""
    con.execute(
        """
        create table ingests (
            ingest_id varchar primary key,      -- sha256 of (source path, size, mtime of every file)
            source_path varchar not null,       -- the zip or folder the user gave
            export_path varchar not null,       -- the folder dbt reads (var slack_export)
            n_day_files integer not null,
            n_messages bigint not null,
            n_bytes bigint not null,
            n_issues integer not null,
            ingested_at timestamp not null default current_timestamp
        )
        """
    )
    con.execute(
        """
        create table ingest_issues (
            ingest_id varchar not null,
            file varchar not null,              -- path relative to the export folder
            issue varchar not null,             -- e.g. empty_file, lone_surrogate_repaired, unlisted_channel
            n integer not null,                 -- how many occurrences in that file
            detail varchar
        )
        """
    )


def m002_refine(con: duckdb.DuckDBPyConnection) -> None:
    """Refinement: verdicts of the few-shot strong/weak classifier (one per example x few-shot set x
    provider/model), the runs that produced them, Batch API submissions, and cached few-shot summaries."""
    con.execute(
        """
        create table refine_verdicts (
            example_id varchar not null,
            fewshot_hash varchar not null,
            provider varchar not null,
            model varchar not null,
            verdict varchar not null,           -- strong | weak | refused
            confidence double,                  -- where the provider gives one (local: class probability)
            reason varchar,                     -- why refused (content policy, too long, ...)
            raw_answer varchar,                 -- the provider's answer for this example (or the request's, on refusal)
            prompt_tokens integer,              -- this example's share of its request's usage
            completion_tokens integer,
            cached_tokens integer,
            run_id varchar,                     -- refine_runs.run_id
            request_id varchar,                 -- examples decided by one request share it
            decided_at timestamp not null default current_timestamp,
            primary key (example_id, fewshot_hash, provider, model)
        )
        """
    )
    con.execute(
        """
        create table refine_runs (
            run_id varchar primary key,
            fewshot_hash varchar not null,
            provider varchar not null,
            model varchar not null,
            mode varchar not null,              -- local | requests | batch_api
            status varchar not null,            -- running | finished | incomplete (examples left undecided) | failed | interrupted | submitted
            settings json,
            n_pending integer,                  -- examples without a verdict when the run started
            n_decided integer,                  -- verdicts this run stored
            n_failed integer,                   -- examples left undecided by this run (a rerun retries them)
            requests integer,
            prompt_tokens bigint,
            completion_tokens bigint,
            cached_tokens bigint,
            cost double,
            started_at timestamp not null default current_timestamp,
            finished_at timestamp
        )
        """
    )
    con.execute(
        """
        create table refine_batches (
            submission_id varchar primary key,  -- ours, recorded before the upload so a crash loses nothing
            batch_id varchar,                   -- the provider's, once created
            input_file_id varchar,
            output_file_id varchar,
            error_file_id varchar,
            fewshot_hash varchar not null,
            provider varchar not null,
            model varchar not null,
            status varchar not null,            -- preparing | submitted | <provider status> | collected
            n_requests integer not null,
            n_examples integer not null,
            created_at timestamp not null default current_timestamp,
            collected_at timestamp
        )
        """
    )
    con.execute(
        """
        create table refine_batch_items (
            submission_id varchar not null,
            custom_id varchar not null,         -- one request of the batch
            example_id varchar not null,
            short_id varchar not null,          -- the example's id inside that request's prompt
            primary key (submission_id, example_id)
        )
        """
    )
    con.execute(
        """
        create table fewshot_summaries (
            text_sha256 varchar not null,
            model varchar not null,
            summary varchar not null,
            prompt_tokens integer,
            completion_tokens integer,
            created_at timestamp not null default current_timestamp,
            primary key (text_sha256, model)
        )
        """
    )


def m003_exports(con: duckdb.DuckDBPyConnection) -> None:
    """Validated JSONL exports, their checks, their examples by split, and the label mapping used."""
    con.execute(
        """
        create table exports (
            export_id varchar primary key,      -- sha256 of the input rows + settings (same inputs = same id)
            created_at timestamp not null default current_timestamp,
            status varchar not null,            -- ok | failed (an error check fired; no files written)
            format varchar not null,            -- chat | completion
            base_model varchar not null,
            refined boolean not null,
            split_method varchar not null,      -- time | conversation
            label_prefix varchar,               -- what precedes the label in the answer ('' or ' ')
            settings json,                      -- every setting that shaped the files (system prompt, seed, ...)
            train_path varchar,
            valid_path varchar,
            train_sha256 varchar,
            valid_sha256 varchar,
            n_train integer not null,
            n_valid integer not null,
            n_excluded integer not null default 0,
            estimated_training_tokens bigint,   -- per epoch, as sent (chat overhead included)
            label_counts json,                  -- {"3": {"train": 10, "valid": 2}, ...}: stratification per label
            check_summary json                  -- {"errors": 0, "warnings": 2, "failed": [...]}
        )
        """
    )
    con.execute(
        """
        create table export_checks (
            export_id varchar not null,
            "check" varchar not null,
            severity varchar not null,          -- error | warning | info
            passed boolean not null,
            count integer not null,             -- how many examples (or labels) the check flagged
            example_ids varchar[],              -- the first flagged ones
            message varchar
        )
        """
    )
    con.execute(
        """
        create table export_examples (
            export_id varchar not null,
            example_id varchar not null,
            split varchar not null,             -- train | valid
            line integer not null,              -- 1-based line of the example in its split's JSONL file
            conversation_id varchar,
            label varchar not null,             -- the label text written (e.g. 3 or nil)
            -- what is known at prediction time besides the prompt (the local model's context features)
            channel_id varchar,
            target_at timestamp,
            responder_user_id varchar,
            prior_participant_ids varchar[],
            mentioned_user_ids varchar[],
            primary key (export_id, example_id)
        )
        """
    )
    con.execute(
        """
        create table export_labels (
            export_id varchar not null,
            label varchar not null,             -- the answer without any leading space, e.g. 3 or nil
            user_id varchar,                    -- null for nil; '__other__' for the catch-all label
            user_name varchar,
            n_train integer,
            n_valid integer,
            primary key (export_id, label)
        )
        """
    )


def m004_finetune(con: duckdb.DuckDBPyConnection) -> None:
    """Fine-tune jobs (remote or local), their events, and the files uploaded for them."""
    con.execute(
        """
        create table finetune_jobs (
            job_id varchar primary key,         -- the provider's job id (ftjob-...) or local-<hash>
            provider varchar not null,          -- local | openai | azure
            endpoint varchar,                   -- base URL / Azure endpoint (null for local)
            base_model varchar not null,
            export_id varchar not null,
            settings_hash varchar not null,     -- same export + same settings = same job, never a second paid one
            status varchar not null,            -- validating_files | queued | running | succeeded | failed | cancelled
            fine_tuned_model varchar,
            hyperparameters json,
            trained_tokens bigint,
            training_file_id varchar,
            validation_file_id varchar,
            result_files json,                  -- [{"id": ..., "path": ..., "metrics": {...}}]
            checkpoints json,                   -- [{"id": ..., "step": ..., "model": ..., "metrics": {...}}]
            artifact_path varchar,              -- local model joblib
            artifact_sha256 varchar,
            error varchar,
            seconds double,                     -- wall time from creation to a final status
            created_at timestamp not null default current_timestamp,
            finished_at timestamp
        )
        """
    )
    con.execute(
        """
        create table finetune_events (
            job_id varchar not null,
            event_id varchar not null,
            created_at timestamp,
            level varchar,
            message varchar,
            data json,
            primary key (job_id, event_id)
        )
        """
    )
    con.execute(
        """
        create table finetune_files (
            endpoint varchar not null,          -- where it was uploaded
            sha256 varchar not null,            -- of the file's bytes: an export already uploaded is reused
            file_id varchar not null,
            filename varchar,
            bytes bigint,
            uploaded_at timestamp not null default current_timestamp,
            primary key (endpoint, sha256)
        )
        """
    )


def m005_evaluate(con: duckdb.DuckDBPyConnection) -> None:
    """Evaluation runs, their predictions and metric rows (models and baselines alike)."""
    con.execute(
        """
        create table eval_runs (
            eval_run_id varchar primary key,    -- hash of model + export + split + settings (+ a salt for --new-run)
            model varchar not null,             -- the evaluated model (fine_tuned_model name or local:<job_id>)
            job_id varchar,                     -- the finetune_jobs row it came from, when known
            export_id varchar not null,
            split varchar not null,
            n integer,                          -- examples in the split
            provider varchar not null,          -- local | openai | azure
            status varchar not null default 'running',  -- running | finished | failed
            settings json,                      -- top-k, batch size, base_url (never a key), ...
            started_at timestamp not null default current_timestamp,
            finished_at timestamp,
            cost double,                        -- USD when known (0 for local), null when unknown
            error varchar
        )
        """
    )
    con.execute(
        """
        create table predictions (
            eval_run_id varchar not null,
            model varchar not null,             -- the model or baseline name
            example_id varchar not null,
            true_label varchar not null,
            predicted_label varchar,            -- null when the output decodes to no known label
            top_k json,                         -- [{"label": "3", "logprob": -0.1}, ...]
            true_label_rank integer,            -- 1-based; null when not in top_k
            raw_output varchar,
            newcomer boolean,                   -- the responder had not written in the conversation yet
            prompt_tokens integer,
            completion_tokens integer,
            predicted_at timestamp not null default current_timestamp,
            primary key (eval_run_id, model, example_id)
        )
        """
    )
    con.execute(
        """
        create table metrics (
            eval_run_id varchar not null,
            model varchar not null,
            slice varchar not null,             -- all | newcomer
            metric varchar not null,
            label varchar,                      -- null for overall metrics
            value double,
            support integer
        )
        """
    )


def m006_pipeline_steps(con: duckdb.DuckDBPyConnection) -> None:
    """What `beep run` finished, by step and input fingerprint, so a rerun skips finished steps."""
    con.execute(
        """
        create table pipeline_steps (
            step varchar not null,              -- ingest | build | refine | export | finetune | evaluate | report
            fingerprint varchar not null,       -- hash of the step's inputs and settings
            result json,                        -- ids and counts the next steps need
            seconds double,
            finished_at timestamp not null default current_timestamp,
            primary key (step, fingerprint)
        )
        """
    )


def m007_exports_last_exported(con: duckdb.DuckDBPyConnection) -> None:
    """When each export was last asked for (a rerun that reuses an export counts): "the latest export"
    is the one the user produced last, not the one first created last."""
    con.execute("alter table exports add column last_exported_at timestamp")
    con.execute("update exports set last_exported_at = created_at")


def m008_predictions_people(con: duckdb.DuckDBPyConnection) -> None:
    """Predictions name people, not only labels: the true responder (a person even when the export
    folds them into `other`), the people ranked with their probabilities, the responder's rank among
    them, and among the people not yet in the conversation (the newcomer view)."""
    con.execute("alter table predictions add column responder_user_id varchar")
    con.execute("alter table predictions add column top_people json")  # [{user_id, probability, reason}]
    con.execute("alter table predictions add column responder_rank integer")  # 1-based among ranked people
    con.execute("alter table predictions add column outsider_rank integer")  # among people not yet in it
    con.execute("alter table predictions add column nobody_probability double")


def m009_eval_runs_kind(con: duckdb.DuckDBPyConnection) -> None:
    """Runs are compared with the previous run of the same kind (provider + model variant + export
    settings + split), not of the same model name (every retrained model has a new name), and record
    what they ran on: the build vars, the export's settings (refined or not, the split) and the model's."""
    con.execute("alter table eval_runs add column run_kind varchar")  # e.g. local/ranker|chat|time 0.2|refined|valid
    con.execute("alter table eval_runs add column context json")  # build vars, export settings, model settings


def m010_slack_alerts(con: duckdb.DuckDBPyConnection) -> None:
    """`beep slack serve`: every alert decision (sent or suppressed, and why), the button presses on
    them, the live messages the app saw (cleaned, as the dataset keeps them: a restart replays them)
    and the people who opted out (`/beep off`)."""
    con.execute(
        """
        create table alerts (
            alert_id varchar primary key,       -- hash of (conversation, person): one alert per conversation and person
            conversation_id varchar not null,   -- <channel>:thread:<ts> | <channel>:reply:<ts> | <channel>:run:<ts>
            channel_id varchar not null,
            message_ts varchar not null,        -- the message after which the model was asked
            person_id varchar not null,         -- who the alert is (or was not) for
            author_id varchar,                  -- who wrote that message
            probability double not null,
            model varchar not null,             -- the model's name (finetune_jobs.fine_tuned_model)
            reason varchar,                     -- the one-line reason shown in the DM
            status varchar not null,            -- sending | sent | dry_run | suppressed | failed
            suppressed_reason varchar,          -- bot | deactivated | unknown_user | opted_out | quiet_hours | hourly_limit | dry_run
            error varchar,                      -- what Slack said when a DM failed
            permalink varchar,
            dm_channel_id varchar,
            dm_ts varchar,
            decided_at timestamp not null,      -- UTC
            sent_at timestamp                   -- UTC, when the DM was posted
        )
        """
    )
    con.execute(
        """
        create table alert_feedback (
            alert_id varchar not null,
            person_id varchar not null,         -- who pressed (the alerted person)
            feedback varchar not null,          -- useful | not_for_me
            action_ts varchar not null,         -- Slack's action_ts: a redelivered press is stored once
            pressed_at timestamp not null,      -- UTC
            primary key (alert_id, action_ts)
        )
        """
    )
    con.execute(
        """
        create table slack_messages (
            channel_id varchar not null,
            ts varchar not null,
            thread_ts varchar,
            user_id varchar not null,
            conversation_id varchar not null,
            clean_text varchar not null,        -- cleaned as the dataset cleans (never the raw text)
            mentioned_user_ids varchar[],
            message_at timestamp not null,      -- UTC, from ts
            received_at timestamp not null default current_timestamp,
            primary key (channel_id, ts)
        )
        """
    )
    con.execute(
        """
        create table slack_opt_outs (
            person_id varchar primary key,
            opted_out boolean not null,         -- /beep off: true; /beep on: false
            changed_at timestamp not null
        )
        """
    )


def m011_alert_replay_curve(con: duckdb.DuckDBPyConnection) -> None:
    """`beep evaluate`'s alert replay (beep.evaluate.alert_replay): the decision `beep slack serve`
    makes, replayed on history at a grid of thresholds, for the model and each baseline, on the tune
    period (the newest part of the train period, where the operating point is chosen) and on the
    evaluated period."""
    con.execute(
        """
        create table alert_replay_curve (
            eval_run_id varchar not null,
            model varchar not null,             -- the model's name, or 'baseline: ...'
            period varchar not null,            -- tune | evaluated
            min_probability double not null,    -- the threshold
            alerts integer not null,            -- alerts the policy would send
            useful integer not null,            -- alerts whose person wrote in the conversation within the alert window
            precision double,                   -- useful / alerts
            joins integer not null,             -- first messages of people in conversations someone else started
            joins_alerted integer not null,     -- joins alerted at most the alert window before
            recall double,                      -- joins_alerted / joins
            alerts_per_person_day double,       -- alerts / (people who wrote in the period x its days)
            is_operating_point boolean not null default false,  -- the threshold chosen on the tune period
            primary key (eval_run_id, model, period, min_probability)
        )
        """
    )


def m012_alert_replay_alerts(con: duckdb.DuckDBPyConnection) -> None:
    """A sample of the alerts the replay sent (beep.evaluate.alert_replay: each ranker at its operating
    point on the evaluated period, at most 200 evenly spread), with the reason the DM would give and
    what its person did: what the report shows."""
    con.execute(
        """
        create table alert_replay_alerts (
            eval_run_id varchar not null,
            model varchar not null,             -- the model's name, or 'baseline: ...'
            min_probability double not null,    -- the ranker's operating point
            alert_at timestamp not null,        -- the moment (message) the alert was decided at, UTC
            conversation_id varchar not null,
            channel varchar,                    -- channel id (or folder)
            person_id varchar not null,         -- who was alerted
            probability double not null,
            reason varchar,                     -- the reason the DM gives (null where the ranker gives none)
            outcome varchar not null            -- joined (wrote within the window) | reacted | nothing
        )
        """
    )


def m013_ingest_file_checks(con: duckdb.DuckDBPyConnection) -> None:
    """What `beep ingest` found in each day file, by path and content hash: the next ingest does not
    parse a file whose content is unchanged (beep.ingest.FileCheck)."""
    con.execute(
        """
        create table ingest_file_checks (
            rel varchar primary key,            -- the day file, relative to the export folder
            content_hash varchar not null,      -- blake2b-128 of its bytes
            check_version integer not null,     -- beep.ingest.CHECK_VERSION when it was checked
            n_messages integer not null,
            user_counts varchar not null,       -- JSON object: user id -> messages
            message_keys varchar not null,      -- JSON array of [ts, text hash] in file order
            checked_at timestamp not null default current_timestamp
        )
        """
    )


def m014_export_prompt_tokens(con: duckdb.DuckDBPyConnection) -> None:
    """Tokens of each prompt `beep export` counted, by tokenizer encoding and the prompt's md5: the
    next export (a new day's) counts only prompts it has not seen (beep.export.api)."""
    con.execute(
        """
        create table export_prompt_tokens (
            encoding varchar not null,   -- the tokenizer's encoding (o200k_base, cl100k_base)
            prompt_md5 varchar not null, -- md5 of the prompt's UTF-8 text, as DuckDB's md5() gives it
            tokens integer not null
        )
        """
    )


def m015_pruned(con: duckdb.DuckDBPyConnection) -> None:
    """When `beep prune` removed an export's files and example rows, an evaluation run's predictions, a
    fine-tune job's model artifact (beep.prune): the rows themselves stay."""
    for table in ("exports", "eval_runs", "finetune_jobs"):
        con.execute(f"alter table {table} add column pruned_at timestamp")


#: Every migration in the order it runs. Append only.
MIGRATIONS: list[Migration] = [m001_ingests, m002_refine, m003_exports, m004_finetune, m005_evaluate, m006_pipeline_steps,
                               m007_exports_last_exported, m008_predictions_people, m009_eval_runs_kind,
                               m010_slack_alerts, m011_alert_replay_curve, m012_alert_replay_alerts,
                               m013_ingest_file_checks, m014_export_prompt_tokens, m015_pruned]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this DuckDB file has not seen yet; return their names."""
    con.execute(
        "create table if not exists _beep_migrations (name varchar primary key, applied_at timestamp default current_timestamp)"
    )
    done = {row[0] for row in con.execute("select name from _beep_migrations").fetchall()}
    applied: list[str] = []
    for migration in MIGRATIONS:
        if migration.__name__ in done:
            continue
        con.execute("begin transaction")
        try:
            migration(con)
            con.execute("insert into _beep_migrations (name) values (?)", [migration.__name__])
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        applied.append(migration.__name__)
    # every table and column described (models/staging/beep/_beep.yml), when that text changed
    write_comments(con)
    return applied
