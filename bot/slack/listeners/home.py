"""The App Home tab: the models and their monitoring at a glance for admins, what the bot does for others."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ops.metrics import Metrics
from bot.ops.readiness import Readiness
from bot.slack.blocks import text_blocks
from bot.slack.ids import USER_ID
from bot.slack.listeners.commands import MODELS_USAGE, ModelControls
from bot.slack.lookups import Admins

log = logging.getLogger(__name__)
EVENTS = ("app_home_opened",)
ABOUT = (
    "*On-call agent.* Every alert in an incident channel gets a reply in its thread: severity, category and "
    "the recommended actions. Rate a reply with :+1: / :-1: (:one: :two: :three: for the action that was "
    "right) or correct it with the controls under it. Try `/oncall-predict ALERT TEXT`."
)


def register(
    app: AsyncApp, readiness: Readiness, admins: Admins, controls: ModelControls, metrics: Metrics
) -> None:
    async def on_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user = event.get("user")
        if not isinstance(user, str) or not USER_ID.match(user):
            metrics.refused.inc(kind="event", reason="malformed user")
            log.warning("refused app_home_opened for a malformed user id")
            return
        blocks = text_blocks(ABOUT)
        if readiness.is_set() and await admins.includes(client, user):
            blocks += [{"type": "divider"}, *text_blocks(await controls.status_text())]
            blocks += text_blocks(_monitoring(metrics))
            blocks += [{"type": "context", "elements": [{"type": "mrkdwn", "text": MODELS_USAGE[:2000]}]}]
        try:
            await client.views_publish(user_id=user, view={"type": "home", "blocks": blocks})
        except SlackApiError as exc:  # an unknown or deactivated user: nothing to show, nothing broken
            metrics.reply_errors.inc()
            log.warning("home tab of %s not published: %s", user, exc.response.get("error"))

    app.event(EVENTS[0])(on_home_opened)


def _monitoring(metrics: Metrics) -> str:
    recent = metrics.severities.shares()
    if not recent:
        return "*Last 24 h:* no decisions yet."
    shares = ", ".join(f"{s} {p:.0%}" for s, p in recent.items())
    return f"*Last 24 h:* {len(metrics.severities.recent)} decisions; severities {shares}."
