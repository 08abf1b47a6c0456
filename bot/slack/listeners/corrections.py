"""The controls under a decision: "Severity should be …", "Category should be …", "This action fixed it".
Each is a label stored beside the reactions (one per user, decision and kind; the latest wins), and the
message is updated to say what was corrected and by whom."""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ops.metrics import Metrics
from bot.slack.blocks import escape, label, with_corrections
from bot.slack.ids import USER_ID
from bot.store import Rating, Store
from bot.store.write_behind import WriteBehind
from engine.taxonomy import ACTIONS, CATEGORIES, SEVERITIES

log = logging.getLogger(__name__)
ACTION_IDS = re.compile(r"^(correct_severity|correct_category|fixed_action_\d|fixed_other)$")
# What each control corrects, and the values it may carry (the payload comes from outside: checked).
_KINDS = {"correct_severity": ("severity", SEVERITIES), "correct_category": ("category", CATEGORIES)}


def register(app: AsyncApp, store: Store, writes: WriteBehind, metrics: Metrics) -> None:
    # One update at a time per message: two quick corrections must not leave the older note on top.
    locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()

    async def on_correction(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        key = (str((body.get("channel") or {}).get("id")), str((body.get("message") or {}).get("ts")))
        lock = locks.setdefault(key, asyncio.Lock())
        async with lock:  # stored (and shown) when the store is back, if it is unavailable now
            user = str((body.get("user") or {}).get("id"))
            await writes.run(
                "correction", partial(correct, store, metrics, client, body), key=("vote", *key, user)
            )

    app.action(ACTION_IDS)(on_correction)


async def correct(store: Store, metrics: Metrics, client: AsyncWebClient, body: dict[str, Any]) -> None:
    action = (body.get("actions") or [{}])[0]
    action_id = str(action.get("action_id") or "")
    value = str((action.get("selected_option") or {}).get("value") or action.get("value") or "")
    kind, allowed = _KINDS.get(action_id, ("action", ACTIONS))
    channel = str((body.get("channel") or {}).get("id") or "")
    message = body.get("message") or {}
    ts, user = str(message.get("ts") or ""), str((body.get("user") or {}).get("id") or "")
    if value not in allowed or not (channel and ts and user):
        metrics.ratings.inc(kind="correction", change="refused")
        return
    if await store.decision(channel, ts) is None:  # not one of our decisions
        return
    await store.rate(channel, ts, user, action_id, Rating(kind, value))
    metrics.ratings.inc(kind=kind, change="corrected")
    lines = [
        f"{'fixed by' if k == 'action' else k + ' →'} {escape(label(v))} ({_mention(u)})"
        for u, k, source, v in await store.ratings(channel, ts)
        if ACTION_IDS.match(source)  # a control, not a reaction
    ]
    blocks = with_corrections(message.get("blocks") or [], lines)
    try:
        await client.chat_update(channel=channel, ts=ts, text=str(message.get("text") or ""), blocks=blocks)
    except SlackApiError as exc:
        log.error("could not show the correction on %s/%s: %s", channel, ts, exc.response.get("error"))


def _mention(user: str) -> str:
    """A mention of the person who corrected, only for a well-formed user id (else the id, inert)."""
    return f"<@{user}>" if USER_ID.match(user) else escape(user)
