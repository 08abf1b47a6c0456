"""The HTTP face of the bot: Slack's requests at POST /slack/events; /healthz, /readyz and /metrics for
whoever runs it. Nothing else is exposed: any other path is a bare 404, another method a bare 405, and no
response names the server software. With ONCALL_METRICS_ADDR, /metrics moves to a listener of its own."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.ops.metrics import CONTENT_TYPE, Scrape, training_shares
from bot.store import StoreUnavailable
from bot.wiring import Components

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
MAX_BODY = 1 << 20  # Slack's largest payloads are far smaller
SIGNATURE_WINDOW = 300  # seconds: an older signed request is a replay
LOAD_STAGES = ("startup", "reload", "pointer", "trial")  # where MLService counts failed model loads


async def _anonymous(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.pop("Server", None)


def _application() -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app.on_response_prepare.append(_anonymous)
    return app


def signed(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """Slack's request signature (v0, HMAC-SHA256 of "v0:timestamp:body") and its 5-minute window."""
    timestamp, signature = headers.get("X-Slack-Request-Timestamp", ""), headers.get("X-Slack-Signature", "")
    if not secret or not timestamp.isdigit() or abs(now - int(timestamp)) > SIGNATURE_WINDOW:
        return False
    mac = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return hmac.compare_digest("v0=" + mac.hexdigest(), signature)


def malformed_event(body: dict[str, Any]) -> bool:
    """An Events API envelope whose event is not an object with a type."""
    event = body.get("event")
    return body.get("type") == "event_callback" and not (
        isinstance(event, dict) and isinstance(event.get("type"), str)
    )


def build_web_app(bolt: AsyncApp, parts: Components, with_metrics: bool = True) -> web.Application:
    """In Socket Mode Slack's requests come over the socket: no /slack/events (nothing unsigned gets in).
    Without ``with_metrics`` /metrics is left to the separate listener (build_ops_app)."""

    async def slack_events(request: web.Request) -> web.Response:
        # The signature first, on the raw bytes: Bolt parses the body (and reads ids out of it) before it
        # checks the signature, and raises on a body that is not UTF-8, not JSON or not shaped like a Slack
        # payload. Unsigned: 401. Signed by Slack yet unreadable: acknowledged (a retry would not help)
        # and counted as a refusal, never a 500.
        raw = await request.read()
        if not signed(parts.settings.signing_secret or "", request.headers, raw, time.time()):
            parts.metrics.refused.inc(kind="request", reason="bad signature")
            return web.Response(status=401, text="invalid signature")
        try:
            bolt_request = await to_bolt_request(request)
        except (ValueError, TypeError, AttributeError, LookupError, RecursionError) as exc:
            parts.metrics.refused.inc(kind="request", reason="malformed body")
            log.warning("refused a malformed request body: %s", type(exc).__name__)
            return web.Response(status=200, text="malformed body")
        if malformed_event(bolt_request.body):  # Bolt's own middleware would raise on it
            parts.metrics.refused.inc(kind="request", reason="malformed event")
            log.warning("refused an event_callback without an event object")
            return web.Response(status=200, text="malformed event")
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app = _application()
    if not parts.settings.socket_mode:
        app.router.add_post(EVENTS_PATH, slack_events)
    _add_ops_routes(app, parts, with_metrics)
    return app


def build_ops_app(parts: Components) -> web.Application:
    """The ONCALL_METRICS_ADDR listener: /metrics, and the probes beside it (/healthz, /readyz)."""
    app = _application()
    _add_ops_routes(app, parts, with_metrics=True)
    return app


def _add_ops_routes(app: web.Application, parts: Components, with_metrics: bool) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        """Ready once a model set serves; the body says which one, whether it is the rule-based fallback,
        and the last load error (why it is not the active version). Not ready: still loading, or
        ``failed`` with the reason while start-up tries again. A store that needs someone (its file moved
        away) makes an otherwise healthy bot ``degraded``, with the reason in ``store_error``."""
        ready = parts.readiness.is_set()
        health = parts.engine.ml.health()
        if ready:
            status, last_error = health["status"], health["last_error"]
        else:
            status = "failed" if parts.readiness.load_error else "loading models"
            last_error = parts.readiness.load_error
        store_error = parts.store.problem
        body = {
            "ready": ready,
            "serving_version": health["serving_version"] if ready else None,
            "active_version": health["active_version"],
            "fallback": ready and status == "fallback",
            "status": "degraded" if store_error and status == "ok" else status,
            "last_error": last_error,
            "store_error": store_error,
        }
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        ml = parts.engine.ml
        ready = parts.readiness.is_set()
        versions = [ml.models.version] + ([ml.candidate.version] if ml.candidate else []) if ready else []
        acceptance = {}
        try:
            for version in versions:
                votes = await parts.store.rating_counts(version)
                if votes["confirm"] + votes["reject"]:
                    acceptance[version] = votes["confirm"] / (votes["confirm"] + votes["reject"])
        except StoreUnavailable:  # the rest of the metrics matter most while the store is away
            parts.metrics.store_unavailable.inc(operation="metrics")
        outbox, writes = parts.outbox, parts.writes
        degraded = not ready or ml.degraded or ml.models.fallback
        load_failures = dict.fromkeys(LOAD_STAGES, 0) | dict(ml.load_failures)
        load_failures["startup"] += parts.readiness.load_failures
        scrape = Scrape(
            model_version=ml.models.version if ready else "none",
            ready=ready,
            acceptance=acceptance,
            reloads={"ok": ml.reloads_ok, "failed": ml.reloads_failed},
            load_failures=load_failures,
            training=training_shares(ml.models.metadata) if ready else None,
            totals={  # counts since start: counters
                "oncall_outbox_retries": ("Answers tried again since start.", outbox.retries),
                "oncall_outbox_recovered": (
                    "Alerts taken over from a crashed life or replica.",
                    outbox.recovered,
                ),
                "oncall_outbox_expired": ("Alerts given up unanswered after an hour.", outbox.expired),
                "oncall_outbox_journaled": (
                    "Alerts kept in the local journal while the store could not take them, since start.",
                    outbox.journal.appended,
                ),
                "oncall_store_writes_deferred": ("Writes that had to wait, since start.", writes.deferred),
                "oncall_store_writes_dropped": ("Writes given up, since start.", writes.dropped),
            },
            levels={  # what is the case now: gauges
                "oncall_outbox_unanswered": ("Alerts acknowledged and not answered yet.", outbox.in_flight),
                "oncall_store_writes_pending": ("Writes waiting for the store to come back.", writes.pending),
                "oncall_store_degraded": (
                    "1 while the store needs someone: its SQLite file was removed or replaced.",
                    int(parts.store.problem is not None),
                ),
                "oncall_model_degraded": (
                    "1 when the active model version is not the one serving (or none is loaded).",
                    int(degraded),
                ),
            },
        )
        return web.Response(body=parts.metrics.render(scrape), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if with_metrics:
        app.router.add_get("/metrics", metrics)
