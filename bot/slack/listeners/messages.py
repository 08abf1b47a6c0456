"""Every new top-level message in a watched channel is a candidate alert: into the outbox (so that it is
answered even if this process dies), which has bot/pipeline/answer.py decide on it and answer it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.alerts import classify
from bot.ops.metrics import Metrics
from bot.pipeline.outbox import Outbox
from bot.slack.middleware.dedup import STORE_AWAY
from bot.store import OutboxEntry
from bot.store.write_behind import WriteBehind

EVENTS = ("message",)


def register(app: AsyncApp, outbox: Outbox, writes: WriteBehind, metrics: Metrics) -> None:
    async def kept_before_the_ack(
        event: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> None:
        """Listener middleware runs before Bolt acks; the listener after. While the store cannot take
        the alert's outbox entry, it goes into the journal first: acknowledged means kept."""
        if context.get(STORE_AWAY) or writes.waiting:
            bot_user_id, bot_id = context.bot_user_id, context.bot_id
            if classify(event, bot_user_id=bot_user_id, bot_id=bot_id)[0] is not None:
                await outbox.keep(_entry(event, bot_user_id, bot_id))
        await next()

    async def on_message(event: dict[str, Any], context: AsyncBoltContext) -> None:
        bot_user_id, bot_id = context.bot_user_id, context.bot_id
        alert, reason = classify(event, bot_user_id=bot_user_id, bot_id=bot_id)
        if alert is None:
            metrics.skipped.inc(reason=reason)
            return
        await outbox.submit(_entry(event, bot_user_id, bot_id))

    # every message, subtypes included: classify() sorts them
    app.event(EVENTS[0], middleware=[kept_before_the_ack])(on_message)


def _entry(event: dict[str, Any], bot_user_id: str | None, bot_id: str | None) -> OutboxEntry:
    return OutboxEntry(
        str(event.get("channel") or ""), str(event["ts"]), event, bot_user_id, bot_id, time.time()
    )
