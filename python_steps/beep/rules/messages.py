"""The message rules run live: which messages count, their cleaned text and their mentions.

The SQL is the dbt models' own: :class:`CleaningRules` renders the macros
``message_exclusion_reason``, ``message_final_exclusion_reason`` (macros/message_rules.sql),
``clean_slack_text`` and ``slack_mentioned_user_ids`` with the project's vars, once, and
:class:`MessageRules` runs them in an in-memory DuckDB on each message (DuckDB is the engine the
models ran on, so the regular expressions mean the same). Nothing here restates a rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from beep.rules.dbt_macros import MacroRenderer
from beep.rules.project_vars import ProjectVars, load_project_vars


@dataclass(frozen=True)
class CleaningRules:
    """The vars a dataset was built with and the SQL of its message rules under them."""

    vars: ProjectVars
    #: SQL over the columns message_at, copy_number, subtype, user_id, bot_id, is_bot, raw_text
    reason_sql: str
    #: SQL over raw_reason and clean_text
    final_reason_sql: str
    #: SQL over raw_text and user_names (a MAP of user id -> display name)
    clean_sql: str
    #: SQL over raw_text
    mentions_sql: str

    @classmethod
    def from_project(cls, project_dir: Path, overrides: Mapping[str, object] | None = None) -> CleaningRules:
        """The project's rules under its vars, with ``overrides`` (the vars the dataset was built with) on top."""
        return cls.from_vars(load_project_vars(project_dir, overrides), project_dir)

    @classmethod
    def from_vars(cls, variables: ProjectVars, project_dir: Path) -> CleaningRules:
        """The project's rules under ``variables`` (:func:`beep.rules.project_vars.load_project_vars`)."""
        macros = MacroRenderer(project_dir, variables.values)
        return cls(
            vars=variables,
            reason_sql=macros.call("message_exclusion_reason", "message_at", "copy_number", "subtype", "user_id",
                                   "bot_id", "is_bot", "raw_text"),
            final_reason_sql=macros.call("message_final_exclusion_reason", "raw_reason", "clean_text"),
            clean_sql=macros.call("clean_slack_text", "raw_text", "user_names"),
            mentions_sql=macros.call("slack_mentioned_user_ids", "raw_text"),
        )

    # the switches, for callers that report them
    @property
    def clean_code(self) -> bool:
        return self.vars.clean_code

    @property
    def mask_pii(self) -> bool:
        return self.vars.mask_pii

    @property
    def mention_style(self) -> str:
        return self.vars.mention_style


@dataclass(frozen=True)
class CheckedMessage:
    """A raw message after the dataset's rules: why it is left out (None: usable), and if usable its
    cleaned text and the users its raw text @-mentions (in order, each once)."""

    exclusion_reason: str | None
    clean_text: str | None
    mentioned_user_ids: tuple[str, ...]


class MessageRules:
    """Runs :class:`CleaningRules` on messages, one DuckDB query each, on its own in-memory
    connection (or ``con``). Not for several threads at once."""

    def __init__(self, rules: CleaningRules, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.rules = rules
        self._own = con is None
        self.con = con if con is not None else duckdb.connect()
        self._names: dict[str, str | None] | None = None
        self.con.execute("create or replace temp table beep_rules_user_names (names map(varchar, varchar))")
        self._set_names({})
        self._check_sql = f"""
            with given as (
                select cast(? as double) as message_at, 1 as copy_number, cast(? as varchar) as subtype,
                       cast(? as varchar) as user_id, cast(? as varchar) as bot_id, cast(? as boolean) as is_bot,
                       cast(? as varchar) as raw_text
            ),
            classified as (
                select given.*, {rules.reason_sql} as raw_reason from given
            ),
            cleaned as (
                select
                    raw_reason,
                    case when raw_reason is null then {rules.clean_sql} end as clean_text,
                    case when raw_reason is null then {rules.mentions_sql} end as mentioned
                from classified
                cross join (select names as user_names from beep_rules_user_names)
            )
            select {rules.final_reason_sql}, nullif(clean_text, ''), mentioned from cleaned
        """
        self._clean_sql = f"""
            select {rules.clean_sql}
            from (select cast(? as varchar) as raw_text)
            cross join (select names as user_names from beep_rules_user_names)
        """

    def close(self) -> None:
        if self._own:
            self.con.close()

    def _set_names(self, user_names: Mapping[str, str | None]) -> None:
        if self._names == user_names:
            return
        self._names = dict(user_names)
        ids = list(self._names)
        self.con.execute("delete from beep_rules_user_names")
        self.con.execute("insert into beep_rules_user_names select map(cast(? as varchar[]), cast(? as varchar[]))",
                         [ids, [self._names[i] for i in ids]])

    def check(self, *, ts: str | None, subtype: str | None, user_id: str | None, bot_id: str | None,
              is_bot: bool, text: str | None, user_names: Mapping[str, str | None] | None = None) -> CheckedMessage:
        """One raw message (a Slack event's fields) through the dataset's rules."""
        self._set_names(user_names or {})
        at = _epoch(ts)
        row = self.con.execute(self._check_sql, [at, subtype, user_id, bot_id, is_bot, text]).fetchone()
        assert row is not None
        reason, clean, mentioned = row
        return CheckedMessage(reason, clean, tuple(mentioned or ()))

    def mentioned_ids(self, text: str) -> tuple[str, ...]:
        """The users a raw Slack text @-mentions (``<@U123>``), in order, each once."""
        row = self.con.execute(f"select {self.rules.mentions_sql} from (select cast(? as varchar) as raw_text)",
                               [text]).fetchone()
        return tuple(row[0] or ()) if row else ()

    def clean(self, text: str, user_names: Mapping[str, str | None] | None = None) -> str:
        """``text`` cleaned as the dataset cleans a usable message's text ('' when nothing is left)."""
        self._set_names(user_names or {})
        row = self.con.execute(self._clean_sql, [text]).fetchone()
        return str(row[0]) if row and row[0] is not None else ""


def _epoch(ts: str | None) -> float | None:
    """A Slack ts as the message time the models read (None when it is missing or not a number)."""
    try:
        return float(ts) if ts else None
    except ValueError:
        return None


def clean_message(text: str, rules: CleaningRules, user_names: Mapping[str, str | None] | None = None,
                  con: duckdb.DuckDBPyConnection | None = None) -> str:
    """One message cleaned like a training prompt's message (``con``: a DuckDB connection to reuse)."""
    runner = MessageRules(rules, con)
    try:
        return runner.clean(text or "", user_names)
    finally:
        runner.close()


def mentioned_user_ids(messages: Sequence[str], user_names: Mapping[str, str] | None,
                       rules: MessageRules) -> tuple[str, ...]:
    """Who the raw ``messages`` (oldest first) @-mention, most recent message first, each once.

    Slack's ``<@U123>`` / ``<@U123|name>`` as the dataset reads them (the macro
    ``slack_mentioned_user_ids``, run by ``rules``). A person typing a
    conversation by hand writes ``@marco`` instead, so ``@`` followed by a known user name
    (case-insensitive, not inside an e-mail address) counts too: `beep predict --text` only.
    """
    names = sorted(((n.lower(), uid) for uid, n in (user_names or {}).items() if n), key=lambda x: -len(x[0]))
    by_name = dict(names)
    typed = (
        re.compile(r"(?<![\w.@])@(" + "|".join(re.escape(n) for n, _ in names) + r")(?![\w@]|\.\w)", re.IGNORECASE)
        if names else None
    )
    out: list[str] = []
    for message in reversed(list(messages)):
        slack_ids = rules.mentioned_ids(message)
        found = [(message.find(f"<@{uid}"), uid) for uid in slack_ids]
        if typed is not None:
            found += [(m.start(), by_name[m.group(1).lower()]) for m in typed.finditer(message)]
        for _, uid in sorted(found):
            if uid not in out:
                out.append(uid)
    return tuple(out)
