"""`beep slack pull`: a workspace's history read through the Web API, written as an export folder.

For teams without the admin rights to export: ``users.list`` -> ``users.json``; the channels the bot
is a member of (``conversations.list``) -> ``channels.json`` (``groups.json`` for private ones); each
channel's messages (``conversations.history``, and ``conversations.replies`` for every thread) ->
``<channel name>/<YYYY-MM-DD>.json``, one file per UTC day of each message's ``ts``, oldest first,
as an export has them (a thread reply in the day file of its own ts). Every call is paginated
(cursor) and paced (``min_interval`` seconds between calls of one method, besides the SDK's 429
retries after ``Retry-After``). ``beep ingest`` / ``beep build`` read the folder like an export.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from slack_sdk import WebClient


@dataclass
class PullResult:
    folder: Path
    n_users: int = 0
    n_channels: int = 0
    n_messages: int = 0
    n_day_files: int = 0
    n_calls: int = 0
    per_channel: dict[str, int] = field(default_factory=dict)


class _Paced:
    """At most one call of a method every ``min_interval`` seconds."""

    def __init__(self, client: WebClient, min_interval: float) -> None:
        self.client = client
        self.min_interval = min_interval
        self._last: dict[str, float] = {}
        self.calls = 0

    def pages(self, method: str, key: str, **args: object) -> Iterator[dict]:
        """Every item under ``key`` of every page of ``method`` (cursor pagination)."""
        cursor: str | None = None
        while True:
            wait = self._last.get(method, -1e9) + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last[method] = time.monotonic()
            self.calls += 1
            page = self.client.api_call(method, params={**args, **({"cursor": cursor} if cursor else {})})
            yield from page.get(key) or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return


def _day(ts: str) -> str:
    return datetime.fromtimestamp(float(ts), tz=timezone.utc).strftime("%Y-%m-%d")


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


def pull(client: WebClient, folder: Path, *, channels: list[str] | None = None, oldest: float | None = None,
         latest: float | None = None, min_interval: float = 1.2, page_size: int = 200, private: bool = False,
         say: Callable[[str], None] = lambda _m: None) -> PullResult:
    """Write the export folder (see the module docstring); ``channels``: names or ids to keep; ``private``:
    private channels too (needs the groups:read scope)."""
    folder = Path(folder)
    paced = _Paced(client, min_interval)
    result = PullResult(folder)
    users = list(paced.pages("users.list", "members", limit=page_size))
    _write_json(folder / "users.json", users)
    result.n_users = len(users)
    say(f"users.json: {len(users)} people")
    found = [c for c in paced.pages("conversations.list", "channels", limit=page_size, exclude_archived="false",
                                    types="public_channel,private_channel" if private else "public_channel")
             if c.get("is_member") and (not channels or c.get("name") in channels or c.get("id") in channels)]
    missing = sorted(set(channels or ()) - {c.get("name") for c in found} - {c.get("id") for c in found})
    if missing:
        raise ValueError(f"the bot is not a member of {', '.join(missing)} (or no such channel): invite it "
                         "(/invite @beep) or leave the name out of --channel")
    _write_json(folder / "channels.json", [c for c in found if not c.get("is_private")])
    private = [c for c in found if c.get("is_private")]
    if private:
        _write_json(folder / "groups.json", private)
    window = {k: v for k, v in (("oldest", oldest), ("latest", latest)) if v is not None}
    for channel in found:
        name = str(channel.get("name") or channel["id"])
        by_day: dict[str, dict[str, dict]] = defaultdict(dict)
        for message in paced.pages("conversations.history", "messages", channel=channel["id"], limit=page_size,
                                   **window):
            by_day[_day(message["ts"])][message["ts"]] = message
            if message.get("reply_count") and message.get("thread_ts") == message.get("ts"):
                for reply in paced.pages("conversations.replies", "messages", channel=channel["id"],
                                         ts=message["ts"], limit=page_size):
                    if reply["ts"] != message["ts"]:
                        by_day[_day(reply["ts"])][reply["ts"]] = reply
        count = 0
        for day, messages in sorted(by_day.items()):
            ordered = sorted(messages.values(), key=lambda m: (int(m["ts"].split(".")[0]), m["ts"]))
            _write_json(folder / name / f"{day}.json", ordered)
            count += len(ordered)
            result.n_day_files += 1
        result.per_channel[name] = count
        result.n_messages += count
        say(f"#{name}: {count} messages in {len(by_day)} day files ({paced.calls} calls so far)")
    result.n_channels = len(found)
    result.n_calls = paced.calls
    return result
