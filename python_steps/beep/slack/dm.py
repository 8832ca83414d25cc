"""The alert DM: a link to the conversation, a one-line reason, and the two feedback buttons."""

from __future__ import annotations

#: The buttons' action ids (the app's interactivity handlers listen to them) and what they store.
USEFUL = "beep_useful"
NOT_FOR_ME = "beep_not_for_me"
FEEDBACK = {USEFUL: "useful", NOT_FOR_ME: "not_for_me"}


def reason_line(reason: str | None, probability: float, model: str) -> str:
    why = reason or "the model ranks you among the likely people to answer"
    return f"Why: {why} ({probability:.0%} likely, by {model})."


def alert_message(*, alert_id: str, permalink: str | None, channel_name: str | None, channel_id: str,
                  reason: str | None, probability: float, model: str) -> tuple[str, list[dict]]:
    """(fallback text, blocks) of an alert DM."""
    where = f"#{channel_name}" if channel_name else f"<#{channel_id}>"
    link = f"<{permalink}|a conversation in {where}>" if permalink else f"a conversation in {where}"
    headline = f"You may want to see {link}."
    why = reason_line(reason, probability, model)
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": why}]},
        {
            "type": "actions",
            "block_id": "beep_feedback",
            "elements": [
                {"type": "button", "action_id": USEFUL, "value": alert_id, "style": "primary",
                 "text": {"type": "plain_text", "text": "useful"}},
                {"type": "button", "action_id": NOT_FOR_ME, "value": alert_id,
                 "text": {"type": "plain_text", "text": "not for me"}},
            ],
        },
    ]
    return f"{headline} {why}", blocks


def thanks_blocks(original: list[dict], feedback: str) -> list[dict]:
    """The DM after a press: the buttons replaced by what was noted."""
    kept = [b for b in original if b.get("type") != "actions"]
    said = "useful" if feedback == "useful" else "not for you"
    kept.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Thanks: noted as {said}."}]})
    return kept
