"""The model the Slack app asks, through the interface `beep predict` uses.

:class:`LiveModel` resolves ``--model`` like `beep predict` (a fine-tune job id or model name, default
the latest succeeded job), builds the same predictor (:func:`beep.predictors.make_predictor`) and
asks it about a live conversation as a `beep predict` row: the prompt of its last
``context_messages`` messages, the channel, the participants and mentions, and the messages
themselves. The responder ranker keeps a :class:`~beep.ranker.state.WorkspaceState` as of the end of
its training data; every live message is fed into it (:meth:`LiveModel.observe`), in time order,
as the dataset's messages were during training, so the channel's activity, who answers whom and
what each person writes about stay current while the bot runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from beep.build import last_build_vars
from beep.config import Paths
from beep.db import connect, table_exists
from beep.live.predict import load_model
from beep.predictors import PredictorOptions, make_predictor, people_of_labels
from beep.rules.messages import CheckedMessage, CleaningRules, MessageRules
from beep.rules.project_vars import load_project_vars
from beep.rules.prompts import PromptSettings
from beep.slack.conversations import (
    Conversation,
    LiveMessage,
    SplitSettings,
    check_event,
    model_row,
)


@dataclass(frozen=True)
class Ranked:
    """Whom the model would alert about a conversation now."""

    people: tuple[tuple[str, float, str | None], ...]  # (user id, probability, reason), best first
    nobody: float | None


class LiveModel:
    """A trained model, its prompt and cleaning settings, and (for the ranker) its live state."""

    def __init__(self, paths: Paths, model: str | None = None) -> None:
        ref, export = load_model(paths, model)
        self.name = ref.name
        self.export = export
        with connect(paths.duckdb, read_only=True) as con:
            built_with = last_build_vars(con)
            names = (
                {str(u): str(n) for u, n in con.execute("select user_id, user_name from stg_slack__users").fetchall() if n}
                if table_exists(con, "stg_slack__users") else {}
            )
        variables = load_project_vars(paths.project_dir, built_with)  # as the training data was built
        self.prompt_settings = PromptSettings.from_vars(variables)
        self.split_settings = SplitSettings.from_vars(variables, paths.project_dir)
        self.rules = CleaningRules.from_vars(variables, paths.project_dir)
        self.user_names: dict[str, str] = {lab.user_id: lab.user_name for lab in export.labels
                                           if lab.user_id and lab.user_name}
        self.user_names.update(names)
        self.predictor = make_predictor(ref, export, PredictorOptions(top_k=20), paths)
        from beep.predictors.local import RankerPredictor

        self.ranker = self.predictor.model if isinstance(self.predictor, RankerPredictor) else None
        svd = getattr(self.ranker.embedder, "_svd", None) if self.ranker is not None else None
        if svd is not None:
            # the text model's SVD matrix in float64: the tf-idf rows are float64, so every embed otherwise
            # converts the whole 64 x 65,536 matrix first (the same vectors, bit for bit; measured: docs/slack-app.md)
            svd.components_ = svd.components_.astype(np.float64)
        self.messages = MessageRules(self.rules)  # one in-memory DuckDB, reused for every message

    def data_age_days(self, now: float) -> float | None:
        """Days from the newest message the ranker's live state has read (the training data's end, then
        what the app stored since) to ``now``; None for a model without such a state (an LLM)."""
        state = getattr(self.ranker, "state", None)
        last = getattr(state, "now", None)
        if last is None or not np.isfinite(last):
            return None
        return max(0.0, (now - float(last)) / 86400.0)

    def check(self, event: dict, bot_user_ids: set[str] | frozenset[str]) -> CheckedMessage:
        """A Slack message event through the dataset's rules (int_slack__messages_cleaned's SQL): why it
        is left out, else its cleaned text (no e-mail, phone, link or code reaches a model) and mentions."""
        return check_event(self.messages, event, bot_user_ids, self.user_names)

    def clean(self, raw_text: str) -> str:
        """A message cleaned as the training prompts were."""
        return self.messages.clean(raw_text, self.user_names)

    def observe(self, messages: Sequence[tuple[LiveMessage, str]]) -> None:
        """Feed messages (each with its conversation id; in time order) into the ranker's state."""
        if self.ranker is None or not messages:
            return
        from beep.ranker.state import Message

        state, embedder = self.ranker.state, self.ranker.embedder
        assert state is not None and embedder is not None
        vectors = embedder.embed([m.clean_text for m, _ in messages])
        for (m, conversation_id), vector in zip(messages, vectors):
            state.observe(Message(
                conversation_id=conversation_id, position=0, at=m.at, user=state.intern(m.user_id),
                channel=m.channel_id, vector=vector,
                mentions=tuple(state.intern(u) for u in m.mentioned_user_ids if u and u != m.user_id),
                text_chars=len(m.clean_text), has_question="?" in m.clean_text,
            ))

    def rank(self, conv: Conversation, channel_name: str | None = None) -> Ranked:
        """The people to alert about ``conv`` as of its last message, best first."""
        row = model_row(conv, self.prompt_settings, channel_name)
        output = self.predictor.predict([row])[0]
        if output.people:
            people = tuple((u, float(p), r) for u, p, r in output.people if u and p is not None)
        else:  # a label model: its labels read as people
            people = tuple((u, float(p), r) for u, p, r in people_of_labels(self.export, output.ranked) if p is not None)
        return Ranked(people=people, nobody=output.nobody)
