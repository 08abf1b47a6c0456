"""The JSON control API under `/_emulator/`, for tests in other processes and the browser playground.

Nothing here waits for the bot: a command answers 202 with its interaction, whose responses are read
later at /_emulator/interactions/{id}. Errors: 400 (or 404 for an unknown thing) with
`{"ok": false, "error": code, "detail": why}`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.local.emulator.errors import SlackApiError
from bot.local.emulator.state import TEAM_DOMAIN, TEAM_ID, TEAM_NAME

if TYPE_CHECKING:
    from bot.local.emulator.server import SlackEmulator

Handler = Callable[[web.Request], Awaitable[Any]]


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"ok": False, "error": code, "detail": detail}, status=status)


def json_handler(handler: Handler, status: int = 200) -> Handler:
    """Turns a handler's result into JSON and every bad input into a clear 4xx."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return web.json_response(await handler(request), status=status)
        except SlackApiError as e:
            return _error(404 if e.code.endswith("_not_found") else 400, e.code, str(e))
        except (KeyError, TypeError, ValueError) as e:
            return _error(400, "invalid_arguments", str(e))

    return wrapped


async def json_body(request: web.Request, *required: str) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    missing = [name for name in required if not body.get(name)]
    if missing:
        raise ValueError(f"missing fields: {', '.join(missing)}")
    return body


def control_routes(emu: SlackEmulator) -> list[web.RouteDef]:
    ws = emu.workspace

    def channels() -> list[dict[str, Any]]:
        return [c.to_api(ws.bot.user_id) for c in ws.channels.values()]

    async def workspace(request: web.Request) -> dict[str, Any]:
        return {
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN, "name": TEAM_NAME},
            "bot": ws.bot.to_api(),
            "users": [u.to_api() for u in ws.users.values()],
            "channels": channels(),
        }

    async def list_channels(request: web.Request) -> list[dict[str, Any]]:
        return channels()

    async def history(request: web.Request) -> list[dict[str, Any]]:
        channel = request.match_info["channel"]
        return [
            m | {"replies": (await emu.replies(channel, m["ts"]))[1:] if m.get("reply_count") else []}
            for m in await emu.history(channel)
        ]

    async def post_message(request: web.Request) -> dict[str, Any]:
        body = await json_body(request, "user", "channel")
        fields = {k: body[k] for k in ("thread_ts", "blocks", "attachments", "reply_broadcast") if k in body}
        return await emu.post_message(body["user"], body["channel"], body.get("text", ""), **fields)

    async def add_reaction(request: web.Request) -> dict[str, Any]:
        body = await json_body(request, "user", "channel", "ts", "name")
        await emu.add_reaction(body["user"], body["channel"], body["ts"], body["name"])
        return {"ok": True}

    async def remove_reaction(request: web.Request) -> dict[str, Any]:
        body = await json_body(request, "user", "channel", "ts", "name")
        await emu.remove_reaction(body["user"], body["channel"], body["ts"], body["name"])
        return {"ok": True}

    async def run_command(request: web.Request) -> dict[str, Any]:
        body = await json_body(request, "user", "channel", "command")
        if not emu.delivery.bot_url and emu.delivery.socket is None:
            raise ValueError("the emulator has no bot_url to send the command to")
        return emu.start_command(
            body["user"], body["channel"], body["command"], body.get("text", "")
        ).to_dict()

    async def interaction(request: web.Request) -> dict[str, Any]:
        found = emu.interactions.by_id.get(request.match_info["id"])
        if found is None:
            raise SlackApiError("interaction_not_found", f"no interaction {request.match_info['id']!r}")
        return found.to_dict()

    async def create_webhook(request: web.Request) -> dict[str, Any]:
        body = await json_body(request, "channel")
        name = body.get("name") or "incoming-webhook"
        return {"url": emu.create_webhook(body["channel"], name, own_app=body.get("own_app") is True)}

    async def deliveries(request: web.Request) -> list[dict[str, Any]]:
        return [a.to_dict() for a in emu.attempts]

    async def calls(request: web.Request) -> list[dict[str, Any]]:
        return [c.__dict__ for c in emu.calls]

    async def ephemeral(request: web.Request) -> list[dict[str, Any]]:
        return emu.ephemeral

    return [
        web.get("/_emulator/workspace", json_handler(workspace)),
        web.get("/_emulator/channels", json_handler(list_channels)),
        web.get("/_emulator/channels/{channel}/history", json_handler(history)),
        web.post("/_emulator/messages", json_handler(post_message, 201)),
        web.post("/_emulator/reactions", json_handler(add_reaction)),
        web.delete("/_emulator/reactions", json_handler(remove_reaction)),
        web.post("/_emulator/commands", json_handler(run_command, 202)),
        web.get("/_emulator/interactions/{id}", json_handler(interaction)),
        web.post("/_emulator/webhooks", json_handler(create_webhook, 201)),
        web.get("/_emulator/deliveries", json_handler(deliveries)),
        web.get("/_emulator/calls", json_handler(calls)),
        web.get("/_emulator/ephemeral", json_handler(ephemeral)),
    ]
