"""Every new top-level message in a watched channel is a candidate alert: decide, reply in its thread."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts import Alert, classify
from bot.blocks import decision_blocks, escape, text_blocks
from bot.config import watches
from bot.services import Services
from bot.store import DecisionRecord, TrialPrediction
from engine.decision import Decision

log = logging.getLogger(__name__)
EVENTS = ("message",)


def register(app: AsyncApp, services: Services) -> None:
    async def on_message(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await handle_message(services, client, event, context.bot_user_id, context.bot_id)

    app.event(EVENTS[0])(on_message)  # every message, subtypes included: classify() sorts them


async def handle_message(
    services: Services,
    client: AsyncWebClient,
    event: dict[str, Any],
    bot_user_id: str | None,
    bot_id: str | None,
) -> None:
    started = time.perf_counter()
    metrics = services.metrics
    channel = str(event.get("channel") or "")
    alert, reason = classify(event, bot_user_id=bot_user_id, bot_id=bot_id)
    if alert is None:
        metrics.skipped.inc(reason=reason)
        return
    if not watches(services.settings, channel, await services.channel_name(client, channel)):
        metrics.skipped.inc(reason="channel not watched")
        return
    await services.ready.wait()  # an alert that arrives while the models load waits for them
    if alert.status == "resolved":
        await _note_resolution(services, client, channel, alert)
        return
    decision = services.engine.analyze(alert.incident)
    trial = await _trial(services, channel, str(event["ts"]), alert, decision)
    if trial is not None and trial.answered:
        decision = trial.decision  # a canary hit: the candidate answers this alert
    text, blocks = decision_blocks(decision, services.runbooks, alert.incident.title, with_controls=True)
    try:
        async with services.pacer.turn(channel):
            posted = await client.chat_postMessage(
                channel=channel,
                thread_ts=event["ts"],
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
    except SlackApiError as exc:
        metrics.reply_errors.inc()
        log.error(
            "reply to %s/%s failed after retries: %s", channel, event.get("ts"), exc.response.get("error")
        )
        return
    metrics.replies.inc(kind="decision")
    metrics.alerts.inc(source=alert.source)
    metrics.predicted(decision.model_version, decision.severity)
    metrics.decide_seconds.observe(time.perf_counter() - started)
    await services.store.record_decision(
        DecisionRecord(
            channel=channel,
            reply_ts=str(posted["ts"]),
            alert_ts=str(event["ts"]),
            source=alert.source,
            fingerprint=alert.fingerprint,
            incident_text=alert.incident.text,
            severity=decision.severity,
            severity_confidence=decision.severity_confidence,
            category=decision.category,
            category_confidence=decision.category_confidence,
            actions=[(a.action, a.confidence) for a in decision.actions],
            model_version=decision.model_version,
        )
    )


@dataclass(frozen=True, slots=True)
class _TrialRun:
    decision: Decision
    answered: bool


def canary_hit(channel: str, ts: str, share: float) -> bool:
    """A stable choice of alerts: the same alert is always in (or out of) a canary's share, on every
    replica and after a restart."""
    digest = hashlib.sha256(f"{channel}:{ts}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


async def _trial(
    services: Services, channel: str, ts: str, alert: Alert, active: Decision
) -> _TrialRun | None:
    """With a trial running, the candidate decides too (stored beside the active decision); a canary
    answers its share of the alerts."""
    ml = services.engine.ml
    trial, candidate = ml.trial, ml.candidate
    if trial is None or candidate is None:
        return None
    started = time.perf_counter()
    decision = services.engine.analyze(alert.incident, candidate=True)
    latency_ms = (time.perf_counter() - started) * 1e3
    answered = trial["mode"] == "canary" and canary_hit(channel, ts, float(trial.get("share") or 0.0))
    await services.store.record_trial(
        TrialPrediction(
            channel=channel,
            alert_ts=ts,
            version=decision.model_version,
            mode=trial["mode"],
            answered=answered,
            severity=decision.severity,
            category=decision.category,
            action=decision.actions[0].action if decision.actions else "",
            active_version=active.model_version,
            active_severity=active.severity,
            active_category=active.category,
            active_action=active.actions[0].action if active.actions else "",
            latency_ms=latency_ms,
        )
    )
    return _TrialRun(decision, answered)


async def _note_resolution(services: Services, client: AsyncWebClient, channel: str, alert: Alert) -> None:
    """A resolved notification is no new incident: say so in the original alert's thread, if known."""
    thread = await services.store.alert_thread(channel, alert.fingerprint) if alert.fingerprint else None
    if thread is None:
        services.metrics.skipped.inc(reason="resolved, original unknown")
        return
    text = f":white_check_mark: Resolved: {escape(alert.incident.title)}"
    try:
        async with services.pacer.turn(channel):
            await client.chat_postMessage(
                channel=channel, thread_ts=thread, text=text, blocks=text_blocks(text), unfurl_links=False
            )
    except SlackApiError as exc:
        services.metrics.reply_errors.inc()
        log.error("resolution note in %s/%s failed: %s", channel, thread, exc.response.get("error"))
        return
    services.metrics.replies.inc(kind="resolution")
