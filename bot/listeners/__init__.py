"""The Slack listeners, grouped by kind; each module's ``register(app, services)`` wires its own."""

from __future__ import annotations

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
