"""What the listeners share: settings, the decision engine, the store (and the writes waiting for it),
the outbox, metrics, pacing, runbooks."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.grouping import Grouper
from bot.memory import SimilarIncidents
from bot.metrics import Metrics
from bot.outbox import Outbox, Retry
from bot.posting import ChannelPacer
from bot.runbooks import Runbooks
from bot.store import Store
from bot.store.write_behind import WriteBehind
from engine.decision import AIDecisionEngine

log = logging.getLogger(__name__)
CACHE_SIZE = 10_000  # channel names remembered


class _Lru(OrderedDict):
    def remember(self, key: str, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > CACHE_SIZE:
            self.popitem(last=False)


@dataclass
class Services:
    settings: Settings
    engine: AIDecisionEngine
    store: Store
    runbooks: Runbooks
    metrics: Metrics = field(default_factory=Metrics)
    pacer: ChannelPacer = field(default_factory=ChannelPacer)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # set once the models are loaded
    load_error: str | None = None  # why no model set could be loaded at all (start-up is retrying)
    load_failures: int = 0  # start-ups that ended with no model set at all (and were tried again)
    writes: WriteBehind = field(default_factory=WriteBehind)
    outbox: Outbox = field(init=False)  # set by the runner, which owns the client that answers
    grouper: Grouper = field(init=False)
    group_updates: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # group id -> pending edit
    memory: SimilarIncidents | None = None  # similar past incidents (the runner builds it)
    _channel_names: _Lru = field(default_factory=_Lru)

    def __post_init__(self) -> None:
        self.grouper = Grouper(self.settings.grouping)

    async def channel_name(self, client: AsyncWebClient, channel: str) -> str | None:
        """The channel's name (cached); None when Slack will not say. Raises Retry when Slack is rate
        limiting or failing: not knowing the name now must not drop the alert."""
        if channel in self._channel_names:
            return self._channel_names[channel]
        try:
            info = await client.conversations_info(channel=channel)
            name = (info.get("channel") or {}).get("name")
        except SlackApiError as exc:
            status = exc.response.status_code
            if status == 429 or status >= 500:
                raise Retry(f"conversations.info: Slack {status}") from exc
            log.warning("conversations.info %s: %s", channel, exc.response.get("error"))
            return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Retry(f"conversations.info: {type(exc).__name__}") from exc
        self._channel_names.remember(channel, name)
        return name

    async def is_admin(self, client: AsyncWebClient, user: str) -> bool:
        """ONCALL_ADMINS when set; otherwise the workspace's admins and owners, asked on every call (a
        demoted admin loses the right at once; the commands are rare)."""
        if self.settings.admins:
            return user in self.settings.admins
        try:
            info = (await client.users_info(user=user)).get("user") or {}
        except SlackApiError as exc:
            log.warning("users.info %s: %s", user, exc.response.get("error"))
            return False
        return bool(info.get("is_admin") or info.get("is_owner"))
