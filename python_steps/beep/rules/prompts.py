"""Prompts and example ids as models/marts/training_examples.sql builds them, for the live path.

A prompt is the cleaned text of a conversation's previous ``context_messages`` messages, oldest
first, joined by a blank line, cut to the most recent ``max_prompt_chars`` characters, leading
spaces trimmed (SQL ltrim), ending with ``prompt_suffix``. The vars come from
:func:`beep.rules.project_vars.load_project_vars` (dbt_project.yml and a build's overrides), never
from defaults here; tests/python/test_rules_parity.py holds these prompts and ids equal to the
model's, row for row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from beep.rules.project_vars import ProjectVars, load_project_vars


@dataclass(frozen=True)
class PromptSettings:
    """How training prompts were built (dbt vars), so a prediction prompt looks the same."""

    context_messages: int
    max_prompt_chars: int
    prompt_suffix: str
    conversation_gap_minutes: float
    # the training prompts left out the responder's own messages (the seed's rule): a prediction
    # cannot, since nobody knows yet who will answer, so its prompts then differ from the training ones
    context_excludes_responder: bool

    @classmethod
    def from_vars(cls, variables: ProjectVars) -> PromptSettings:
        return cls(
            context_messages=variables.context_messages,
            max_prompt_chars=variables.max_prompt_chars,
            prompt_suffix=variables.prompt_suffix,
            conversation_gap_minutes=variables.conversation_gap_minutes,
            context_excludes_responder=variables.context_excludes_responder,
        )

    @classmethod
    def from_project(cls, project_dir: Path, overrides: Mapping[str, object] | None = None) -> PromptSettings:
        """The project's vars, with ``overrides`` (the vars the dataset was built with) on top."""
        return cls.from_vars(load_project_vars(project_dir, overrides))

    def form_warnings(self) -> list[str]:
        """What a user must know when a prediction prompt cannot take the form of the training ones."""
        if not self.context_excludes_responder:
            return []
        return [
            ("the dataset was built with context_excludes_responder=true, so the model was trained on prompts "
            "of another form: without the responder's own messages. A prediction cannot leave them out (who "
            f"will answer is not known yet), so its prompt holds the last {self.context_messages} messages of "
            "everyone, and the model's scores are likely worse than its evaluation says. Rebuild with "
            "context_excludes_responder=false (the default) and retrain for prompts of the same form.")
        ]

    def prompt(self, messages: Sequence[str]) -> str:
        """Cleaned messages (oldest first) as a training prompt: blank-line joined (concat_ws skips
        missing ones), the most recent ``max_prompt_chars`` kept, leading spaces trimmed, the suffix
        exactly once (cleaning removed the suffix's text from every message; a caller's raw text
        loses it here)."""
        text = "\n\n".join(m for m in messages if m and m.strip())
        text = text.replace(self.prompt_suffix, "\n\n")
        return text[-self.max_prompt_chars :].lstrip(" ") + self.prompt_suffix


def example_id(channel_folder: str, conversation_id: str, ts: str) -> str:
    """training_examples.example_id: dbt.hash (DuckDB's md5 of the text) of channel|conversation|ts."""
    return hashlib.md5(f"{channel_folder}|{conversation_id}|{ts}".encode()).hexdigest()
