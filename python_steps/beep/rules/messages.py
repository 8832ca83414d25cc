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
            # every rule, without the batch shortcuts (the same text; a one-message query is 3x faster)
            clean_sql=macros.call("duckdb__clean_slack_text_every_rule", "raw_text", "user_names"),
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


#: The columns a message gives the rules (the names the rendered macros read).
_EVENT_COLUMNS = ("message_at double, copy_number integer, subtype varchar, user_id varchar, bot_id varchar, "
                  "is_bot boolean, raw_text varchar")


class MessageRules:
    """Runs :class:`CleaningRules` on messages in its own in-memory DuckDB: one query per message
    (:meth:`check`, the Slack app's), or one for many (:meth:`check_many`, the same SQL over a table,
    for a replay). Not for several threads at once.

    The rules become DuckDB macros once, so a message's query is short; the optimizer is off on this
    connection (a one-row query gains nothing from it, and it cost most of the time: see
    docs/rules.md for the latency measured)."""

    def __init__(self, rules: CleaningRules) -> None:
        self.rules = rules
        self.con = duckdb.connect()
        self.con.execute("pragma disable_optimizer")
        self.con.execute(f"create temp macro beep_message_reason(message_at, copy_number, subtype, user_id, bot_id, "
                         f"is_bot, raw_text) as ({rules.reason_sql})")
        self.con.execute(f"create temp macro beep_clean_text(raw_text, user_names) as ({rules.clean_sql})")
        self.con.execute(f"create temp macro beep_mentioned_ids(raw_text) as ({rules.mentions_sql})")
        self.con.execute(f"create temp macro beep_final_reason(raw_reason, clean_text) as ({rules.final_reason_sql})")
        self.con.execute("create temp table beep_rules_user_names (names map(varchar, varchar))")
        self.con.execute(f"create temp table beep_rules_events (n integer, {_EVENT_COLUMNS})")
        self._names: dict[str, str | None] | None = None
        self._set_names({})

    @staticmethod
    def _rules_over(messages: str) -> str:
        """The rules over a relation of messages (columns n, then :data:`_EVENT_COLUMNS`), as
        int_slack__messages_cleaned applies them: the reason, then for usable messages the cleaned text
        and the mentions, then the final reason."""
        return f"""
            with classified as (
                select n, raw_text,
                       beep_message_reason(message_at, copy_number, subtype, user_id, bot_id, is_bot, raw_text)
                           as raw_reason
                from {messages}
            ),
            cleaned as (
                select
                    n,
                    raw_reason,
                    case when raw_reason is null then beep_clean_text(raw_text, names) end as clean_text,
                    case when raw_reason is null then beep_mentioned_ids(raw_text) end as mentioned
                from classified
                cross join beep_rules_user_names
            )
            select n, beep_final_reason(raw_reason, clean_text), nullif(clean_text, ''), mentioned
            from cleaned
            order by n
        """

    def close(self) -> None:
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
        given = ("(select 0 as n, cast(? as double) as message_at, 1 as copy_number, cast(? as varchar) as subtype,"
                 " cast(? as varchar) as user_id, cast(? as varchar) as bot_id, cast(? as boolean) as is_bot,"
                 " cast(? as varchar) as raw_text)")
        row = self.con.execute(self._rules_over(given), [_epoch(ts), subtype, user_id, bot_id, is_bot, text]).fetchone()
        assert row is not None
        _, reason, clean, mentioned = row
        return CheckedMessage(reason, clean, tuple(mentioned or ()))

    def check_many(self, messages: Sequence[Mapping[str, object]],
                   user_names: Mapping[str, str | None] | None = None) -> list[CheckedMessage]:
        """Many raw messages (dicts with the keys of :meth:`check`) through the same SQL in one query,
        each as :meth:`check` would see it on its own."""
        self._set_names(user_names or {})
        self.con.execute("delete from beep_rules_events")
        # one insert of column lists, zipped by unnest: far faster than executemany's row-by-row
        # inserts (measured: docs/benchmarks.md, "Measurements that were code comments")
        self.con.execute(
            "insert into beep_rules_events select unnest(cast(? as integer[])), unnest(cast(? as double[])), 1,"
            " unnest(cast(? as varchar[])), unnest(cast(? as varchar[])), unnest(cast(? as varchar[])),"
            " unnest(cast(? as boolean[])), unnest(cast(? as varchar[]))",
            [list(range(len(messages))), [_epoch(_text(m.get("ts"))) for m in messages],
             *([_text(m.get(key)) for m in messages] for key in ("subtype", "user_id", "bot_id")),
             [bool(m.get("is_bot")) for m in messages], [_text(m.get("text")) for m in messages]])
        rows = self.con.execute(self._rules_over("beep_rules_events")).fetchall()
        return [CheckedMessage(reason, clean, tuple(mentioned or ())) for _, reason, clean, mentioned in rows]

    def mentioned_ids(self, text: str) -> tuple[str, ...]:
        """The users a raw Slack text @-mentions (``<@U123>``), in order, each once."""
        row = self.con.execute("select beep_mentioned_ids(cast(? as varchar))", [text]).fetchone()
        return tuple(row[0] or ()) if row else ()

    def clean(self, text: str, user_names: Mapping[str, str | None] | None = None) -> str:
        """``text`` cleaned as the dataset cleans a usable message's text ('' when nothing is left)."""
        self._set_names(user_names or {})
        row = self.con.execute("select beep_clean_text(cast(? as varchar), names) from beep_rules_user_names",
                               [text]).fetchone()
        return str(row[0]) if row and row[0] is not None else ""


def _text(value: object) -> str | None:
    """A message field as the text column the rules read (None stays None)."""
    return None if value is None else str(value)


def _epoch(ts: str | None) -> float | None:
    """A Slack ts as the message time the models read (None when it is missing or not a number)."""
    try:
        return float(ts) if ts else None
    except ValueError:
        return None


def clean_message(text: str, rules: CleaningRules, user_names: Mapping[str, str | None] | None = None) -> str:
    """One message cleaned like a training prompt's message (callers cleaning many keep a :class:`MessageRules`)."""
    runner = MessageRules(rules)
    try:
        return runner.clean(text or "", user_names)
    finally:
        runner.close()


def mentioned_user_ids(messages: Sequence[str], user_names: Mapping[str, str] | None,
                       rules: MessageRules, handles: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Who the raw ``messages`` (oldest first) @-mention, most recent message first, each once.

    Slack's ``<@U123>`` / ``<@U123|name>`` as the dataset reads them (the macro
    ``slack_mentioned_user_ids``, run by ``rules``). A person typing a
    conversation by hand writes ``@marco`` instead, so ``@`` followed by a known user name
    (case-insensitive, not inside an e-mail address) counts too, as does ``@`` and a user's handle
    (users.json's ``name``, ``handles``): `beep predict --text` only.
    """
    pairs = [*((n.lower(), uid) for uid, n in (user_names or {}).items() if n),
             *((h.lower(), uid) for uid, h in (handles or {}).items() if h)]
    names = sorted(dict(reversed(pairs)).items(), key=lambda x: -len(x[0]))  # a display name wins over a handle
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
