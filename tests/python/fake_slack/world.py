"""A small trained responder ranker registered in a DuckDB file the way `beep finetune` leaves it
(an export with its label mapping, a succeeded local fine-tune job, the artifact), so the Slack app
loads it through the same path as `beep predict` (`--model`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from beep.config import Paths
from beep.db import connect, open_duckdb
from beep.finetune.local import RANKER_BASE_MODEL
from beep.ranker.model import HYPERPARAMETERS, ResponderRanker
from beep.ranker.stream import Query, load_queries
from ranker_world import TOPICS, synthetic_workspace, write_world

MODEL = "local:slack-test-ranker"
EXPORT = "exp-slack-test"


@dataclass(frozen=True)
class World:
    paths: Paths
    model: str
    people: list[str]
    experts: dict[str, list[str]]  # topic -> the people who answer it most, best first
    channel: str  # a channel id the workspace talks in


#: The tests' ranker: a smaller text model and fewer trees than the product's, seconds to train.
TEST_HYPERPARAMETERS = {**HYPERPARAMETERS, "n_estimators": 50, "text_dims": 16}


def build_world(root: Path, *, n_people: int = 60, n_messages: int = 1000, seed: int = 1,
                hyperparameters: dict | None = None) -> World:
    """Train the ranker on a synthetic workspace (60 people, 1,000 messages; ~5 s) and register it."""
    root.mkdir(parents=True, exist_ok=True)
    paths = Paths(duckdb=root / "beep.duckdb", workdir=root / ".beep")
    messages, nil = synthetic_workspace(n_people, n_messages, seed=seed, nil_rate=0.25)
    write_world(paths.duckdb, messages)
    con = open_duckdb(str(paths.duckdb), read_only=True)
    found = load_queries(con, [r[0] for r in con.execute("select example_id from training_examples").fetchall()])
    train = [Query(**{**q.__dict__, "label": nil.get(q.example_id, "x")}) for q in found.values()]
    model = ResponderRanker(seed=0, hyperparameters=hyperparameters or TEST_HYPERPARAMETERS)
    model.fit(con, train)
    con.close()
    artifact = paths.artifacts_dir / "slack-test-ranker.joblib"
    sha = model.save(artifact)
    people = sorted({m.user for m in messages})
    answers: dict[str, dict[str, int]] = {t: {} for t in TOPICS}
    for m in messages:  # who answers each topic: the expert's replies name the topic's words
        if m.text.startswith(("check the", "then restart")):
            for topic, words in TOPICS.items():
                if any(w in m.text for w in words.split()):
                    answers[topic][m.user] = answers[topic].get(m.user, 0) + 1
    experts = {t: sorted(c, key=lambda u: -c[u]) for t, c in answers.items()}
    with connect(paths.duckdb) as con:
        con.execute("insert into exports (export_id, status, format, base_model, refined, split_method, n_train, n_valid) "
                    "values (?, 'ok', 'chat', ?, false, 'time', ?, 0)", [EXPORT, RANKER_BASE_MODEL, len(train)])
        con.executemany("insert into export_labels (export_id, label, user_id, user_name) values (?, ?, ?, ?)",
                        [(EXPORT, str(i), u, u.lower()) for i, u in enumerate(people)] + [(EXPORT, "nil", None, None)])
        con.execute("insert into finetune_jobs (job_id, provider, base_model, export_id, settings_hash, status, "
                    "fine_tuned_model, artifact_path, artifact_sha256, finished_at) "
                    "values ('local-slack-test', 'local', ?, ?, 'h', 'succeeded', ?, ?, ?, current_timestamp)",
                    [RANKER_BASE_MODEL, EXPORT, MODEL, str(artifact), sha])
    return World(paths, MODEL, people, experts, "C1")
