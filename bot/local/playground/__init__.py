"""The local playground: the emulated workspace in a browser (channels, threads, the bot's Block Kit replies
live), a composer that posts as a person or an alert source and runs the slash commands, and a models page.
Mounted on the bot's own port in local mode only (no Slack tokens, a loopback address); static files, no
build step, nothing fetched from the network."""

from bot.local.playground.routes import add_playground

__all__ = ["add_playground"]
