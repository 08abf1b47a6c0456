"""What a group looks like in Slack: the first alert's decision, then one "+N related alerts" message in its
thread that is edited as alerts join and resolve (at most every UPDATE_DELAY seconds, not once per alert),
and the decision itself updated when a related alert raises the group's severity.

Each alert that joins gets its own sign at once, so whoever posted it sees it was read: a :link: reaction,
and in its thread one short note linking the group's thread. Reactions are paced per workspace (Slack's
Tier 3), notes like every post per channel; beyond NOTES_PER_MINUTE notes a minute in a channel (a storm),
a joining alert gets the reaction alone, and beyond what Slack's reaction limit lets through within
REACTION_MAX_WAIT, only the count in its group's "+N related alerts" message."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts import Alert
from bot.ops.metrics import Metrics
from bot.pipeline.grouping import Group, Grouper, rank
from bot.pipeline.runbooks import Runbooks
from bot.pipeline.similar import thread_link
from bot.slack.blocks import CONTEXT_TEXT_MAX, cut, decision_blocks, escape, link, plain, text_blocks
from bot.slack.posting import REACTIONS, ChannelPacer
from bot.store import OutboxEntry, Store
from bot.store.write_behind import WriteBehind
from engine.decision import Decision

log = logging.getLogger(__name__)
UPDATE_DELAY = 2.0  # seconds a group's thread message waits for more alerts before it is edited
GROUP_EVENT_TYPE = "oncall_group"
GROUPED_EVENT_TYPE = (
    "oncall_grouped"  # the note in a joining alert's own thread (its payload names the alert)
)
GROUPED_REACTION, RESOLVED_REACTION = "link", "white_check_mark"
NOTES_PER_MINUTE = (
    10  # per channel; a storm beyond this gets reactions only (Slack: 1 post a second a channel)
)
NOTE_TITLE_MAX = 90
REACTION_MAX_WAIT = 30.0  # seconds a reaction may queue for Slack's limit; beyond (a big storm), none


def note_text(group: Group, permalink: str | None) -> str:
    """One line: which alert's thread this one joined, and that the decision is there."""
    title = cut(plain(group.title).replace("\n", " "), NOTE_TITLE_MAX) or "an earlier alert"
    shown = link(permalink, title) if permalink else f"*{escape(title)}*"
    return (
        f":link: Grouped with {shown} ({group.count} alerts so far): the decision and the related "
        "alerts are in that thread."
    )


def summary(group: Group) -> str:
    related = group.count - 1
    latest = "; ".join(escape(t) for t in list(group.titles)[-3:])
    plural = "s" if related != 1 else ""
    text = f":link: *+{related} related alert{plural}* grouped in this thread. Latest: {latest}"
    if group.resolved:
        text += f"\n:white_check_mark: {len(group.resolved)} of {len(group.fingerprints)} resolved"
    if group.closed:
        text += " · group closed"
    return cut(text, 3000)


def predicted(decision: Decision) -> dict[str, Any]:
    """What a decision record keeps of a decision."""
    return {
        "severity": decision.severity,
        "severity_confidence": decision.severity_confidence,
        "category": decision.category,
        "category_confidence": decision.category_confidence,
        "actions": [(a.action, a.confidence) for a in decision.actions],
        "model_version": decision.model_version,
    }


class GroupThreads:
    """A group's messages in Slack (its joining alerts' signs, its "+N related alerts" message, a raised
    decision) and its state, written through to the store."""

    def __init__(
        self,
        grouper: Grouper,
        store: Store,
        writes: WriteBehind,
        metrics: Metrics,
        pacer: ChannelPacer,
        runbooks: Runbooks,
        workspace_url: Callable[[], str | None],
    ) -> None:
        self.grouper = grouper
        self.store = store
        self.writes = writes
        self.metrics = metrics
        self.pacer = pacer
        self.runbooks = runbooks
        self.workspace_url = workspace_url  # where thread links point when Slack gives no permalink
        self.updates: dict[str, asyncio.Task[None]] = {}  # group id -> its pending edit

    async def place(self, entry: OutboxEntry, alert: Alert, decision: Decision) -> tuple[Group, bool]:
        """Put the alert in its group: (the group, True) when it joined one, (its new group, False) when it
        opens one (and so gets a decision message of its own)."""
        grouper, channel, now = self.grouper, entry.channel, time.time()
        async with grouper.lock(channel):
            group = grouper.find(channel, alert, now)
            if group is not None and group.thread_ts == entry.alert_ts:
                return group, False  # its own group: a retry of the alert that opened it
            if group is None:
                group = grouper.open(channel, entry.alert_ts, alert, decision.severity, now)
                await self._save(group)
                return group, False
            if entry.alert_ts not in group.alerts:
                grouper.join(group, entry.alert_ts, alert, now)
                if rank(decision.severity) > rank(group.severity):
                    group.severity, group.raised_by = decision.severity, (decision, alert.incident.title)
                await self._save(group)

                async def member() -> None:
                    await self.store.add_member(
                        channel,
                        entry.alert_ts,
                        group.id,
                        alert.fingerprint,
                        alert.incident.title,
                        decision.severity,
                    )

                await self.writes.run("group member", member)
                self.metrics.grouped.inc(source=alert.source)
        return group, True

    async def opened(self, group: Group, decision_ts: str) -> None:
        """The decision of a new group is posted: a later severity raise updates it."""
        group.decision_ts = decision_ts
        await self._save(group)

    async def acknowledge(self, client: AsyncWebClient, entry: OutboxEntry, group: Group) -> None:
        """The sign that a joining alert was read: the reaction, then (storm allowing) the note in its thread.
        Once per alert: a retry finds it done (``group.noted``; after a crash, the outbox looks in the thread
        for the note). Raises what Slack raises, for the outbox to retry or give up."""
        channel, ts = entry.channel, entry.alert_ts
        if ts in group.noted:
            return
        await self.react(client, channel, ts, GROUPED_REACTION)
        if self.grouper.note_allowed(channel, time.time(), NOTES_PER_MINUTE):
            text = note_text(group, await self._permalink(client, group))
            async with self.pacer.turn(channel):
                await client.chat_postMessage(
                    channel=channel,
                    thread_ts=ts,
                    text=text,
                    blocks=text_blocks(text),
                    unfurl_links=False,
                    unfurl_media=False,
                    metadata={
                        "event_type": GROUPED_EVENT_TYPE,
                        "event_payload": {"alert_ts": ts, "group": group.id},
                    },
                )
            self.metrics.replies.inc(kind="grouped note")
        else:
            self.metrics.replies.inc(kind="grouped, no note (storm)")
        group.noted.add(ts)
        await self._save(group)

    async def react(self, client: AsyncWebClient, channel: str, ts: str, name: str) -> None:
        """The bot's reaction ``name`` on an alert (:link: grouped, :white_check_mark: a resolution counted).
        Already there (a retry) is done; a refusal that will not change (a missing reactions:write scope, the
        message deleted) is logged. In a storm that would queue it more than REACTION_MAX_WAIT behind the
        others, none: the group's message counts the alert. Raises a 429 or 5xx for the outbox to retry."""
        if self.pacer.delay(REACTIONS) > REACTION_MAX_WAIT:
            kind = "grouped" if name == GROUPED_REACTION else "resolution"
            self.metrics.replies.inc(kind=f"{kind}, no reaction (storm)")
            return
        try:
            async with self.pacer.turn(REACTIONS):
                await client.reactions_add(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error == "already_reacted":
                return
            if exc.response.status_code == 429 or exc.response.status_code >= 500:
                raise
            log.warning("no :%s: reaction on the alert %s/%s: %s", name, channel, ts, error,
                        extra={"channel": channel, "alert_ts": ts})  # fmt: skip
            return
        self.metrics.replies.inc(
            kind="grouped reaction" if name == GROUPED_REACTION else "resolution reaction"
        )

    async def _permalink(self, client: AsyncWebClient, group: Group) -> str | None:
        """The link to the group's thread: Slack's permalink (asked once per group), else one built from the
        workspace URL as the similar incidents' links are, else None."""
        if group.permalink is None:
            try:
                found = await client.chat_getPermalink(channel=group.channel, message_ts=group.thread_ts)
                group.permalink = str(found.get("permalink") or "") or None
                await self._save(group)  # kept: a retry, or a restart, does not ask again
            except Exception as exc:  # a link built here serves as well
                log.warning("chat.getPermalink %s/%s: %s", group.channel, group.thread_ts, exc)
        if group.permalink is not None:
            return group.permalink
        return thread_link(self.workspace_url(), group.channel, group.thread_ts)

    def schedule(self, client: AsyncWebClient, group: Group) -> None:
        """Show the group's news in its thread soon, once for everything that arrives meanwhile."""
        pending = self.updates
        if group.id in pending and not pending[group.id].done():
            return

        async def show_later() -> None:
            await asyncio.sleep(UPDATE_DELAY)
            pending.pop(group.id, None)
            try:
                await self.show(client, group)
            except Exception:  # the next alert, or the next resolution, shows it again
                log.exception("could not show group %s in %s/%s", group.id, group.channel, group.thread_ts)

        pending[group.id] = asyncio.create_task(show_later())

    async def show(self, client: AsyncWebClient, group: Group) -> None:
        """Post or edit the "+N related alerts" message; update the decision if the severity rose."""
        text = summary(group)
        async with self.pacer.turn(group.channel):
            if group.update_ts is None:
                posted = await client.chat_postMessage(
                    channel=group.channel,
                    thread_ts=group.thread_ts,
                    text=text,
                    blocks=text_blocks(text),
                    unfurl_links=False,
                    metadata={"event_type": GROUP_EVENT_TYPE, "event_payload": {"group": group.id}},
                )
                group.update_ts = str(posted["ts"])
            else:
                await client.chat_update(
                    channel=group.channel, ts=group.update_ts, text=text, blocks=text_blocks(text)
                )
        self.metrics.replies.inc(kind="group update")
        if group.raised_by is not None and group.decision_ts is not None:
            decision, title = group.raised_by
            fallback, blocks = decision_blocks(decision, self.runbooks, group.title, with_controls=True)
            severity = escape(decision.severity)
            note = f":arrow_up: Severity raised to *{severity}* by a related alert: {escape(title)}"
            blocks.insert(
                1, {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(note, CONTEXT_TEXT_MAX)}]}
            )
            async with self.pacer.turn(group.channel):
                await client.chat_update(
                    channel=group.channel, ts=group.decision_ts, text=fallback, blocks=blocks
                )
            group.raised_by = None
            await self._rerecord(group.channel, group.decision_ts, decision)
            self.metrics.replies.inc(kind="severity raised")
        await self._save(group)

    async def resolve(self, client: AsyncWebClient, channel: str, alert: Alert) -> bool:
        """A resolved notification for an alert in a group of several: counted in the group's message, and the
        group closed once all its alerts resolved. False when the alert is in no such group."""
        if not alert.fingerprint:
            return False
        group = self.grouper.with_fingerprint(channel, alert.fingerprint)
        if group is None or group.count < 2:
            return False
        group.resolved.add(alert.fingerprint)
        if group.resolved >= group.fingerprints:
            self.grouper.close(group)
        self.schedule(client, group)
        return True

    async def _rerecord(self, channel: str, reply_ts: str, decision: Decision) -> None:
        """The stored decision becomes the one shown: ratings and corrections apply to what people see."""

        async def write() -> None:
            shown = await self.store.decision(channel, reply_ts)
            if shown is not None:
                await self.store.record_decision(replace(shown, **predicted(decision)))

        await self.writes.run("raised decision", write, key=("decision", channel, reply_ts))

    async def _save(self, group: Group) -> None:
        if not self.grouper.settings.on:  # each alert is its own group, closed at once: nothing to keep
            return

        async def write() -> None:
            await self.store.save_group(
                group.id, group.channel, group.thread_ts, group.state(), group.last_seen,
                time.time() if group.closed else None,
            )  # fmt: skip

        await self.writes.run("group", write, key=("group", group.id))
