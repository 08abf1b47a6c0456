"""Slash commands and clicks act for a person: only people of the workspace the bot is installed in may
act. A signed request from another team (a Slack Connect guest, a second install of the app sharing the
signing secret) or with a malformed user id is refused before any listener runs, logged and counted."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.services import Services

log = logging.getLogger(__name__)
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
REFUSED = "Sorry, this app answers only people of the workspace it is installed in."
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


def register(app: AsyncApp, services: Services) -> None:
    async def only_this_workspace(
        body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        kind = "command" if "command" in body else "interaction" if body.get("type") in _INTERACTIVE else None
        if kind is None:
            return await next()
        installed = context.authorize_result.team_id if context.authorize_result else None
        reason = refusal(body, installed)
        if reason is None:
            return await next()
        services.metrics.refused.inc(kind=kind, reason=reason)
        log.warning("refused a %s: %s (team %r, installed in %r)", kind, reason, context.team_id, installed)
        if kind == "command":  # the person sees why; a click just does nothing
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": REFUSED})
        return BoltResponse(status=200, body="")

    app.middleware(only_this_workspace)
