"""What `beep slack serve` would do about one conversation: the app's own policy
(:func:`beep.slack.alerts.decide`) applied to a prediction of `beep predict`, offline.

The app alerts the people the model ranks at or above its threshold (the model's operating point,
chosen by `beep evaluate`'s alert replay, unless told otherwise) who are not the author, not in the
conversation, not notified by Slack itself (mentioned in its last messages), not bots nor
deactivated. Two rules need the app's memory and are not applied here: once per conversation and
person, and at most ``max_alerts_per_hour`` a person; quiet hours need each person's time zone,
which an export does not hold (the alert replay leaves them out too).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from beep.live.predict import Prediction
from beep.slack.alerts import AlertPolicy, Ledger, Person, decide, notified_by_slack

#: What the preview cannot apply, said with it.
NOT_APPLIED = ("once per conversation and person, and the hourly limit (they need the app's memory of what it "
               "sent); quiet hours (an export holds no time zones)")


def people_in_duckdb(con: duckdb.DuckDBPyConnection, user_ids: Sequence[str] | None = None) -> dict[str, Person]:
    """Who the people of the export are (all, or ``user_ids``), as the policy asks (bots, deactivated):
    stg_slack__users, or nobody when it is not built. Without a time zone: the export holds none."""
    try:
        sql = ("select user_id, user_name, coalesce(is_bot, false), coalesce(is_deleted, false) "
               "from stg_slack__users")
        rows = (con.execute(sql).fetchall() if user_ids is None
                else con.execute(sql + " where user_id in (select unnest(?))", [list(user_ids)]).fetchall())
    except duckdb.Error:
        return {}
    return {str(u): Person(str(u), n, bool(b), bool(d)) for u, n, b, d in rows}


@dataclass(frozen=True)
class AppPreview:
    """The app's decision about one conversation, as far as it can be made offline."""

    min_probability: float
    threshold_source: str  # where the threshold comes from, in words
    #: the people it would DM, best first: user_id, user_name, probability, reason
    alerts: list[dict] = field(default_factory=list)
    #: the people at or above the threshold it would not DM: user_id, user_name, probability, why
    suppressed: list[dict] = field(default_factory=list)
    #: people at or above the threshold who are never candidates, by why: the author, people in the
    #: conversation, people Slack notifies itself (user_id, user_name, probability)
    not_candidates: dict[str, list[dict]] = field(default_factory=dict)
    participants_known: bool = True  # False for --text: who wrote in it is not known
    not_applied: str = NOT_APPLIED

    def as_json(self) -> dict:
        return {
            "min_probability": self.min_probability,
            "threshold_source": self.threshold_source,
            "would_alert": [dict(a) for a in self.alerts],
            "suppressed": [dict(s) for s in self.suppressed],
            "not_candidates": {why: [dict(p) for p in people] for why, people in self.not_candidates.items()},
            "participants_known": self.participants_known,
            "not_applied": self.not_applied,
        }


def preview(prediction: Prediction, people: Mapping[str, Person], *, min_probability: float, threshold_source: str,
            now: float | None = None, alert_notified: bool = False) -> AppPreview:
    """The alerts the app would send about ``prediction``'s conversation at ``min_probability``
    (see the module docstring), with who was above it and why they get none. ``alert_notified``:
    as serve's --alert-mentioned, people Slack notifies are alerted too."""
    conv = prediction.conversation
    ranked: Sequence[tuple[str, float, str | None]] = [
        (u, float(p), r) for u, p, r in prediction.ranked_people if u is not None and p is not None]
    author = next((a for a, *_ in reversed(conv.messages) if a), "") if conv.messages else ""
    participants = set(conv.prior_participant_ids)
    notified = notified_by_slack([conv.mentioned_user_ids])
    policy = AlertPolicy(min_probability=min_probability, quiet_hours=None, alert_notified=alert_notified)
    decisions = decide(ranked, conversation_id=conv.conversation_id or "predict", participants=participants,
                       author=author, people=people, ledger=Ledger(), policy=policy,
                       now=time.time() if now is None else now, notified=notified)
    def name(user_id: str) -> str | None:
        person = people.get(user_id)
        return person.name if person is not None else None

    alerts = [{"user_id": d.person_id, "user_name": name(d.person_id), "probability": d.probability,
               "reason": d.reason} for d in decisions if d.status == "sending"]
    suppressed = [{"user_id": d.person_id, "user_name": name(d.person_id), "probability": d.probability,
                   "why": d.suppressed_reason or d.status} for d in decisions if d.status != "sending"]
    not_candidates: dict[str, list[dict]] = {}
    for u, p, _r in ranked:
        if p < min_probability:
            continue
        why = ("author" if u == author else "in the conversation" if u in participants
               else "notified by Slack" if u in notified and not alert_notified else None)
        if why:
            not_candidates.setdefault(why, []).append({"user_id": u, "user_name": name(u), "probability": p})
    return AppPreview(min_probability, threshold_source, alerts, suppressed, not_candidates,
                      participants_known=conv.source != "text")
