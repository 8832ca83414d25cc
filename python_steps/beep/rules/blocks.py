"""A message's words when its ``text`` is empty but its ``blocks`` hold them.

Slack repeats a message's text as rich text in ``blocks``; most exports and events carry both, but a
message can come with ``"text": ""`` and the words only in its blocks (slack-export-format.md:
"text can be empty (file-only or blocks-only messages)"). Such a message would be excluded as
``empty_text`` and its words lost. :func:`text_of_blocks` writes the blocks back as Slack's own
markup (``<@U123>``, ``<https://…|label>``, ``:emoji:``, ``` fences), so the dataset's cleaning
(links, mentions, emoji, code) reads it exactly as it reads ``text``.

One rule for both paths: `beep ingest` fills the empty text of such messages in its prepared copy
of the export (counted as ``text_from_blocks``) before dbt reads it, and the Slack app does the same
to a message event before the dataset's rules check it (:func:`event_text`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["event_text", "text_of_blocks"]


def _element(el: Mapping[str, Any]) -> str:
    """One inline element of a rich_text section, as Slack markup."""
    kind = el.get("type")
    if kind == "text":
        text = str(el.get("text") or "")
        style = el.get("style") or {}
        return f"`{text}`" if isinstance(style, Mapping) and style.get("code") else text
    if kind == "link":
        url, label = str(el.get("url") or ""), el.get("text")
        return f"<{url}|{label}>" if label else f"<{url}>"
    if kind == "user":
        return f"<@{el.get('user_id')}>" if el.get("user_id") else ""
    if kind == "channel":
        return f"<#{el.get('channel_id')}>" if el.get("channel_id") else ""
    if kind == "usergroup":
        return f"<!subteam^{el.get('usergroup_id')}>" if el.get("usergroup_id") else ""
    if kind == "broadcast":
        return f"<!{el.get('range')}>" if el.get("range") else ""
    if kind == "emoji":
        return f":{el.get('name')}:" if el.get("name") else ""
    if kind == "date":
        return str(el.get("fallback") or "")
    return str(el.get("text") or "")


def _inline(elements: Any) -> str:
    return "".join(_element(el) for el in elements if isinstance(el, Mapping)) if isinstance(elements, list) else ""


def _rich_text_part(part: Mapping[str, Any]) -> str:
    """A rich_text block's part: a section, a list, a quote or a preformatted (code) block."""
    kind = part.get("type")
    elements = part.get("elements")
    if kind == "rich_text_section":
        return _inline(elements)
    if kind == "rich_text_preformatted":
        return f"```{_inline(elements)}```"
    if kind == "rich_text_quote":
        return "\n".join(f"> {line}" for line in _inline(elements).split("\n"))
    if kind == "rich_text_list":
        items = [_rich_text_part(item) for item in elements if isinstance(item, Mapping)] if isinstance(elements, list) else []
        return "\n".join(f"• {item}" for item in items)
    return _inline(elements)


def text_of_blocks(blocks: Any) -> str:
    """The words of ``blocks`` as Slack markup: rich_text blocks (sections, lists, quotes, code) and the
    text of section blocks; other blocks (images, dividers, actions) hold no words. "" when none."""
    if not isinstance(blocks, list):
        return ""
    parts: list[str] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "rich_text":
            inner = block.get("elements")
            if isinstance(inner, list):
                parts.extend(_rich_text_part(part) for part in inner if isinstance(part, Mapping))
        elif block.get("type") in ("section", "header"):
            text = block.get("text")
            if isinstance(text, Mapping) and text.get("text"):
                parts.append(str(text["text"]))
    return "\n".join(p for p in parts if p).strip("\n")


def event_text(message: Mapping[str, Any]) -> str | None:
    """A message's text: its ``text``, or the words of its ``blocks`` when the text is missing or empty
    (None when neither holds any)."""
    text = message.get("text")
    if isinstance(text, str) and text != "":
        return text
    rebuilt = text_of_blocks(message.get("blocks"))
    return rebuilt if rebuilt.strip() else (text if isinstance(text, str) else None)
