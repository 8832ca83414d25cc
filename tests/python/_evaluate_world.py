"""A small, deterministic world for the evaluate / report / predict tests: a DuckDB file holding
``training_examples`` (the dbt contract), an export with its labels and examples, and a trained
local responder model registered as a succeeded fine-tune job. No dbt, no network, ~1 s."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from beep.db import connect
from beep.finetune.local_model import LocalResponderModel

SUFFIX = "\n\n###\n\n"
USERS = {
    "U01": ("ada", ["postgres", "index", "query", "vacuum"]),
    "U02": ("bob", ["kubernetes", "deploy", "helm", "pod"]),
    "U03": ("cyd", ["invoice", "billing", "refund", "stripe"]),
    "U04": ("dee", ["design", "figma", "mockup", "color"]),
}
CHANNELS = {"C1": "eng", "C2": "biz"}
FILLER = ["hey", "anyone", "around", "please", "thanks", "today", "quick", "question", "about", "the"]


@dataclass(frozen=True)
class World:
    db: Path
    export_id: str
    job_id: str
    model: str  # fine_tuned_model
    artifact: Path


def _example_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    users = sorted(USERS)
    rows = []
    for i in range(n):
        responder = rng.choice(users)
        weak = rng.random() < 0.15
        channel = "C1" if users.index(responder) < 2 else "C2"
        if rng.random() < 0.2:
            channel = rng.choice(sorted(CHANNELS))
        words = USERS[responder][1] if not weak else FILLER
        text = " ".join(rng.choice(words + FILLER) for _ in range(8))
        spoke_before = rng.random() < 0.6
        others = [u for u in users if u != responder]
        prior = rng.sample(others, 2)
        if spoke_before:
            prior.insert(rng.randint(0, len(prior)), responder)
        mentioned = [responder] if rng.random() < 0.3 else []
        rows.append(
            {
                "example_id": hashlib.sha256(f"ex{seed}-{i}".encode()).hexdigest()[:16],
                "conversation_id": f"conv{i // 2}",
                "channel_id": channel,
                "channel_name": CHANNELS[channel],
                "target_ts": f"{1700000000 + i * 60}.000100",
                "responder_user_id": responder,
                "label": users.index(responder),
                "prompt": text + SUFFIX,
                "completion": f" {users.index(responder)}",
                "n_context_messages": 2,
                "responder_spoke_before": spoke_before,
                "prior_participant_ids": prior,
                "mentioned_user_ids": mentioned,
                "weak": weak,
            }
        )
    return rows


SYSTEM = "Who should be alerted about this conversation? Answer with one label."


def _write_jsonl(path: Path, rows: list[dict], fmt: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            if fmt == "chat":
                obj = {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": r["prompt"]},
                                    {"role": "assistant", "content": r["export_label"]}]}
            else:
                obj = {"prompt": r["prompt"], "completion": " " + r["export_label"]}
            fh.write(json.dumps(obj) + "\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


_TEMPLATES: dict[tuple, Path] = {}


def build_world(tmp: Path, *, n: int = 160, seed: int = 7, refined: bool = True, fmt: str = "chat") -> World:
    """Write the world into ``tmp/world.duckdb``, ``tmp/exports`` and ``tmp/artifacts``.

    The first call per settings builds a template (a few seconds: inserts and a model fit); later
    calls copy it and point the recorded paths at the copy."""
    key = (n, seed, refined, fmt)
    if key not in _TEMPLATES:
        template = Path(tempfile.mkdtemp(prefix="beep-eval-world-"))
        _build_world(template, n=n, seed=seed, refined=refined, fmt=fmt)
        _TEMPLATES[key] = template
    template = _TEMPLATES[key]
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("world.duckdb", "exports", "artifacts"):
        src = template / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp / name)
    db = tmp / "world.duckdb"
    with connect(db) as con:
        con.execute("update exports set train_path = replace(train_path, ?, ?), valid_path = replace(valid_path, ?, ?)",
                    [str(template), str(tmp)] * 2)
        con.execute("update finetune_jobs set artifact_path = replace(artifact_path, ?, ?)", [str(template), str(tmp)])
        export_id, job_id, model = con.execute(
            "select export_id, job_id, fine_tuned_model from finetune_jobs").fetchone()
    return World(db=db, export_id=export_id, job_id=job_id, model=model, artifact=tmp / "artifacts" / "local-test.joblib")


def _build_world(tmp: Path, *, n: int, seed: int, refined: bool, fmt: str) -> World:
    db = tmp / "world.duckdb"
    rows = _example_rows(n, seed)
    users = sorted(USERS)
    export_id = "exp-test-" + str(seed)
    n_train = int(n * 0.75)
    for i, row in enumerate(rows):
        row["split"] = "train" if i < n_train else "valid"
        row["line"] = i + 1 if i < n_train else i - n_train + 1
        row["export_label"] = "nil" if (refined and row["weak"]) else str(users.index(row["responder_user_id"]))
    train_path, valid_path = tmp / "exports" / "train.jsonl", tmp / "exports" / "valid.jsonl"
    train_sha = _write_jsonl(train_path, [r for r in rows if r["split"] == "train"], fmt)
    valid_sha = _write_jsonl(valid_path, [r for r in rows if r["split"] == "valid"], fmt)
    with connect(db) as con:
        # the dbt models' tables in their layer schema, as a build puts them (macros/layer_schemas.sql)
        con.execute("create schema if not exists marts")
        con.execute(
            """
            create table marts.training_examples (
                example_id varchar, conversation_id varchar, channel_id varchar, channel_name varchar,
                target_ts varchar, target_at timestamp, responder_user_id varchar, label integer, prompt varchar,
                completion varchar, n_context_messages integer, responder_spoke_before boolean,
                prior_participant_ids varchar[], mentioned_user_ids varchar[])
            """
        )
        con.execute("create table marts.user_labels (user_id varchar, user_name varchar, label integer, n_examples integer)")
        for r in rows:
            con.execute(
                "insert into marts.training_examples values (?, ?, ?, ?, ?, to_timestamp(cast(? as double)), ?, ?, ?, ?, ?, ?, ?, ?)",
                [r["example_id"], r["conversation_id"], r["channel_id"], r["channel_name"], r["target_ts"],
                 r["target_ts"], r["responder_user_id"], r["label"], r["prompt"], r["completion"],
                 r["n_context_messages"], r["responder_spoke_before"], r["prior_participant_ids"],
                 r["mentioned_user_ids"]],
            )
        for i, u in enumerate(users):
            con.execute("insert into marts.user_labels values (?, ?, ?, ?)", [u, USERS[u][0], i, sum(r["responder_user_id"] == u for r in rows)])
        con.execute(
            """
            insert into exports (export_id, status, format, base_model, refined, split_method, label_prefix, settings,
                                 train_path, valid_path, train_sha256, valid_sha256, n_train, n_valid)
            values (?, 'ok', ?, ?, ?, 'time', ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [export_id, fmt, "gpt-4o-mini-2024-07-18" if fmt == "chat" else "babbage-002", refined,
             "" if fmt == "chat" else " ", json.dumps({"system_prompt": SYSTEM}), str(train_path), str(valid_path),
             train_sha, valid_sha, n_train, n - n_train],
        )
        labels = [(str(i), u, USERS[u][0]) for i, u in enumerate(users)] + ([("nil", None, None)] if refined else [])
        for label, uid, name in labels:
            con.execute("insert into export_labels (export_id, label, user_id, user_name) values (?, ?, ?, ?)", [export_id, label, uid, name])
        for r in rows:
            con.execute(
                """insert into export_examples (export_id, example_id, split, line, conversation_id, label, channel_id,
                       responder_user_id, prior_participant_ids, mentioned_user_ids) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [export_id, r["example_id"], r["split"], r["line"], r["conversation_id"], r["export_label"],
                 r["channel_id"], r["responder_user_id"], r["prior_participant_ids"], r["mentioned_user_ids"]],
            )
    model = LocalResponderModel()
    model.fit([{**r, "label": r["export_label"]} for r in rows if r["split"] == "train"])
    artifact = tmp / "artifacts" / "local-test.joblib"
    sha = model.save(artifact)
    job_id = "local-test"
    with connect(db) as con:
        con.execute(
            """
            insert into finetune_jobs (job_id, provider, base_model, export_id, settings_hash, status, fine_tuned_model,
                                       artifact_path, artifact_sha256, finished_at)
            values (?, 'local', 'tfidf-logreg', ?, 'h', 'succeeded', ?, ?, ?, current_timestamp)
            """,
            [job_id, export_id, f"local:{job_id}", str(artifact), sha],
        )
    return World(db=db, export_id=export_id, job_id=job_id, model=f"local:{job_id}", artifact=artifact)


def world_rows(seed: int = 7, n: int = 160) -> list[dict]:
    """The same rows build_world writes (for tests that compute expectations)."""
    return _example_rows(n, seed)


def dumps(obj: object) -> str:
    return json.dumps(obj, sort_keys=True)
