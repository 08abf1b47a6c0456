"""Exactly once: Slack re-delivers an event it thinks was lost (same event_id, X-Slack-Retry-Num); the
store remembers handled event ids, so only the first delivery is handled and the others are just acked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.services import Services


def register(app: AsyncApp, services: Services) -> None:
    async def handle_each_event_once(
        body: dict[str, Any],
        next: Callable[[], Awaitable[None]],
    ) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await services.store.claim_event(str(event_id)):
            services.metrics.duplicates.inc()
            return BoltResponse(status=200, body="")
        return await next()

    app.middleware(handle_each_event_once)
