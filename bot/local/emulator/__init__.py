"""A local Slack emulator: Web API, Events API delivery, slash commands, interactivity and incoming
webhooks on 127.0.0.1, so the bot runs end to end against a real slack_bolt / slack_sdk stack offline."""

from bot.local.emulator.delivery import Answer, Attempt
from bot.local.emulator.errors import SlackApiError
from bot.local.emulator.interactions import BotResponse, CommandError, Interaction
from bot.local.emulator.server import SlackEmulator

__all__ = [
    "Answer",
    "Attempt",
    "BotResponse",
    "CommandError",
    "Interaction",
    "SlackApiError",
    "SlackEmulator",
]
