"""An outbox entry answered: the alert decided on, placed in its group, and the decision posted in the
alert's thread (a resolved alert noted in its original's thread instead). Raises Retry when the answer
should be tried again; the outbox retries it."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts import Alert, classify
from bot.ops.metrics import Metrics
from bot.ops.readiness import Readiness
from bot.pipeline import group_thread
from bot.pipeline.group_thread import GROUPED_EVENT_TYPE, GroupThreads
from bot.pipeline.grouping import Group
from bot.pipeline.outbox import Job, Retry
from bot.pipeline.runbooks import Runbooks
from bot.pipeline.similar import NotSearched, Similar, SimilarIncidents
from bot.slack.blocks import decision_blocks, escape, text_blocks
from bot.slack.errors import transient
from bot.slack.lookups import ChannelNames
from bot.slack.posting import ChannelPacer
from bot.store import DecisionRecord, OutboxEntry, Store, StoreUnavailable, TrialPrediction
from bot.store.write_behind import WriteBehind
from engine.decision import AIDecisionEngine, Decision

log = logging.getLogger(__name__)


# The metadata on each reply, naming the alert it answers: how a retry finds a reply already posted.
REPLY_EVENT_TYPE, RESOLUTION_EVENT_TYPE = "oncall_decision", "oncall_resolution"
_ANSWER_EVENT_TYPES = (REPLY_EVENT_TYPE, RESOLUTION_EVENT_TYPE, GROUPED_EVENT_TYPE)


def retry_for(exc: Exception, *, posting: bool) -> Retry | None:
    """A Slack failure worth retrying (bot/slack/errors.py says which), or None for a refusal that will not
    change. ``posting``: the call posts, so an error that may come after Slack did it could mean it is done
    (a rate limit never does: Slack did nothing)."""
    passing = transient(exc)
    if passing is None:
        return None
    if passing.rate_limited:
        return Retry(passing.reason, after=passing.after)
    return Retry(passing.reason, maybe_posted=posting)


@dataclass(frozen=True, slots=True)
class _TrialRun:
    decision: Decision
    answered: bool


def canary_hit(channel: str, ts: str, share: float) -> bool:
    """A stable choice of alerts: the same alert is always in (or out of) a canary's share, on every
    replica and after a restart."""
    digest = hashlib.sha256(f"{channel}:{ts}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


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


class Answerer:
    """Answers the outbox's entries, posting through ``client`` (a client that leaves ambiguous retries to
    the outbox, which looks in the thread before posting again)."""

    def __init__(
        self,
        client: AsyncWebClient,
        watched: Callable[[str, str | None], bool],
        engine: AIDecisionEngine,
        store: Store,
        writes: WriteBehind,
        metrics: Metrics,
        pacer: ChannelPacer,
        runbooks: Runbooks,
        readiness: Readiness,
        channels: ChannelNames,
        groups: GroupThreads,
        similar: SimilarIncidents,
    ) -> None:
        self.client = client
        self.watched = watched  # (channel ID, its name) -> is it an incident channel?
        self.engine = engine
        self.store = store
        self.writes = writes
        self.metrics = metrics
        self.pacer = pacer
        self.runbooks = runbooks
        self.readiness = readiness
        self.channels = channels
        self.groups = groups
        self.similar = similar

    async def answer(self, job: Job) -> None:
        """Decide on an outbox entry and post the decision in the alert's thread (raises Retry when that
        should be tried again)."""
        entry, metrics, client = job.entry, self.metrics, self.client
        alert, reason = classify(entry.event, bot_user_id=entry.bot_user_id, bot_id=entry.bot_id)
        if alert is None:
            metrics.skipped.inc(reason=reason)
            return
        channel = entry.channel
        if not self.watched(channel, await self.channels.name(client, channel)):
            metrics.skipped.inc(reason="channel not watched")
            return
        await self.readiness.wait()  # an alert that arrives while the models load waits for them
        try:
            if alert.status == "resolved":
                await self._note_resolution(client, job, alert)
                return
            if job.check_thread and await self._already_answered(client, entry, entry.alert_ts):
                return
        except StoreUnavailable as exc:
            raise Retry(str(exc)) from exc
        decision = self.engine.analyze(alert.incident)
        trial = await self._trial(channel, entry.alert_ts, alert, decision)
        if trial is not None and trial.answered:
            decision = trial.decision  # a canary hit: the candidate answers this alert
        group, joined = await self.groups.place(entry, alert, decision)
        if joined:  # shown in the thread of the alert that opened the group, not as a decision of its own
            self.groups.schedule(client, group)
            await self._acknowledge_grouped(client, entry, alert, group)
            return
        similar = await self._similar(alert.incident.text, channel, entry.alert_ts)
        text, blocks = decision_blocks(
            decision,
            self.runbooks,
            alert.incident.title,
            with_controls=True,
            similar=similar or [],
            similar_skipped=similar is None,
        )
        try:
            async with self.pacer.turn(channel):
                posted = await client.chat_postMessage(
                    channel=channel,
                    thread_ts=entry.alert_ts,
                    text=text,
                    blocks=blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                    metadata={
                        "event_type": REPLY_EVENT_TYPE,
                        "event_payload": {
                            "alert_ts": entry.alert_ts,
                            "model_version": decision.model_version,
                        },
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
        await self._record(entry, alert, decision, str(posted["ts"]))
        await self.groups.opened(group, str(posted["ts"]))

    async def _acknowledge_grouped(
        self, client: AsyncWebClient, entry: OutboxEntry, alert: Alert, group: Group
    ) -> None:
        """A grouped alert's own sign (a reaction and a note linking its group's thread), once, paced."""
        try:
            await self.groups.acknowledge(client, entry, group)
        except Exception as exc:
            retry = retry_for(exc, posting=True)
            if retry is not None:
                raise retry from exc
            self.metrics.reply_errors.inc()
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
            log.error(
                "Slack refused the grouped note in %s/%s: %s",
                entry.channel,
                entry.alert_ts,
                error,
                extra={"channel": entry.channel, "alert_ts": entry.alert_ts, "alert_source": alert.source},
            )

    async def _similar(self, text: str, channel: str, alert_ts: str) -> list[Similar] | None:
        """The similar past incidents the decision shows; None: not looked up this time (counted)."""
        try:
            return await self.similar.similar(text, channel, alert_ts)
        except NotSearched as skipped:
            self.metrics.similar_skipped.inc(reason=skipped.reason)
            return None

    async def _record(self, entry: OutboxEntry, alert: Alert, decision: Decision, reply_ts: str) -> None:
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
            await self.store.record_decision(record)

        await self.writes.run("decision", write)

    async def _already_answered(self, client: AsyncWebClient, entry: OutboxEntry, thread_ts: str) -> bool:
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
                and metadata.get("event_type")
                in (REPLY_EVENT_TYPE, RESOLUTION_EVENT_TYPE, GROUPED_EVENT_TYPE)
                and (metadata.get("event_payload") or {}).get("alert_ts") == entry.alert_ts
            ):
                self.metrics.replies.inc(kind="found posted")
                if metadata["event_type"] == REPLY_EVENT_TYPE and not await self.store.decision(
                    entry.channel, str(message["ts"])
                ):
                    alert, _ = classify(entry.event, bot_user_id=entry.bot_user_id, bot_id=entry.bot_id)
                    if alert is not None:
                        decision = self.engine.analyze(alert.incident)
                        await self._record(entry, alert, decision, str(message["ts"]))
                return True
        return False

    async def _trial(self, channel: str, ts: str, alert: Alert, active: Decision) -> _TrialRun | None:
        """With a trial running, the candidate decides too (stored beside the active decision); a canary
        answers its share of the alerts."""
        ml = self.engine.ml
        trial, candidate = ml.trial, ml.candidate
        if trial is None or candidate is None:
            return None
        started = time.perf_counter()
        decision = self.engine.analyze(alert.incident, candidate=True)
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
            await self.store.record_trial(prediction)

        await self.writes.run("trial prediction", write)
        return _TrialRun(decision, answered)

    async def _note_resolution(self, client: AsyncWebClient, job: Job, alert: Alert) -> None:
        """A resolved notification is no new incident: say so in the original alert's thread, if known."""
        channel, fingerprint = job.entry.channel, alert.fingerprint
        if await self.groups.resolve(client, channel, alert):  # counted in its group's message
            await self._react_resolved(client, job, alert)
            return
        thread = await self.store.alert_thread(channel, fingerprint) if fingerprint else None
        if thread is None:  # nothing to note it in: the reaction alone says it was read
            self.metrics.skipped.inc(reason="resolved, original unknown")
            await self._react_resolved(client, job, alert)
            return
        if job.check_thread and await self._already_answered(client, job.entry, thread):
            return
        text = f":white_check_mark: Resolved: {escape(without_resolved_marker(alert.incident.title))}"
        try:
            async with self.pacer.turn(channel):
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
            self.metrics.reply_errors.inc()
            log.error("Slack refused the resolution note in %s/%s: %s", channel, thread, exc)
            return
        self.metrics.replies.inc(kind="resolution")
        await self._react_resolved(client, job, alert)

    async def _react_resolved(self, client: AsyncWebClient, job: Job, alert: Alert) -> None:
        """The resolved notification's own sign that it was read: :white_check_mark: on it. A courtesy: when
        Slack refuses it even after slack_sdk's retries, it is logged, not retried (a retry would answer the
        resolution again)."""
        channel, ts = job.entry.channel, job.entry.alert_ts
        try:
            await self.groups.react(client, channel, ts, group_thread.RESOLVED_REACTION)
        except Exception as exc:
            log.warning("no reaction on the resolved alert %s/%s: %s", channel, ts, exc,
                        extra={"channel": channel, "alert_ts": ts, "alert_source": alert.source})  # fmt: skip
