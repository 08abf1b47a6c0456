"""The HTTP face of the bot: Slack's requests at POST /slack/events; /healthz, /readyz and /metrics for
whoever runs it. Nothing else is exposed."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.metrics import training_shares
from bot.services import Services

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
MAX_BODY = 1 << 20  # Slack's largest payloads are far smaller


def malformed_event(body: dict[str, Any]) -> bool:
    """An Events API envelope whose event is not an object with a type."""
    event = body.get("event")
    return body.get("type") == "event_callback" and not (
        isinstance(event, dict) and isinstance(event.get("type"), str)
    )


def build_web_app(bolt: AsyncApp, services: Services) -> web.Application:
    """In Socket Mode Slack's requests come over the socket: no /slack/events (nothing unsigned gets in)."""

    async def slack_events(request: web.Request) -> web.Response:
        # Bolt parses the body (and reads ids out of it) before it checks the signature, and raises on a
        # body that is not UTF-8, not JSON or not shaped like a Slack payload: refused here, not a 500.
        try:
            bolt_request = await to_bolt_request(request)
        except (ValueError, TypeError, AttributeError, LookupError, RecursionError) as exc:
            services.metrics.refused.inc(kind="request", reason="malformed body")
            log.warning("refused a malformed request body: %s", type(exc).__name__)
            return web.Response(status=400, text="malformed body")
        if malformed_event(bolt_request.body):  # Bolt's own middleware would raise on it
            services.metrics.refused.inc(kind="request", reason="malformed event")
            log.warning("refused an event_callback without an event object")
            return web.Response(status=400, text="malformed event")
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        health = services.engine.ml.health() if services.ready.is_set() else {}
        body = {
            "ready": services.ready.is_set(),
            "serving_version": health.get("serving_version"),
            "status": health.get("status", "loading models"),
        }
        return web.json_response(body, status=200 if body["ready"] else 503)

    async def metrics(request: web.Request) -> web.Response:
        ml = services.engine.ml
        ready = services.ready.is_set()
        versions = [ml.models.version] + ([ml.candidate.version] if ml.candidate else []) if ready else []
        acceptance = {}
        for version in versions:
            votes = await services.store.rating_counts(version)
            if votes["confirm"] + votes["reject"]:
                acceptance[version] = votes["confirm"] / (votes["confirm"] + votes["reject"])
        text = services.metrics.render(
            ml.models.version if ready else "none",
            ready,
            acceptance=acceptance,
            reloads={"ok": ml.reloads_ok, "failed": ml.reloads_failed},
            training=training_shares(ml.models.metadata) if ready else None,
        )
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    app = web.Application(client_max_size=MAX_BODY)
    if not services.settings.socket_mode:
        app.router.add_post(EVENTS_PATH, slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
