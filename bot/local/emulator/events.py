"""The Events API payloads (the inner `event`) Slack sends for each change in the workspace."""

from __future__ import annotations

from typing import Any

from bot.local.emulator.state import TEAM_ID, Message


def message_posted(message: Message) -> dict[str, Any]:
    return message.to_api(summary=False) | {
        "channel": message.channel,
        "event_ts": message.ts,
        "channel_type": "channel",
    }


def message_changed(before: Message, after: Message, event_ts: str) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": after.to_api(),
        "previous_message": before.to_api(),
        "channel": after.channel,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": "channel",
    }


def message_deleted(deleted: Message, event_ts: str) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "deleted_ts": deleted.ts,
        "channel": deleted.channel,
        "previous_message": deleted.to_api(summary=False),
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": "channel",
    }


def reaction(added: bool, user: str, name: str, message: Message, event_ts: str) -> dict[str, Any]:
    return {
        "type": "reaction_added" if added else "reaction_removed",
        "user": user,
        "reaction": name,
        "item": {"type": "message", "channel": message.channel, "ts": message.ts},
        "item_user": message.author,
        "event_ts": event_ts,
    }


def member_joined(user: str, channel: str, event_ts: str) -> dict[str, Any]:
    return {
        "type": "member_joined_channel",
        "user": user,
        "channel": channel,
        "channel_type": "C",
        "team": TEAM_ID,
        "event_ts": event_ts,
    }


def app_home_opened(user: str, event_ts: str) -> dict[str, Any]:
    """A person opened the app's Home tab."""
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": f"D{user[1:]}",
        "tab": "home",
        "event_ts": event_ts,
    }
