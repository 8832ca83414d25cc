"""`beep slack check`: are the two tokens valid, and does the bot token have every scope the app uses?

The bot token is checked with ``auth.test``; its scopes are the ``x-oauth-scopes`` header Slack sends
with every Web API answer. The app token is checked with ``apps.connections.open`` (the URL it returns
is not used). Each missing scope is named with what it is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

#: The bot scopes the app uses (slack/manifest.yaml) and why.
REQUIRED_SCOPES: dict[str, str] = {
    "channels:history": "read messages in the public channels the app is in (message.channels events)",
    "groups:history": "read messages in the private channels the app is in (message.groups events)",
    "channels:read": "channel names for the alert's reason (conversations.info)",
    "chat:write": "post the alert DMs and update them after a button press",
    "im:write": "open the DM to the person alerted (conversations.open)",
    "users:read": "skip bots and deactivated people, and read each person's time zone (users.info, users.list)",
    "commands": "the /beep off, /beep on and /beep status command",
}


@dataclass
class CheckResult:
    team: str | None = None
    bot_user: str | None = None
    scopes: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems


def check(bot_client: WebClient, app_token: str) -> CheckResult:
    result = CheckResult()
    try:
        auth = bot_client.auth_test()
        result.team, result.bot_user = auth.get("team"), auth.get("user")
        header = next((v for k, v in auth.headers.items() if k.lower() == "x-oauth-scopes"), "")
        value = header[0] if isinstance(header, list) else header
        result.scopes = sorted(s.strip() for s in str(value or "").split(",") if s.strip())
        result.missing = {s: why for s, why in REQUIRED_SCOPES.items() if s not in result.scopes}
    except SlackApiError as err:
        result.problems.append(
            f"SLACK_BOT_TOKEN was refused by auth.test ({err.response.get('error')}): copy the Bot User OAuth "
            "Token again from the app's OAuth & Permissions page (reinstall the app if it was revoked)"
        )
    try:
        bot_client.apps_connections_open(app_token=app_token)
    except SlackApiError as err:
        error = err.response.get("error")
        hint = ("the token lacks the connections:write scope: create an app-level token with it (Basic Information "
                "> App-Level Tokens)" if error in ("missing_scope", "not_allowed_token_type")
                else "turn Socket Mode on (Settings > Socket Mode) and create an app-level token with "
                     "connections:write" if error == "not_allowed" else
                "copy the app-level token (xapp-…) again from Basic Information > App-Level Tokens")
        result.problems.append(f"SLACK_APP_TOKEN was refused by apps.connections.open ({error}): {hint}")
    return result
