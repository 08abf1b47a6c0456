"""The Slack listeners, grouped by kind; each module's ``register(app, services)`` wires its own."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.listeners import commands, corrections, dedup, guard, home, messages, reactions
from bot.services import Services

# What the app listens to: manifest.yml must subscribe to and declare every one (tests check).
EVENTS = messages.EVENTS + reactions.EVENTS + home.EVENTS
COMMANDS = commands.COMMANDS


def register(app: AsyncApp, services: Services) -> None:
    guard.register(app, services)  # first: a refused request reaches nothing
    dedup.register(app, services)
    messages.register(app, services)
    reactions.register(app, services)
    commands.register(app, services)
    corrections.register(app, services)
    home.register(app, services)
    unknown_events(app, services)  # last: it takes whatever the listeners above do not


def unknown_events(app: AsyncApp, services: Services) -> None:
    """An event no listener handles (the manifest changed, or Slack added one) is acknowledged with 200 and
    counted: Bolt would answer 404, and Slack would deliver it again and again."""

    async def count(event: dict[str, Any]) -> None:
        kind = str(event.get("type"))
        services.metrics.events.inc(type=kind if _EVENT_TYPE.match(kind) else "other", outcome="unhandled")

    app.event(re.compile(".*"))(count)


_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a label value, not whatever a payload says
