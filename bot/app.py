"""The Slack Bolt app: a client that retries what Slack asks to be retried, and the listeners."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import listeners
from bot.services import Services

log = logging.getLogger(__name__)


def build_app(services: Services, client: AsyncWebClient) -> AsyncApp:
    settings = services.settings
    app = AsyncApp(
        client=client,
        # Socket Mode connections are authenticated by the app token; HTTP requests by their signature.
        signing_secret=settings.signing_secret or "",
        request_verification_enabled=not settings.socket_mode,
        process_before_response=False,  # ack first, work after: Slack waits 3 s at most
    )

    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        services.metrics.events.inc(type=str(body.get("type") or "unknown"), outcome="error")
        log.exception("listener failed on %s", body.get("type"), exc_info=error)

    app.error(on_error)
    listeners.register(app, services)
    return app
