"""manifest.yml declares everything the app listens to, with the scopes Slack requires for it."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.slack.listeners import COMMANDS, EVENTS

MANIFEST = yaml.safe_load((Path(__file__).resolve().parents[3] / "manifest.yml").read_text())
# Slack's subscriptions for an event the app handles, and the scope each subscription needs
# (https://api.slack.com/events).
SUBSCRIPTIONS = {"message": ("message.channels", "message.groups")}
SCOPE_FOR: dict[str, str | None] = {
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "reaction_added": "reactions:read",
    "reaction_removed": "reactions:read",
    "app_home_opened": None,  # needs no scope
}


def test_every_event_listened_to_is_subscribed_and_scoped() -> None:
    subscribed = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    for event in EVENTS:
        for subscription in SUBSCRIPTIONS.get(event, (event,)):
            assert subscription in subscribed, f"{subscription} (for {event}) is not subscribed"
            scope = SCOPE_FOR[subscription]
            assert scope is None or scope in scopes, f"{subscription} needs {scope}"
    assert subscribed <= {s for e in EVENTS for s in SUBSCRIPTIONS.get(e, (e,))}, "subscribed but unhandled"


def test_every_command_is_declared_and_routed_to_the_bot() -> None:
    declared = {c["command"]: c for c in MANIFEST["features"]["slash_commands"]}
    assert set(declared) == set(COMMANDS)
    for command in declared.values():
        assert command["url"].endswith("/slack/events")
    assert "commands" in MANIFEST["oauth_config"]["scopes"]["bot"]
    assert "chat:write" in MANIFEST["oauth_config"]["scopes"]["bot"]
    assert MANIFEST["settings"]["interactivity"]["request_url"].endswith("/slack/events")
