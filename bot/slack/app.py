"""The Slack Bolt app: a client that retries what Slack asks to be retried, the middleware, and each
listener given what it uses."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.ops.metrics import Metrics
from bot.slack.identity import SlackIdentity
from bot.slack.listeners import commands, corrections, home, messages, reactions
from bot.slack.middleware import dedup, guard
from bot.wiring import Components

log = logging.getLogger(__name__)
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a label value, not whatever a payload says


def build_app(parts: Components, client: AsyncWebClient, identity: SlackIdentity) -> AsyncApp:
    """``client`` without a token: each request's client gets the bot token from ``identity``."""
    settings, metrics = parts.settings, parts.metrics

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
        # bot/slack/middleware/dedup.py drops the app's own events instead, and only those.
        ignoring_self_events_enabled=False,
    )

    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        metrics.events.inc(type=str(body.get("type") or "unknown"), outcome="error")
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
    guard.register(app, settings.api_url, metrics)  # first: a refused request reaches nothing
    dedup.register(app, parts.store, parts.writes, metrics)
    messages.register(app, parts.outbox, parts.writes, metrics)
    reactions.register(app, parts.store, parts.writes, metrics)
    commands.register(
        app, parts.engine, parts.runbooks, parts.readiness, parts.admins, parts.controls, metrics
    )
    corrections.register(app, parts.store, parts.writes, metrics)
    home.register(app, parts.readiness, parts.admins, parts.controls, metrics)
    unknown_events(app, metrics)  # last: it takes whatever the listeners above do not
    return app


def unknown_events(app: AsyncApp, metrics: Metrics) -> None:
    """An event no listener handles (the manifest changed, or Slack added one) is acknowledged with 200 and
    counted: Bolt would answer 404, and Slack would deliver it again and again."""

    async def count(event: dict[str, Any]) -> None:
        kind = str(event.get("type"))
        metrics.events.inc(type=kind if _EVENT_TYPE.match(kind) else "other", outcome="unhandled")

    app.event(re.compile(".*"))(count)
