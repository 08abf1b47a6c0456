"""Slash commands and block_actions sent to the bot, and the response_url through which it answers.

What the bot answers (the command's HTTP body, or posts to response_url) is recorded and applied as
Slack applies it: in_channel posts a message, ephemeral is seen by the invoking user alone,
replace_original / delete_original change the message that was clicked.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.local.emulator import events
from bot.local.emulator.delivery import Answer, Delivery
from bot.local.emulator.errors import SlackApiError
from bot.local.emulator.limits import check_content
from bot.local.emulator.state import TEAM_DOMAIN, TEAM_ID, Workspace

Emit = Callable[[dict[str, Any]], str]
MAX_RESPONSES = 5  # Slack accepts five posts per response_url
_COMMAND = re.compile(r"^/[a-z0-9][a-z0-9_-]{0,31}$")


class CommandError(Exception):
    """The bot did not acknowledge a slash command in time: what Slack shows the user instead."""


@dataclass(frozen=True)
class BotResponse:
    """One answer of the bot to an interaction: `via` is "ack" (the HTTP answer) or "response_url"."""

    via: str
    payload: dict[str, Any]

    @property
    def response_type(self) -> str:
        return str(self.payload.get("response_type") or "ephemeral")

    @property
    def text(self) -> str:
        return str(self.payload.get("text") or "")


@dataclass
class Interaction:
    """A command or click: what was sent, the bot's acknowledgement, and every response since."""

    id: str
    kind: str  # command or block_actions
    user: str
    channel: str
    response_url: str
    message_ts: str | None = None  # the clicked message, for replace_original / delete_original
    form: dict[str, str] = field(default_factory=dict)  # what is posted to the bot
    ack: Answer | None = None
    responses: list[BotResponse] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def add_response(self, response: BotResponse) -> None:
        self.responses.append(response)
        self._arrived.set()

    async def first_response(self, timeout: float = 3.0) -> BotResponse:
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the bot sent no response to {self.kind} {self.id} within {timeout} s"
            ) from None
        return self.responses[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "user": self.user,
            "channel": self.channel,
            "response_url": self.response_url,
            "ack_status": self.ack.status if self.ack else None,
            "ack_error": self.ack.error if self.ack else None,
            "responses": [{"via": r.via, **r.payload} for r in self.responses],
        }


def _trigger_id() -> str:
    return f"{int(time.time() * 1000)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"


class Interactions:
    def __init__(
        self, workspace: Workspace, delivery: Delivery, emit: Emit, public_url: Callable[[], str]
    ) -> None:
        self.ws = workspace
        self.delivery = delivery
        self.emit = emit
        self.public_url = public_url
        self.by_id: dict[str, Interaction] = {}

    def _new(self, kind: str, user: str, channel: str, message_ts: str | None = None) -> Interaction:
        interaction_id = secrets.token_hex(8)
        url = f"{self.public_url()}/hooks/respond/{interaction_id}"
        interaction = Interaction(interaction_id, kind, user, channel, url, message_ts)
        self.by_id[interaction_id] = interaction
        return interaction

    def new_command(self, user: str, channel: str, command: str, text: str = "") -> Interaction:
        """A slash command ready to send, with its response_url."""
        if not _COMMAND.match(command):
            raise ValueError(
                f"a slash command is '/' and a lowercase name, such as '/oncall-predict': {command!r}"
            )
        person = self.ws.human(user)
        where = self.ws.channel(channel)
        interaction = self._new("command", person.id, where.id)
        interaction.form = {
            "token": self.delivery.verification_token,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": where.id,
            "channel_name": where.name,
            "user_id": person.id,
            "user_name": person.name,
            "command": command,
            "text": text,
            "api_app_id": self.ws.bot.app_id,
            "is_enterprise_install": "false",
            "response_url": interaction.response_url,
            "trigger_id": _trigger_id(),
        }
        return interaction

    async def send(self, interaction: Interaction) -> Interaction:
        """Posts the interaction to the bot; returns once the bot has answered the HTTP request (or failed
        to). A command's non-empty answer is its first response, as on Slack."""
        interaction.ack = await self.delivery.post_form(interaction.kind, interaction.form)
        if interaction.kind == "command" and interaction.ack.ok and interaction.ack.body.strip():
            self._record(interaction, "ack", _ack_payload(interaction.ack.body))
        return interaction

    async def run_command(
        self, user: str, channel: str, command: str, text: str, timeout: float
    ) -> BotResponse:
        interaction = await self.send(self.new_command(user, channel, command, text))
        ack = interaction.ack
        if ack is None or not ack.ok:
            reason = ack.error if ack and ack.error else f"http_status_{ack.status if ack else None}"
            shown = "operation_timeout" if reason == "http_timeout" else "dispatch_failed"
            raise CommandError(f"{command} failed with the error {shown!r} (the bot's answer: {reason})")
        return await interaction.first_response(timeout)

    def new_click(self, user: str, message: dict[str, Any], action_id: str, value: str | None) -> Interaction:
        """A person's click on the element `action_id` of a message's blocks, ready to send."""
        person = self.ws.human(user)
        if not isinstance(message, dict) or "channel" not in message or "ts" not in message:
            raise ValueError(
                "message must be a message dict with 'channel' and 'ts', as the emulator returns them"
            )
        stored = self.ws.message(self.ws.channel(message["channel"]).id, message["ts"])
        block_id, element = _find_action(stored.fields.get("blocks") or [], action_id)
        channel = self.ws.channels[stored.channel]
        interaction = self._new("block_actions", person.id, channel.id, stored.ts)
        action = {
            "action_id": action_id,
            "block_id": block_id,
            "type": element.get("type"),
            "action_ts": f"{time.time():.6f}",
        }
        if "text" in element:
            action["text"] = element["text"]
        if element.get("type") == "static_select":  # Slack sends the option picked, not a value
            chosen = next((o for o in element.get("options") or [] if o.get("value") == value), None)
            if chosen is None:
                raise ValueError(f"{value!r} is not an option of the select {action_id!r}")
            action["selected_option"] = chosen
        elif value is not None or "value" in element:
            action["value"] = value if value is not None else element["value"]
        payload = {
            "type": "block_actions",
            "user": {"id": person.id, "username": person.name, "name": person.name, "team_id": TEAM_ID},
            "api_app_id": self.ws.bot.app_id,
            "token": self.delivery.verification_token,
            "container": {
                "type": "message",
                "message_ts": stored.ts,
                "channel_id": channel.id,
                "is_ephemeral": False,
            },
            "trigger_id": _trigger_id(),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel.id, "name": channel.name},
            "message": stored.to_api(),
            "state": {"values": {}},
            "response_url": interaction.response_url,
            "actions": [action],
        }
        interaction.form = {"payload": json.dumps(payload)}
        return interaction

    async def handle_response_url(self, request: web.Request) -> web.Response:
        """POST /hooks/respond/{id}: what the bot sends to a response_url."""
        interaction = self.by_id.get(request.match_info["id"])
        if interaction is None:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        if len(interaction.responses) >= MAX_RESPONSES:
            return web.json_response({"ok": False, "error": "used_url"}, status=404)
        try:
            payload = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        try:
            self._record(interaction, "response_url", payload)
        except SlackApiError as e:
            return web.json_response(e.to_response(), status=400)
        return web.json_response({"ok": True})

    def _record(self, interaction: Interaction, via: str, payload: dict[str, Any]) -> None:
        """Applies a response as Slack would, then records it."""
        original = interaction.message_ts
        if payload.get("delete_original") and original:
            deleted = self.ws.delete_message(interaction.channel, original, self.ws.bot.id)
            self.emit(events.message_deleted(deleted, self.ws.next_ts()))
        else:
            content = check_content(payload.get("text"), payload.get("blocks"), payload.get("attachments"))
            if payload.get("replace_original") and original:
                before, after = self.ws.update_message(
                    interaction.channel,
                    original,
                    content.pop("text"),
                    self.ws.bot.id,
                    blocks=content.get("blocks"),
                    attachments=content.get("attachments"),
                )
                self.emit(events.message_changed(before, after, self.ws.next_ts()))
            elif payload.get("response_type") == "in_channel":
                thread_ts = payload.get("thread_ts")
                message = self.ws.post_as_bot(
                    interaction.channel, content.pop("text"), thread_ts=thread_ts or None, **content
                )
                self.emit(events.message_posted(message))
            else:
                self.ws.add_ephemeral(interaction.channel, interaction.user, **content)
        interaction.add_response(BotResponse(via, payload))


def _ack_payload(body: bytes) -> dict[str, Any]:
    """The message in a command's HTTP answer: JSON, or plain text taken as the message text."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    return payload if isinstance(payload, dict) else {"text": body.decode(errors="replace")}


def _find_action(blocks: list[dict[str, Any]], action_id: str) -> tuple[str | None, dict[str, Any]]:
    """The (block_id, element) holding `action_id`, in an actions block or a section's accessory."""
    found: list[str] = []
    for block in blocks:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and "action_id" in element:
                if element["action_id"] == action_id:
                    return block.get("block_id"), element
                found.append(str(element["action_id"]))
    raise ValueError(f"the message has no element with action_id {action_id!r} (it has: {found or 'none'})")
