"""What the bot asks Slack about the workspace while it works: channel names (cached) and who is an admin."""

from __future__ import annotations

import logging
from collections import OrderedDict

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.pipeline.outbox import Retry
from bot.slack.errors import transient

log = logging.getLogger(__name__)
CACHE_SIZE = 10_000  # channel names remembered


class ChannelNames:
    """Channel ID -> name, the least recently asked forgotten first."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._names: OrderedDict[str, str | None] = OrderedDict()

    async def name(self, client: AsyncWebClient, channel: str) -> str | None:
        """The channel's name; None when Slack will not say. Raises Retry when Slack is rate limiting or
        failing: not knowing the name now must not drop the alert."""
        if channel in self._names:
            self._names.move_to_end(channel)
            return self._names[channel]
        try:
            info = await client.conversations_info(channel=channel)
        except Exception as exc:
            passing = transient(exc)
            if passing is not None:
                raise Retry(f"conversations.info: {passing.reason}") from exc
            if not isinstance(exc, SlackApiError):
                raise
            log.warning("conversations.info %s: %s", channel, exc.response.get("error"))
            return None
        name = (info.get("channel") or {}).get("name")
        self._names[channel] = name
        while len(self._names) > self.size:
            self._names.popitem(last=False)
        return name


class Admins:
    """ONCALL_ADMINS when set; otherwise the workspace's admins and owners, asked on every call (a demoted
    admin loses the right at once; the commands are rare)."""

    def __init__(self, configured: frozenset[str] | tuple[str, ...] = ()) -> None:
        self.configured = frozenset(configured)

    async def includes(self, client: AsyncWebClient, user: str) -> bool:
        if self.configured:
            return user in self.configured
        try:
            info = (await client.users_info(user=user)).get("user") or {}
        except SlackApiError as exc:
            log.warning("users.info %s: %s", user, exc.response.get("error"))
            return False
        return bool(info.get("is_admin") or info.get("is_owner"))
