"""Clean text given to `beep predict` the way the dbt macro ``clean_slack_text`` cleaned the training
prompts, so a prediction prompt looks like a training one and — above all — nothing the cleaning
step removes (e-mail addresses, phone numbers, links, code) is sent to a provider.

The rules are the macro's (macros/clean_slack_text.sql), with the same regular expressions run by
DuckDB's own ``regexp_replace`` (the same engine dbt used) and the same switches (dbt vars
clean_code, clean_links, mask_pii, mention_style, clean_channel_ids, clean_emoji). Keep the two in
step: a test compares them on the same text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml


def project_vars(project_dir: Path, overrides: Mapping[str, object] | None = None) -> dict[str, object]:
    """dbt_project.yml's vars, with ``overrides`` (e.g. the --vars a build ran with) on top."""
    try:
        variables = (yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}).get("vars", {}) or {}
    except (OSError, yaml.YAMLError):
        variables = {}
    return {**variables, **(overrides or {})}


@dataclass(frozen=True)
class CleaningRules:
    """The dbt vars that switch the cleaning rules."""

    clean_code: bool = True
    clean_links: bool = True
    mask_pii: bool = True
    mention_style: str = "name"
    clean_channel_ids: bool = True
    clean_emoji: bool = True
    prompt_suffix: str = "\n\n###\n\n"

    @classmethod
    def from_project(cls, project_dir: Path, overrides: Mapping[str, object] | None = None) -> "CleaningRules":
        """The project's vars, with ``overrides`` (the vars the dataset was built with) on top."""
        variables = project_vars(project_dir, overrides)
        defaults = cls()
        return cls(**{name: variables.get(name, getattr(defaults, name)) for name in cls.__dataclass_fields__})


def _steps(rules: CleaningRules) -> list[tuple[str, str]]:
    """(pattern, replacement) pairs in the macro's order (mentions are handled separately)."""
    steps: list[tuple[str, str]] = []
    if rules.clean_code:
        steps += [(r"(?s)```.*?(```|$)", " "), (r"`[^`\n]*`", " ")]
    if rules.clean_links:
        steps += [
            (r"<(?:https?|ftp|mailto):[^>|]*\|([^>]*)>", r"\1"),
            (r"<(?:https?|ftp|mailto):[^>]*>", " "),
            (r"(?:https?|ftp)://[^\s<>]+", " "),
        ]
    if rules.mask_pii:
        steps += [
            (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "[email]"),
            (r"(?:\+\d{1,3}(?:[\s.-]?\(?\d{2,6}\)?){2,4}|\(\d{2,4}\)\s?\d{3,4}[\s.-]\d{3,4}\b|\b\d{3}[.-]\d{3,4}[.-]\d{4}\b)", "[phone]"),
        ]
    steps.append((r"<@([UW][A-Z0-9]+)\|[^>]*>", r"<@\1>"))
    return steps


#: Pictographs removed, except a ZWJ sequence (👩‍💻: emoji joined by U+200D), kept whole (the macro's rule).
_EMOJI = (r"(\p{So}[\x{fe0f}\x{1f3fb}-\x{1f3ff}]*(?:\x{200d}\p{So}[\x{fe0f}\x{1f3fb}-\x{1f3ff}]*)+)"
          r"|[\p{So}\x{200d}\x{fe0f}\x{20e3}\x{1f3fb}-\x{1f3ff}]", r"\1")


def _after_mentions(rules: CleaningRules) -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = [(r"<@[^>]*>", " ")]
    if rules.clean_channel_ids:
        steps += [(r"<#[A-Z0-9]+\|([^>]+)>", r"#\1"), (r"<#[^>]*>", " ")]
    steps += [
        (r"<!subteam\^[A-Z0-9]+\|(@?)([^>]*)>", r"@\2"),
        (r"<!(here|channel|everyone)(?:\|[^>]*)?>", r"@\1"),
        (r"<![^>]*>", " "),
    ]
    if rules.clean_emoji:
        steps += [(r"(^|[^A-Za-z0-9])(?::[a-z+][a-z0-9_+'-]*:)+", r"\1 "), _EMOJI]
    return steps


def _apply(con: duckdb.DuckDBPyConnection, text: str, steps: list[tuple[str, str]]) -> str:
    expr = "?"
    params: list[str] = [text]
    for pattern, replacement in steps:
        expr = f"regexp_replace({expr}, ?, ?, 'g')"
        params += [pattern, replacement]
    row = con.execute(f"select {expr}", params).fetchone()
    return str(row[0]) if row else text


def clean_message(text: str, rules: CleaningRules, user_names: Mapping[str, str] | None = None,
                  con: duckdb.DuckDBPyConnection | None = None) -> str:
    """One message cleaned like a training prompt's message (``con``: an in-memory DuckDB connection
    to reuse, for callers that clean many messages, e.g. the Slack app; else one is opened)."""
    own = con is None
    con = con or duckdb.connect()
    try:
        t = _apply(con, text or "", _steps(rules))
        ids = [r[0] for r in con.execute("select unnest(list_distinct(regexp_extract_all(?, '<@([UW][A-Z0-9]+)>', 1)))", [t]).fetchall()]
        if rules.mention_style == "name":
            for uid in sorted(ids):
                t = t.replace(f"<@{uid}>", "@" + (user_names or {}).get(uid, "someone"))
        t = _apply(con, t, _after_mentions(rules))
        t = t.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        t = _apply(con, t, [(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]", "")])
        core = rules.prompt_suffix.strip()
        if core:
            t = t.replace(core, " ")
        t = _apply(con, t, [(r"[ \t\r]+", " "), (r" ?\n ?", "\n"), (r"\n{3,}", "\n\n")])
        return t.strip(" ")  # SQL trim(): spaces only, like the macro
    finally:
        if own:
            con.close()


_RAW_MENTION = r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>"


def mentioned_user_ids(messages: Sequence[str], user_names: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Who the raw ``messages`` (oldest first) @-mention, most recent message first, each once.

    Like the training data's ``mentioned_user_ids``: Slack's ``<@U123>`` / ``<@U123|name>``. A person
    typing a conversation by hand writes ``@marco`` instead, so ``@`` followed by a known user name
    (case-insensitive, not inside an e-mail address) counts too.
    """
    names = sorted(((n.lower(), uid) for uid, n in (user_names or {}).items() if n), key=lambda x: -len(x[0]))
    by_name = dict(names)
    typed = (
        re.compile(r"(?<![\w.@])@(" + "|".join(re.escape(n) for n, _ in names) + r")(?![\w@]|\.\w)", re.IGNORECASE)
        if names else None
    )
    raw = re.compile(_RAW_MENTION)
    out: list[str] = []
    for message in reversed(list(messages)):
        found = [(m.start(), m.group(1)) for m in raw.finditer(message)]
        if typed is not None:
            found += [(m.start(), by_name[m.group(1).lower()]) for m in typed.finditer(message)]
        for _, uid in sorted(found):
            if uid not in out:
                out.append(uid)
    return tuple(out)
