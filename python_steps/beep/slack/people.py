"""Who the people and channels are, from the Slack Web API (users.list / users.info, conversations.info),
cached for ``ttl_seconds`` so a busy channel does not ask Slack about the same person every message."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from beep.slack.alerts import Person

log = logging.getLogger("beep.slack")


def person_of(user: dict) -> Person:
    profile = user.get("profile") or {}
    name = profile.get("display_name") or user.get("real_name") or profile.get("real_name") or user.get("name")
    return Person(
        user_id=str(user.get("id")),
        name=name or None,
        is_bot=bool(user.get("is_bot")) or bool(user.get("is_app_user")) or user.get("id") == "USLACKBOT",
        deleted=bool(user.get("deleted")),
        tz=user.get("tz"),
        tz_offset=user.get("tz_offset"),
    )


class Directory:
    """People (users.info) and channel names (conversations.info), cached."""

    def __init__(self, client: WebClient, *, ttl_seconds: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.clock = clock
        self._people: dict[str, tuple[float, Person | None]] = {}
        self._channels: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def load_all(self) -> int:
        """Fill the cache with users.list (paginated); returns how many people."""
        n = 0
        cursor = None
        now = self.clock()
        while True:
            page = self.client.users_list(limit=200, cursor=cursor)
            for user in page.get("members") or []:
                person = person_of(user)
                with self._lock:
                    self._people[person.user_id] = (now, person)
                n += 1
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return n

    def person(self, user_id: str) -> Person | None:
        """The person (None when Slack does not know them)."""
        now = self.clock()
        with self._lock:
            cached = self._people.get(user_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            person: Person | None = person_of(self.client.users_info(user=user_id)["user"])
        except SlackApiError as err:
            if err.response.get("error") != "user_not_found":
                raise
            person = None
        with self._lock:
            self._people[user_id] = (now, person)
        return person

    def names(self) -> dict[str, str]:
        with self._lock:
            return {uid: p.name for uid, (_, p) in self._people.items() if p is not None and p.name}

    def bot_ids(self) -> set[str]:
        with self._lock:
            return {uid for uid, (_, p) in self._people.items() if p is not None and p.is_bot}

    def channel_name(self, channel_id: str) -> str | None:
        """The channel's name (None when conversations.info is not allowed or fails: reasons then say the id)."""
        now = self.clock()
        with self._lock:
            cached = self._channels.get(channel_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        name: str | None
        try:
            name = (self.client.conversations_info(channel=channel_id).get("channel") or {}).get("name")
        except SlackApiError as err:
            log.warning("conversations.info %s failed (%s): reasons name the channel by id", channel_id,
                        err.response.get("error"))
            name = None
        with self._lock:
            self._channels[channel_id] = (now, name)
        return name
