"""Exactly once: Slack re-delivers an event it thinks was lost (same event_id, X-Slack-Retry-Num), and may
send the same message again under a new event_id; the store remembers what was handled, so only the first
delivery is handled and the others are just acked. A message is known by its channel and ts, whatever the
event_id (``claim_key``); any other event by its event_id.

The claim runs before the ack, and Slack waits 3 s at most: when the store is locked or down for longer
than CLAIM_TIMEOUT, this process claims the event in memory (it still answers once whatever this process
receives) and writes the claim to the store when it is back."""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.alerts import is_own
from bot.ops.metrics import Metrics
from bot.store import Store
from bot.store.write_behind import WriteBehind

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = 1.0  # seconds the store may take to claim an event before the ack
REMEMBERED = 50_000  # event ids this process remembers itself


class RecentEvents:
    """The event ids this process claimed lately, oldest forgotten first."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """True when the id is new."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


def register(app: AsyncApp, store: Store, writes: WriteBehind, metrics: Metrics) -> None:
    recent = RecentEvents()

    async def ignore_own_events(
        body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Bolt's own "ignore self events" (switched off in bot/slack/app.py) would drop every message with
        the app's bot_id, alerts posted through the app's own incoming webhook too. This drops what the app
        itself did (its replies, their edits, its reactions), before anything is claimed or stored."""
        event = body.get("event") if body.get("type") == "event_callback" else None
        if isinstance(event, dict) and (
            (context.bot_user_id is not None and context.user_id == context.bot_user_id)
            or is_own(event, context.bot_user_id, context.bot_id)
        ):
            return BoltResponse(status=200, body="")
        return await next()

    app.middleware(ignore_own_events)

    async def handle_each_event_once(
        body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        key = claim_key(body)
        if key and not await claim(store, writes, metrics, recent, key, context):
            metrics.duplicates.inc()
            event = body.get("event") if isinstance(body.get("event"), dict) else {}
            log.info(
                "already handled, acknowledged and not answered again: %s",
                key,
                extra={
                    "event_id": body.get("event_id"),
                    "event_type": event.get("type"),
                    "channel": event.get("channel"),
                },
            )
            return BoltResponse(status=200, body="")
        return await next()

    app.middleware(handle_each_event_once)


def claim_key(body: dict[str, Any]) -> str | None:
    """What makes an event the same one again: ``message:<channel>:<ts>`` for a message (edits and
    deletions have a ts of their own), else the event_id; None for what is no event."""
    if body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if isinstance(event, dict) and event.get("type") == "message":
        channel, ts = event.get("channel"), event.get("ts")
        if isinstance(channel, str) and channel and isinstance(ts, str) and ts:
            return f"message:{channel}:{ts}"
    event_id = body.get("event_id")
    return str(event_id) if event_id else None


STORE_AWAY = "oncall_store_away"  # in the request's context: the claim had to wait for the store


async def claim(
    store: Store,
    writes: WriteBehind,
    metrics: Metrics,
    recent: RecentEvents,
    key: str,
    context: AsyncBoltContext,
) -> bool:
    if not recent.add(key):  # this process handled it: no need to ask the store
        return False
    token = secrets.token_hex(8)
    claimed = True

    async def claim_in_store() -> None:
        nonlocal claimed
        claimed = await store.claim_event(key, token)

    if not await writes.run("event claim", claim_in_store, timeout=CLAIM_TIMEOUT):
        metrics.store_unavailable.inc(operation="event claim")
        context[STORE_AWAY] = True
    return claimed
