"""Reactions on the bot's decisions are ratings: :+1: / :-1: judge the decision, :one: :two: :three: say
which recommended action was right. Reactions on anything else are ignored."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services import Services
from bot.store import rating_for

EVENTS = ("reaction_added", "reaction_removed")


def register(app: AsyncApp, services: Services) -> None:
    async def on_reaction_added(event: dict[str, Any]) -> None:
        await rate(services, event, added=True)

    async def on_reaction_removed(event: dict[str, Any]) -> None:
        await rate(services, event, added=False)

    for event, handler in zip(EVENTS, (on_reaction_added, on_reaction_removed), strict=True):
        app.event(event)(handler)


async def rate(services: Services, event: dict[str, Any], added: bool) -> None:
    item = event.get("item")
    item = item if isinstance(item, dict) else {}
    channel, ts = item.get("channel"), item.get("ts")
    user, reaction = event.get("user"), event.get("reaction")
    if item.get("type") != "message" or not all(
        isinstance(v, str) and v for v in (channel, ts, user, reaction)
    ):
        return
    decision = await services.store.decision(channel, ts)
    if decision is None:  # not one of our decisions
        return
    rating = rating_for(reaction, decision.actions)
    if rating is None:
        return
    if added:
        await services.store.rate(channel, ts, user, reaction, rating)
        services.metrics.ratings.inc(kind=rating.kind, change="added")
    elif await services.store.withdraw(channel, ts, user, reaction):
        services.metrics.ratings.inc(kind=rating.kind, change="withdrawn")
