"""Reactions on the bot's decisions are ratings: :+1: / :-1: judge the decision, :one: :two: :three: say
which recommended action was right. Reactions on anything else are ignored. A rating made while the store
is unavailable is stored when it is back."""

from __future__ import annotations

from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.ops.metrics import Metrics
from bot.store import Store, rating_for
from bot.store.write_behind import WriteBehind

EVENTS = ("reaction_added", "reaction_removed")


def register(app: AsyncApp, store: Store, writes: WriteBehind, metrics: Metrics) -> None:
    async def on_reaction_added(event: dict[str, Any]) -> None:
        await writes.run("rating", partial(rate, store, metrics, event, added=True), key=_voter(event))

    async def on_reaction_removed(event: dict[str, Any]) -> None:
        await writes.run("rating", partial(rate, store, metrics, event, added=False), key=_voter(event))

    for event, handler in zip(EVENTS, (on_reaction_added, on_reaction_removed), strict=True):
        app.event(event)(handler)


def _voter(event: dict[str, Any]) -> tuple[str, ...]:
    """One person's vote on one message: their ratings are written in the order they were made."""
    item = event.get("item") if isinstance(event.get("item"), dict) else {}
    return ("vote", str(item.get("channel")), str(item.get("ts")), str(event.get("user")))


async def rate(store: Store, metrics: Metrics, event: dict[str, Any], added: bool) -> None:
    item = event.get("item")
    item = item if isinstance(item, dict) else {}
    channel, ts = item.get("channel"), item.get("ts")
    user, reaction = event.get("user"), event.get("reaction")
    if item.get("type") != "message" or not all(
        isinstance(v, str) and v for v in (channel, ts, user, reaction)
    ):
        return
    decision = await store.decision(channel, ts)
    if decision is None:  # not one of our decisions
        return
    rating = rating_for(reaction, decision.actions)
    if rating is None:
        return
    if added:
        await store.rate(channel, ts, user, reaction, rating)
        metrics.ratings.inc(kind=rating.kind, change="added")
    elif await store.withdraw(channel, ts, user, reaction):
        metrics.ratings.inc(kind=rating.kind, change="withdrawn")
