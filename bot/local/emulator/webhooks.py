"""Incoming webhooks: `POST /services/T.../B.../<secret>` with Slack's JSON (or a legacy `payload=` form)
becomes a `bot_message` in the webhook's channel, so Alertmanager, Grafana or curl can post into it.

A webhook is either a custom integration's, posting as a bot of its own (``bot_message``, its ``bot_id``,
``username``, no user), or the app's own (``own_app``: the ``incoming-webhook`` scope in manifest.yml
gives the app one per channel it is installed into), posting as the app: the app's own ``bot_id``,
``app_id`` and ``bot_profile``, still subtype ``bot_message`` and without a ``user``. That missing user is
what tells such a post from the app's own chat.postMessage replies, which carry the app's bot user."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.local.emulator import events
from bot.local.emulator.errors import SlackApiError
from bot.local.emulator.limits import check_content
from bot.local.emulator.state import TEAM_ID, Bot, Workspace, is_ts

Emit = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Webhook:
    channel: str
    bot: Bot
    secret: str

    @property
    def path(self) -> str:
        return f"/services/{TEAM_ID}/{self.bot.id}/{self.secret}"


def _refuse(status: int, error: str) -> web.Response:
    """Webhooks answer in plain text: 'ok', or an error string with a 4xx status."""
    return web.Response(status=status, text=error)


class Webhooks:
    def __init__(self, workspace: Workspace, emit: Emit, public_url: Callable[[], str]) -> None:
        self.ws = workspace
        self.emit = emit
        self.public_url = public_url
        self._by_path: dict[str, Webhook] = {}

    def create(self, channel: str, name: str = "incoming-webhook", own_app: bool = False) -> str:
        """A new webhook posting into `channel` (id or name) as its own bot, or as the app (`own_app`);
        its URL."""
        bot = self.ws.bot if own_app else self.ws.new_bot(name)
        webhook = Webhook(self.ws.channel(channel).id, bot, secrets.token_urlsafe(18))
        self._by_path[webhook.path] = webhook
        return self.public_url() + webhook.path

    async def handle(self, request: web.Request) -> web.Response:
        webhook = self._by_path.get(request.path)
        if webhook is None:
            return _refuse(404, "no_service")
        raw = await request.read()
        if request.content_type == "application/x-www-form-urlencoded":
            raw = str((await request.post()).get("payload", "")).encode()
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return _refuse(400, "invalid_payload")
        channel = self.ws.channels[webhook.channel]
        if channel.is_archived:
            return _refuse(410, "channel_is_archived")
        try:
            content = check_content(payload.get("text"), payload.get("blocks"), payload.get("attachments"))
        except SlackApiError as e:
            return _refuse(400, e.code)
        thread_ts = payload.get("thread_ts")
        if thread_ts is not None and not is_ts(thread_ts):
            return _refuse(400, "invalid_thread_ts")
        icons = {"emoji": payload["icon_emoji"]} if payload.get("icon_emoji") else {}
        if payload.get("icon_url"):
            icons = {"image_48": payload["icon_url"]}
        bot = webhook.bot
        app = {"app_id": bot.app_id, "bot_profile": bot.profile()} if bot is self.ws.bot else {}
        message = self.ws.add_message(
            channel.id,
            content.pop("text"),
            bot_id=webhook.bot.id,
            subtype="bot_message",
            thread_ts=thread_ts,
            username=str(payload.get("username") or webhook.bot.name),
            **({"icons": icons} if icons else {}),
            **app,
            **content,
        )
        self.emit(events.message_posted(message))
        return web.Response(text="ok")
