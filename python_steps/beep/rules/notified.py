"""Whom Slack notifies about a conversation by itself: the people @-mentioned in its last messages.

One rule, read by the app's alert policy (:mod:`beep.slack.alerts`, which never alerts them), the alert
replay of `beep evaluate`, and `beep predict --exclude-participants`."""

from __future__ import annotations

from collections.abc import Iterable


def notified_by_slack(mentions: Iterable[Iterable[str]]) -> frozenset[str]:
    """The people Slack notifies about a conversation by itself: those @-mentioned in its last
    messages (``mentions``: each message's mentioned ids, the window the model reads). The same rule
    live (`beep slack serve`) and in the alert replay of `beep evaluate`."""
    return frozenset(m for ms in mentions for m in ms if m)
