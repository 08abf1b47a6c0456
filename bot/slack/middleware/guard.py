"""Slash commands and clicks act for a person: only people of the workspace the bot is installed in may
act. A signed request from another team (a Slack Connect guest, a second install of the app sharing the
signing secret) or with a malformed user id is refused before any listener runs, logged and counted. So is
one whose ``response_url`` points anywhere but Slack (hooks.slack.com, or the host of SLACK_API_URL: an
emulator or a proxy): the bot would post its answer there."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.ops.metrics import Metrics
from bot.slack.ids import USER_ID

log = logging.getLogger(__name__)
REFUSED = "Sorry, this app answers only people of the workspace it is installed in."
NOT_SLACK = "Sorry, this request's response_url is not Slack's: nothing was done."
SLACK_HOOKS = ("https", "hooks.slack.com")  # where Slack's response_urls point
_INTERACTIVE = frozenset(
    {
        "block_actions",
        "block_suggestion",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
        "interactive_message",
        "dialog_submission",
    }
)


def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def refusal(body: dict[str, Any], installed_team: str | None) -> str | None:
    """Why a command or interaction must be refused, else None."""
    if "command" in body:
        team, user, user_team = body.get("team_id"), body.get("user_id"), None
    else:
        team = _field(body.get("team"), "id")
        user, user_team = _field(body.get("user"), "id"), _field(body.get("user"), "team_id")
    if not isinstance(user, str) or not USER_ID.match(user):
        return "malformed user"
    if not installed_team or team != installed_team or user_team not in (None, installed_team):
        return "foreign team"
    return None


def _origin(url: Any) -> tuple[str, str] | None:
    """(scheme, host[:port]) of a URL, lowercased; None for what is no URL."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:  # a malformed IPv6 host
        return None
    return (parts.scheme.lower(), parts.netloc.lower()) if parts else None


def response_url_allowed(url: Any, api_url: str | None) -> bool:
    """Is ``url`` (absent is fine) on Slack's hooks host, or on the configured Web API's host?"""
    if url is None:
        return True
    origin = _origin(url)
    return origin is not None and (origin == SLACK_HOOKS or (bool(api_url) and origin == _origin(api_url)))


def register(app: AsyncApp, api_url: str | None, metrics: Metrics) -> None:
    async def only_this_workspace(
        body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        kind = "command" if "command" in body else "interaction" if body.get("type") in _INTERACTIVE else None
        if kind is None:
            return await next()
        installed = context.authorize_result.team_id if context.authorize_result else None
        reason = refusal(body, installed)
        detail = f"team {context.team_id!r}, installed in {installed!r}"
        url = body.get("response_url")
        if reason is None and not response_url_allowed(url, api_url):
            reason = "foreign response_url"
            # the host alone: the rest of a response_url is as good as a credential
            detail = f"it points at {(_origin(url) or ('', '?'))[1]!r}, not at Slack"
        if reason is None:
            return await next()
        metrics.refused.inc(kind=kind, reason=reason)
        log.warning("refused a %s: %s (%s)", kind, reason, detail)
        if kind == "command":  # the person sees why; a click just does nothing
            text = NOT_SLACK if reason == "foreign response_url" else REFUSED
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
        return BoltResponse(status=200, body="")

    app.middleware(only_this_workspace)
