"""Every new top-level message in a watched channel is a candidate alert: into the outbox (so that it is
answered even if this process dies), then decided on and answered in its thread."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import group_thread
from bot.alerts import Alert, classify
from bot.blocks import decision_blocks, escape, text_blocks
from bot.config import watches
from bot.group_thread import GROUPED_EVENT_TYPE
from bot.grouping import Group
from bot.listeners.dedup import STORE_AWAY
from bot.memory import similar_for
from bot.outbox import Job, Retry
from bot.services import Services
from bot.store import DecisionRecord, OutboxEntry, StoreUnavailable, TrialPrediction
from engine.decision import Decision

log = logging.getLogger(__name__)
EVENTS = ("message",)
# The metadata on each reply, naming the alert it answers: how a retry finds a reply already posted.
REPLY_EVENT_TYPE, RESOLUTION_EVENT_TYPE = "oncall_decision", "oncall_resolution"


def register(app: AsyncApp, services: Services) -> None:
    async def kept_before_the_ack(
        event: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> None:
        """Listener middleware runs before Bolt acks; the listener after. While the store cannot take
        the alert's outbox entry, it goes into the journal first: acknowledged means kept."""
        if context.get(STORE_AWAY) or services.writes.waiting:
            bot_user_id, bot_id = context.bot_user_id, context.bot_id
            if classify(event, bot_user_id=bot_user_id, bot_id=bot_id)[0] is not None:
                await services.outbox.keep(_entry(event, bot_user_id, bot_id))
        await next()

    async def on_message(event: dict[str, Any], context: AsyncBoltContext) -> None:
        await receive(services, event, context.bot_user_id, context.bot_id)

    # every message, subtypes included: classify() sorts them
    app.event(EVENTS[0], middleware=[kept_before_the_ack])(on_message)


def _entry(event: dict[str, Any], bot_user_id: str | None, bot_id: str | None) -> OutboxEntry:
    return OutboxEntry(
        str(event.get("channel") or ""), str(event["ts"]), event, bot_user_id, bot_id, time.time()
    )


async def receive(
    services: Services, event: dict[str, Any], bot_user_id: str | None, bot_id: str | None
) -> None:
    alert, reason = classify(event, bot_user_id=bot_user_id, bot_id=bot_id)
    if alert is None:
        services.metrics.skipped.inc(reason=reason)
        return
    await services.outbox.submit(_entry(event, bot_user_id, bot_id))


def retry_for(exc: Exception, *, posting: bool) -> Retry | None:
    """A Slack failure worth retrying, or None for a refusal that will not change (not_in_channel, ...).
    ``posting``: the call posts, so an error that may come after Slack did it could mean it is done."""
    if isinstance(exc, SlackApiError):
        status, error = exc.response.status_code, str(exc.response.get("error") or "")
        if status == 429 or error == "ratelimited":
            after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            return Retry(f"rate limited ({error})", after=float(after) if after else None)
        if status >= 500 or error in (
            "internal_error",
            "fatal_error",
            "request_timeout",
            "service_unavailable",
        ):
            return Retry(f"Slack {status} {error}", maybe_posted=posting)
        return None
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return Retry(f"{type(exc).__name__}: {exc}", maybe_posted=posting)
    return None


async def answer(services: Services, client: AsyncWebClient, job: Job) -> None:
    """Decide on an outbox entry and post the decision in the alert's thread (raises Retry when that
    should be tried again)."""
    entry, metrics = job.entry, services.metrics
    alert, reason = classify(entry.event, bot_user_id=entry.bot_user_id, bot_id=entry.bot_id)
    if alert is None:
        metrics.skipped.inc(reason=reason)
        return
    channel = entry.channel
    if not watches(services.settings, channel, await services.channel_name(client, channel)):
        metrics.skipped.inc(reason="channel not watched")
        return
    await services.ready.wait()  # an alert that arrives while the models load waits for them
    try:
        if alert.status == "resolved":
            await _note_resolution(services, client, job, alert)
            return
        if job.check_thread and await _already_answered(services, client, entry, entry.alert_ts):
            return
    except StoreUnavailable as exc:
        raise Retry(str(exc)) from exc
    decision = services.engine.analyze(alert.incident)
    trial = await _trial(services, channel, entry.alert_ts, alert, decision)
    if trial is not None and trial.answered:
        decision = trial.decision  # a canary hit: the candidate answers this alert
    group, joined = await group_thread.place(services, entry, alert, decision)
    if joined:  # shown in the thread of the alert that opened the group, not as a decision of its own
        group_thread.schedule(services, client, group)
        await _acknowledge_grouped(services, client, entry, alert, group)
        return
    similar = await similar_for(services, alert.incident.text, channel, entry.alert_ts)
    text, blocks = decision_blocks(
        decision,
        services.runbooks,
        alert.incident.title,
        with_controls=True,
        similar=similar or [],
        similar_skipped=similar is None,
    )
    try:
        async with services.pacer.turn(channel):
            posted = await client.chat_postMessage(
                channel=channel,
                thread_ts=entry.alert_ts,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": REPLY_EVENT_TYPE,
                    "event_payload": {"alert_ts": entry.alert_ts, "model_version": decision.model_version},
                },
            )
    except Exception as exc:
        retry = retry_for(exc, posting=True)
        if retry is not None:
            raise retry from exc
        metrics.reply_errors.inc()
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
        log.error(
            "Slack refused the reply to %s/%s: %s",
            channel,
            entry.alert_ts,
            error,
            extra={"channel": channel, "alert_ts": entry.alert_ts, "alert_source": alert.source},
        )
        return
    latency = time.time() - entry.received_at
    metrics.replies.inc(kind="decision")
    metrics.alerts.inc(source=alert.source)
    metrics.predicted(decision.model_version, decision.severity)
    metrics.decide_seconds.observe(latency)
    log.info(
        "answered %s/%s (%s): %s, %s, by %s in %.3f s",
        channel,
        entry.alert_ts,
        alert.source,
        decision.severity,
        decision.category,
        decision.model_version,
        latency,
        extra={
            "channel": channel,
            "alert_ts": entry.alert_ts,
            "alert_source": alert.source,
            "model_version": decision.model_version,
            "severity": decision.severity,
            "category": decision.category,
            "latency_seconds": round(latency, 4),
        },
    )
    await _record(services, entry, alert, decision, str(posted["ts"]))
    await group_thread.opened(services, group, str(posted["ts"]))


async def _acknowledge_grouped(
    services: Services, client: AsyncWebClient, entry: OutboxEntry, alert: Alert, group: Group
) -> None:
    """A grouped alert's own sign (a reaction and a note linking its group's thread), once, paced."""
    try:
        await group_thread.acknowledge(services, client, entry, group)
    except Exception as exc:
        retry = retry_for(exc, posting=True)
        if retry is not None:
            raise retry from exc
        services.metrics.reply_errors.inc()
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
        log.error(
            "Slack refused the grouped note in %s/%s: %s",
            entry.channel,
            entry.alert_ts,
            error,
            extra={"channel": entry.channel, "alert_ts": entry.alert_ts, "alert_source": alert.source},
        )


async def _record(
    services: Services, entry: OutboxEntry, alert: Alert, decision: Decision, reply_ts: str
) -> None:
    record = DecisionRecord(
        channel=entry.channel,
        reply_ts=reply_ts,
        alert_ts=entry.alert_ts,
        source=alert.source,
        fingerprint=alert.fingerprint,
        incident_text=alert.incident.text,
        **group_thread.predicted(decision),
    )

    async def write() -> None:
        await services.store.record_decision(record)

    await services.writes.run("decision", write)


async def _already_answered(
    services: Services, client: AsyncWebClient, entry: OutboxEntry, thread_ts: str
) -> bool:
    """Did the bot answer this alert in ``thread_ts`` already (before a crash, or before an error that
    came after the post)? Then only the decision's record is made sure of."""
    try:
        thread = await client.conversations_replies(
            channel=entry.channel, ts=thread_ts, include_all_metadata=True, limit=1000
        )
    except Exception as exc:
        retry = retry_for(exc, posting=False)
        if retry is None:
            raise
        raise Retry(f"looking for an earlier reply: {retry.reason}", maybe_posted=True) from exc
    for message in thread.get("messages") or []:
        metadata = message.get("metadata") or {}
        if (
            message.get("bot_id") == entry.bot_id
            and metadata.get("event_type") in (REPLY_EVENT_TYPE, RESOLUTION_EVENT_TYPE, GROUPED_EVENT_TYPE)
            and (metadata.get("event_payload") or {}).get("alert_ts") == entry.alert_ts
        ):
            services.metrics.replies.inc(kind="found posted")
            if metadata["event_type"] == REPLY_EVENT_TYPE and not await services.store.decision(
                entry.channel, str(message["ts"])
            ):
                alert, _ = classify(entry.event, bot_user_id=entry.bot_user_id, bot_id=entry.bot_id)
                if alert is not None:
                    decision = services.engine.analyze(alert.incident)
                    await _record(services, entry, alert, decision, str(message["ts"]))
            return True
    return False


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
    prediction = TrialPrediction(
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

    async def write() -> None:
        await services.store.record_trial(prediction)

    await services.writes.run("trial prediction", write)
    return _TrialRun(decision, answered)


# What sources put before a resolved alert's title (:large_green_circle: [RESOLVED] ..., [OK] ..., OK: ...,
# Recovered: ..., [Recovered on {...}] ..., Resolved #912: ...): the note says "Resolved:" itself.
_RESOLVED_MARKER = re.compile(
    r"^\s*(?::[\w+-]+:\s*)*"
    r"(?:\[\s*(?:resolved|recovered|ok)\b[^\]\n]{0,60}\]"
    r"|(?:(?:alert|warn(?:ing)?|no data)\s+)?(?:resolved|recovered)\b\s*:?"
    r"|ok\s*:)\s*",
    re.IGNORECASE,
)


def without_resolved_marker(title: str) -> str:
    """The title without the source's own resolved marker (or the title, if that is all there is)."""
    return _RESOLVED_MARKER.sub("", title, count=1).strip() or title


async def _note_resolution(services: Services, client: AsyncWebClient, job: Job, alert: Alert) -> None:
    """A resolved notification is no new incident: say so in the original alert's thread, if known."""
    channel, fingerprint = job.entry.channel, alert.fingerprint
    if await group_thread.resolve(services, client, channel, alert):  # counted in its group's message
        await _react_resolved(services, client, job, alert)
        return
    thread = await services.store.alert_thread(channel, fingerprint) if fingerprint else None
    if thread is None:  # nothing to note it in: the reaction alone says it was read
        services.metrics.skipped.inc(reason="resolved, original unknown")
        await _react_resolved(services, client, job, alert)
        return
    if job.check_thread and await _already_answered(services, client, job.entry, thread):
        return
    text = f":white_check_mark: Resolved: {escape(without_resolved_marker(alert.incident.title))}"
    try:
        async with services.pacer.turn(channel):
            await client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=text,
                blocks=text_blocks(text),
                unfurl_links=False,
                metadata={
                    "event_type": RESOLUTION_EVENT_TYPE,
                    "event_payload": {"alert_ts": job.entry.alert_ts},
                },
            )
    except Exception as exc:
        retry = retry_for(exc, posting=True)
        if retry is not None:
            raise retry from exc
        services.metrics.reply_errors.inc()
        log.error("Slack refused the resolution note in %s/%s: %s", channel, thread, exc)
        return
    services.metrics.replies.inc(kind="resolution")
    await _react_resolved(services, client, job, alert)


async def _react_resolved(services: Services, client: AsyncWebClient, job: Job, alert: Alert) -> None:
    """The resolved notification's own sign that it was read: :white_check_mark: on it. A courtesy: when
    Slack refuses it even after slack_sdk's retries, it is logged, not retried (a retry would answer the
    resolution again)."""
    channel, ts = job.entry.channel, job.entry.alert_ts
    try:
        await group_thread.react(services, client, channel, ts, group_thread.RESOLVED_REACTION)
    except Exception as exc:
        log.warning("no reaction on the resolved alert %s/%s: %s", channel, ts, exc,
                    extra={"channel": channel, "alert_ts": ts, "alert_source": alert.source})  # fmt: skip
