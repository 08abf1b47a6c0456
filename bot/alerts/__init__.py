"""Slack messages in incident channels -> ``Alert`` (an ``IncidentCreate`` plus source, status, identity).

``parse_message(event)`` is what the bot calls on every ``message`` event; ``classify(event)`` also says
why a message was skipped, for logs and metrics. Sources are tried most specific first, a person's
message last. ``samples/<source>/<name>.json`` holds what each source really posts (``sample()`` reads one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import alertmanager, cloudwatch, datadog, grafana, human, pagerduty, sentry
from .alert import Alert, normalise_severity
from .slack_text import Flat, flatten

__all__ = [
    "SAMPLES",
    "SOURCES",
    "Alert",
    "Flat",
    "classify",
    "flatten",
    "is_own",
    "normalise_severity",
    "parse_message",
    "sample",
]

# Grafana before Alertmanager (same title, Grafana's footer tells them apart); Datadog before PagerDuty
# (Datadog messages mention @pagerduty handles); a person last.
_PARSERS = (grafana, alertmanager, datadog, sentry, cloudwatch, pagerduty)
SOURCES = tuple(p.SOURCE for p in (*_PARSERS, human))
SAMPLES = Path(__file__).parent / "samples"  # <source>/<name>.json: a body as the source posts it

_SKIPPED_SUBTYPES = {
    "message_changed": "edit",
    "message_deleted": "delete",
    "message_replied": "edit",  # a parent's reply count changed: not a new message
    "channel_join": "join",
    "group_join": "join",
    "channel_leave": "leave",
    "group_leave": "leave",
    **dict.fromkeys(
        (
            "channel_topic",
            "channel_purpose",
            "channel_name",
            "channel_archive",
            "channel_unarchive",
            "group_topic",
            "group_purpose",
            "group_name",
            "group_archive",
            "group_unarchive",
            "pinned_item",
            "unpinned_item",
            "bot_add",
            "bot_remove",
            "channel_convert_to_private",
            "channel_convert_to_public",
        ),
        "channel event",
    ),
}


def is_own(event: dict[str, Any], bot_user_id: str | None, bot_id: str | None) -> bool:
    """Did this app post it? Its replies (chat.postMessage) carry its bot user and its bot_id. A message
    posted through the app's own incoming webhook carries the app's bot_id too, but as a ``bot_message``
    without a user: that is an alert someone sent (Alertmanager pointed at the app's webhook), not the bot
    talking, and it is answered."""
    if bot_user_id and event.get("user") == bot_user_id:
        return True
    through_webhook = event.get("subtype") == "bot_message" and not event.get("user")
    return bool(bot_id) and event.get("bot_id") == bot_id and not through_webhook


def _skip_reason(event: Any, bot_user_id: str | None, bot_id: str | None) -> str | None:
    if not isinstance(event, dict) or event.get("type", "message") != "message":
        return "not a message"
    subtype = event.get("subtype")
    if isinstance(subtype, str) and subtype in _SKIPPED_SUBTYPES:
        return _SKIPPED_SUBTYPES[subtype]
    if event.get("hidden") is True:
        return "hidden"
    if is_own(event, bot_user_id, bot_id):
        return "own message"
    thread_ts = event.get("thread_ts")
    # Slack's thread_ts is a timestamp string; anything else is malformed, not a sign of a reply, and the
    # message is answered as the top-level message it otherwise is.
    if isinstance(thread_ts, str) and thread_ts and thread_ts != event.get("ts"):
        return "thread reply"  # thread_broadcast too: it is a reply, also shown in the channel
    return None


def classify(
    event: Any, *, bot_user_id: str | None = None, bot_id: str | None = None
) -> tuple[Alert | None, str]:
    """``(alert, source)`` for a candidate alert, else ``(None, reason)``.

    Reasons: "not a message", "edit", "delete", "join", "leave", "channel event", "hidden",
    "own message", "thread reply", "empty".
    """
    reason = _skip_reason(event, bot_user_id, bot_id)
    if reason:
        return None, reason
    flat = flatten(event)
    if not flat.text.strip():
        return None, "empty"
    parser = next(p for p in (*_PARSERS, human) if p.detect(event, flat))  # human takes any text
    return parser.parse(event, flat), parser.SOURCE


def parse_message(event: Any, *, bot_user_id: str | None = None, bot_id: str | None = None) -> Alert | None:
    """The ``Alert`` a Slack ``message`` event carries, or None when it is not a candidate alert."""
    return classify(event, bot_user_id=bot_user_id, bot_id=bot_id)[0]


def sample(source: str, name: str) -> dict[str, Any]:
    """A sample payload, as ``source`` posts it to Slack: ``sample("grafana", "firing")``."""
    body: dict[str, Any] = json.loads((SAMPLES / source / f"{name}.json").read_text(encoding="utf-8"))
    return body
