"""The Slack Bolt app: a client that retries what Slack asks to be retried, and the listeners."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot import listeners
from bot.identity import SlackIdentity
from bot.services import Services

log = logging.getLogger(__name__)


def build_app(services: Services, client: AsyncWebClient, identity: SlackIdentity) -> AsyncApp:
    """``client`` without a token: each request's client gets the bot token from ``identity``."""
    settings = services.settings

    async def authorize(user_id: str | None = None) -> AuthorizeResult:  # Bolt passes arguments by name
        return await identity.authorize(user_id)

    app = AsyncApp(
        client=client,
        authorize=authorize,
        # Socket Mode connections are authenticated by the app token; HTTP requests by their signature.
        signing_secret=settings.signing_secret or "",
        request_verification_enabled=not settings.socket_mode,
        process_before_response=False,  # ack first, work after: Slack waits 3 s at most
        # Bolt's would drop alerts posted through the app's own incoming webhook (they carry its bot_id):
        # bot/listeners/dedup.py drops the app's own events instead, and only those.
        ignoring_self_events_enabled=False,
    )

    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        services.metrics.events.inc(type=str(body.get("type") or "unknown"), outcome="error")
        event = body.get("event") if isinstance(body.get("event"), dict) else {}
        log.exception(
            "listener failed on %s",
            body.get("type"),
            exc_info=error,
            extra={
                "event_id": body.get("event_id"),
                "event_type": event.get("type"),
                "channel": event.get("channel"),
            },
        )

    app.error(on_error)
    listeners.register(app, services)
    return app
