"""The Slack listeners, one module per kind; bot/slack/app.py registers each with what it uses."""

from __future__ import annotations

from bot.slack.listeners import commands, home, messages, reactions

# What the app listens to: manifest.yml must subscribe to and declare every one (tests check).
EVENTS = messages.EVENTS + reactions.EVENTS + home.EVENTS
COMMANDS = commands.COMMANDS
