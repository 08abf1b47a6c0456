"""The playground's pages and JSON API, on the bot's own port in local mode.

It acts on the emulated workspace through the emulator's Python API, so everything it does reaches the bot
as Slack would send it: signed events, slash commands, clicks, incoming webhooks. The API answers only
requests addressed to this machine (a Host of 127.0.0.1 or localhost: no DNS rebinding) and takes changes
only as JSON from its own page (no cross-site form posts)."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.local.emulator import SlackEmulator
from bot.local.emulator.control import Handler, json_body, json_handler
from bot.local.emulator.errors import SlackApiError
from bot.local.emulator.history import History
from bot.local.emulator.state import Message
from bot.local.playground.live import LiveChanges
from bot.local.playground.models_view import GateVerdicts, models_summary
from bot.local.playground.templates import SOURCE_NAMES, templates
from bot.ops.readiness import Readiness
from bot.slack.listeners.commands import COMMANDS, ModelControls
from bot.store import StoreUnavailable
from engine.registry import RegistryError

STATIC = Path(__file__).parent / "static"
API = "/playground/api"
_LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: the playground is for whoever sits at this machine."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@web.middleware
async def _same_machine(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == "/" or request.path.startswith(("/playground", "/static/")):
        if not is_loopback(request.url.host or ""):
            return web.json_response({"ok": False, "error": "forbidden", "detail": "wrong Host"}, status=403)
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                return web.json_response(
                    {"ok": False, "error": "forbidden", "detail": "cross-site"}, status=403
                )
            if request.content_type != "application/json":
                return web.json_response(
                    {"ok": False, "error": "invalid_arguments", "detail": "send JSON"}, status=415
                )
    return await handler(request)


class Playground:
    def __init__(
        self,
        emulator: SlackEmulator,
        controls: ModelControls,
        readiness: Readiness,
        http: aiohttp.ClientSession,
        history: History | None = None,
    ) -> None:
        self.emu = emulator
        self.controls = controls
        self.readiness = readiness
        self.http = http
        self.history = history
        self.gate = GateVerdicts()
        self.live = LiveChanges(emulator.workspace, asyncio.get_running_loop())
        self._webhooks: dict[tuple[str, str], str] = {}  # (channel, source) -> URL

    # --- reading the workspace ----------------------------------------------------------------------

    def _author(self, message: Message) -> dict[str, Any]:
        ws = self.emu.workspace
        if message.bot_id == ws.bot.id:
            return {"name": ws.bot.name, "kind": "app"}
        if message.bot_id:
            return {"name": message.fields.get("username") or ws.bots[message.bot_id].name, "kind": "bot"}
        user = ws.users.get(message.user or "")
        return {"name": user.real_name if user else message.user or "unknown", "kind": "person"}

    def _shown(self, message: Message) -> dict[str, Any]:
        return message.to_api() | {"channel": message.channel, "author": self._author(message)}

    async def workspace(self, request: web.Request) -> dict[str, Any]:
        ws = self.emu.workspace
        return {
            "team": {"name": "Emulated Workspace"},
            "bot": {"name": ws.bot.name, "user_id": ws.bot.user_id},
            "people": [
                {"id": u.id, "name": u.name, "real_name": u.real_name, "admin": u.is_admin}
                for u in ws.users.values()
                if not u.bot_id
            ],
            "channels": [
                {"id": c.id, "name": c.name, "bot_member": ws.bot.user_id in c.members}
                for c in ws.channels.values()
            ],
            "templates": templates(),
            "commands": list(COMMANDS),
            "history": await self._history(),
        }

    async def _history(self) -> dict[str, Any]:
        """Whether the channels show what they showed before the last restart. When they start empty
        although the store kept decisions (the history file was unreadable, deleted, or written by nothing
        yet), `reset` says so in a sentence the page shows."""
        if self.history is None:
            return {"kept": False, "reset": None}
        shown = self.history.describe()
        reason = shown["reset_reason"]
        if reason is None and not shown["found"]:
            try:
                decisions = len(await self.controls.store.decisions_since(0))
            except StoreUnavailable:
                decisions = 0
            if decisions:
                reason = f"no saved history was found at {shown['file']}"
        else:
            decisions = None
        if reason is not None:
            if decisions is None:
                try:
                    decisions = len(await self.controls.store.decisions_since(0))
                except StoreUnavailable:
                    decisions = 0
            plural = "" if decisions == 1 else "s"
            reason = (
                f"The channels' history was reset: {reason}. The store kept {decisions} decision{plural} "
                "(counted on the models page), whose messages are not shown here."
            )
        return {"kept": True, "file": shown["file"], "restored": shown["restored"], "reset": reason}

    async def messages(self, request: web.Request) -> dict[str, Any]:
        """A channel as `viewer` sees it: its messages oldest first, each with its thread, and the
        ephemeral messages shown to `viewer` alone."""
        ws = self.emu.workspace
        channel = ws.channel(request.match_info["channel"])
        viewer = ws.human(request.query.get("viewer", "alice")).id
        shown = []
        for message in ws.top_level(channel.id):
            thread = ws.thread(channel.id, message.ts)[1:] if message.replies else []
            shown.append(self._shown(message) | {"replies": [self._shown(r) for r in thread]})
        ephemeral = [
            e | {"author": {"name": ws.bot.name, "kind": "app"}}
            for e in ws.ephemeral
            if e["channel"] == channel.id and e["user"] == viewer
        ]
        return {
            "channel": {"id": channel.id, "name": channel.name},
            "messages": shown,
            "ephemeral": ephemeral,
        }

    # --- acting as people and alert sources ----------------------------------------------------------

    async def post_message(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request, "user", "channel", "text")
        fields = {"thread_ts": body["thread_ts"]} if body.get("thread_ts") else {}
        return await self.emu.post_message(body["user"], body["channel"], str(body["text"]), **fields)

    async def post_alert(self, request: web.Request) -> dict[str, Any]:
        """The alert as its source posts it: to an incoming webhook of the channel, over HTTP."""
        body = await json_body(request, "source", "channel", "payload")
        source, payload = str(body["source"]), body["payload"]
        if source not in SOURCE_NAMES:
            raise ValueError(f"unknown source {source!r}: one of {', '.join(SOURCE_NAMES)}")
        if not isinstance(payload, dict):
            raise ValueError("payload must be a JSON object, as the source posts to an incoming webhook")
        channel = self.emu.workspace.channel(body["channel"]).id
        url = self._webhooks.get((channel, source))
        if url is None:
            url = self._webhooks[(channel, source)] = self.emu.create_webhook(channel, SOURCE_NAMES[source])
        async with self.http.post(url, json=payload) as response:
            answer = await response.text()
        if response.status != 200:
            raise SlackApiError(answer or "invalid_payload", f"the webhook refused the alert: {answer}")
        return {"ok": True}

    async def run_command(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request, "user", "channel", "command")
        interaction = self.emu.start_command(
            body["user"], body["channel"], str(body["command"]), str(body.get("text") or "")
        )
        return interaction.to_dict()

    async def react(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request, "user", "channel", "ts", "name")
        change = self.emu.add_reaction if request.method == "POST" else self.emu.remove_reaction
        await change(body["user"], body["channel"], body["ts"], str(body["name"]))
        return {"ok": True}

    async def click(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request, "user", "channel", "ts", "action_id")
        value = body.get("value")
        message = {"channel": body["channel"], "ts": body["ts"]}
        interaction = await self.emu.click(
            body["user"], message, str(body["action_id"]), None if value is None else str(value)
        )
        return interaction.to_dict()

    # --- models --------------------------------------------------------------------------------------

    async def models(self, request: web.Request) -> dict[str, Any]:
        return await models_summary(self.controls, self.readiness, self.gate)

    async def model_action(self, request: web.Request) -> dict[str, Any]:
        """Reload, roll back or promote, through the same steps as `/oncall-models`; the answer is its
        reply (mrkdwn) and whether it worked."""
        action = request.match_info["action"]
        body = await json_body(request)
        await self.readiness.wait()
        if action == "reload":
            text = await self.controls.reload_active()
        elif action == "rollback":
            text = await self.controls.rollback()
        elif action == "promote":
            text = await self._promote(str(body.get("version") or ""), body.get("force") is True)
        else:
            raise SlackApiError("action_not_found", f"no model action {action!r}: reload, rollback, promote")
        return {"ok": not text.startswith(":x:"), "text": text}

    async def _promote(self, version: str, force: bool) -> str:
        """As `oncall models promote VERSION [--force]`: a version the promotion gate refuses against the
        active one is promoted only when forced past it."""
        if not version:
            raise ValueError("missing fields: version")
        registry = self.controls.ml.registry
        try:
            verdict = await self.gate.verdict(registry, version)
        except RegistryError as exc:
            return f":x: {exc}"
        if verdict is not None and not verdict["passed"] and not force:
            return (
                f":x: The promotion gate refuses `{version}`: {'; '.join(verdict['reasons'])}. "
                "*Promote anyway* forces it past the gate (as `oncall models promote VERSION --force`)."
            )
        forced = verdict is not None and not verdict["passed"]
        try:
            return await self.controls.promote(version, "playground", "playground", forced)
        except RegistryError as exc:
            return f":x: {exc}"

    # --- pages ---------------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.get("/models", self.index),
            web.static("/static", STATIC, append_version=False),
            web.get(f"{API}/workspace", json_handler(self.workspace)),
            web.get(f"{API}/channels/{{channel}}/messages", json_handler(self.messages)),
            web.get(f"{API}/events", self.live.stream),
            web.post(f"{API}/messages", json_handler(self.post_message, 201)),
            web.post(f"{API}/alerts", json_handler(self.post_alert, 201)),
            web.post(f"{API}/commands", json_handler(self.run_command, 202)),
            web.post(f"{API}/reactions", json_handler(self.react)),
            web.delete(f"{API}/reactions", json_handler(self.react)),
            web.post(f"{API}/clicks", json_handler(self.click)),
            web.get(f"{API}/models", json_handler(self.models)),
            web.post(f"{API}/models/{{action}}", json_handler(self.model_action)),
        ]


def add_playground(
    app: web.Application,
    emulator: SlackEmulator,
    controls: ModelControls,
    readiness: Readiness,
    http: aiohttp.ClientSession,
    history: History | None = None,
) -> Playground:
    """Mounts the playground on `app` (before it starts); `history` is what keeps its channels across
    restarts, when something does."""
    playground = Playground(emulator, controls, readiness, http, history)
    app.middlewares.append(_same_machine)
    app.router.add_routes(playground.routes())

    async def close_streams(app: web.Application) -> None:
        await playground.live.close()

    app.on_shutdown.append(close_streams)
    return playground
