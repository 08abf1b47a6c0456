"""The Web API methods the bot calls, at `/api/<method>`, parsed and answered as Slack does.

Arguments come from the query string and a JSON or form body; the token from `Authorization: Bearer`
or, except in a JSON body (Slack ignores it there), a `token` argument. Every refusal is HTTP 200 with
`{"ok": false, "error": code}`.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.local.emulator import events
from bot.local.emulator.errors import SlackApiError
from bot.local.emulator.faults import Faults
from bot.local.emulator.limits import check_content, json_list
from bot.local.emulator.state import TEAM_DOMAIN, TEAM_ID, TEAM_NAME, Message, Workspace, is_ts

Params = dict[str, Any]
Emit = Callable[[dict[str, Any]], str]
MAX_VIEW_BLOCKS = 100


@dataclass(frozen=True)
class ApiCall:
    """One call the bot made, with Slack's verdict: tests read these to see what the bot did."""

    method: str
    params: Params
    ok: bool
    error: str | None
    at: float = 0.0  # time.monotonic() when Slack answered: benchmarks measure latency to it


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _int(params: Params, name: str, default: int, maximum: int) -> int:
    value = params.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SlackApiError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] bad {name}"]}
        ) from None
    return max(1, min(number, maximum))


def _page(items: Sequence[Any], params: Params, default: int, maximum: int) -> tuple[list[Any], str]:
    """One page of a cursor-paginated list and the next cursor ('' at the end)."""
    limit = _int(params, "limit", default, maximum)
    cursor = params.get("cursor") or ""
    start = 0
    if cursor:
        try:
            prefix, _, offset = base64.b64decode(cursor, validate=True).decode().partition(":")
            start = int(offset)
        except ValueError:
            raise SlackApiError("invalid_cursor") from None
        if prefix != "offset" or not 0 <= start <= len(items):
            raise SlackApiError("invalid_cursor")
    end = start + limit
    next_cursor = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(items) else ""
    return list(items[start:end]), next_cursor


class WebApi:
    def __init__(
        self,
        workspace: Workspace,
        bot_token: str,
        faults: Faults,
        emit: Emit,
        public_url: Callable[[], str],
        app_token: str | None = None,
    ) -> None:
        self.ws = workspace
        self.bot_token = bot_token
        self.app_token = app_token  # Socket Mode: apps.connections.open is refused without one
        self.faults = faults
        self.emit = emit
        self.public_url = public_url
        self.calls: list[ApiCall] = []
        self._methods: dict[str, Callable[[Params], dict[str, Any]]] = {
            "auth.test": self.auth_test,
            "bots.info": self.bots_info,
            "chat.delete": self.chat_delete,
            "chat.getPermalink": self.chat_get_permalink,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "conversations.history": self.conversations_history,
            "conversations.info": self.conversations_info,
            "conversations.join": self.conversations_join,
            "conversations.list": self.conversations_list,
            "conversations.replies": self.conversations_replies,
            "reactions.add": self.reactions_add,
            "reactions.get": self.reactions_get,
            "reactions.remove": self.reactions_remove,
            "users.info": self.users_info,
            "views.publish": self.views_publish,
            "apps.connections.open": self.apps_connections_open,
        }

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        fault = self.faults.take(method)
        if fault is not None and not fault.after:
            faulty = await self.faults.apply(fault, method, request)
            if faulty is not None:
                return faulty
        params: Params = {}
        try:
            token, params = await self._parse(request)
            if method not in self._methods:
                raise SlackApiError("unknown_method", req_method=method)
            if not token:
                raise SlackApiError("not_authed")
            # apps.connections.open takes the app-level token, every other method the bot token
            wanted = self.app_token if method == "apps.connections.open" else self.bot_token
            if token != wanted:
                raise SlackApiError("invalid_auth")
            body = {"ok": True, **self._methods[method](params)}
        except SlackApiError as e:
            body = e.to_response()
        self.calls.append(ApiCall(method, params, body["ok"], body.get("error"), time.monotonic()))
        if fault is not None and fault.after:
            return await self.faults.apply(fault, method, request) or web.json_response(body)
        return web.json_response(body)

    @staticmethod
    async def _parse(request: web.Request) -> tuple[str | None, Params]:
        params: Params = dict(request.query)
        token = params.pop("token", None)
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                raise SlackApiError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackApiError("invalid_json")
            body.pop("token", None)
            params.update(body)
        elif request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = dict(await request.post())
            token = form.pop("token", token)
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ").strip()
        return (token if isinstance(token, str) else None), params

    # --- helpers --------------------------------------------------------------------------------

    def _bot_channel(self, params: Params, key: str = "channel") -> str:
        """The channel the bot acts in: it must exist, be unarchived, and have the bot as a member."""
        channel = self.ws.channel(params.get(key))
        if channel.is_archived:
            raise SlackApiError("is_archived")
        if self.ws.bot.user_id not in channel.members:
            raise SlackApiError("not_in_channel")
        return channel.id

    def _message(self, params: Params, ts_key: str) -> Message:
        channel = self.ws.channel(params.get("channel"))
        return self.ws.message(channel.id, params.get(ts_key))

    # --- methods --------------------------------------------------------------------------------

    def auth_test(self, params: Params) -> dict[str, Any]:
        bot = self.ws.bot
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": bot.name,
            "team_id": TEAM_ID,
            "user_id": bot.user_id,
            "bot_id": bot.id,
            "is_enterprise_install": False,
        }

    def chat_post_message(self, params: Params) -> dict[str, Any]:
        channel = self._bot_channel(params)
        content = check_content(params.get("text"), params.get("blocks"), params.get("attachments"))
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None and not is_ts(str(thread_ts)):
            raise SlackApiError("invalid_thread_ts")
        extra: dict[str, Any] = {}
        if params.get("username"):
            extra["username"] = str(params["username"])
        if params.get("icon_emoji"):
            extra["icons"] = {"emoji": str(params["icon_emoji"])}
        if params.get("metadata"):
            extra["metadata"] = self._metadata(params["metadata"])
        message = self.ws.post_as_bot(
            channel,
            content.pop("text"),
            thread_ts=str(thread_ts) if thread_ts else None,
            broadcast=_flag(params.get("reply_broadcast")),
            **content,
            **extra,
        )
        self.emit(events.message_posted(message))
        return {"channel": channel, "ts": message.ts, "message": message.to_api()}

    @staticmethod
    def _metadata(value: Any) -> dict[str, Any]:
        try:
            metadata = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            metadata = None
        if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str):
            raise SlackApiError("invalid_metadata_format")
        return metadata

    def chat_post_ephemeral(self, params: Params) -> dict[str, Any]:
        channel = self._bot_channel(params)
        user = self.ws.user(params.get("user"))
        if user.id not in self.ws.channels[channel].members:
            raise SlackApiError("user_not_in_channel")
        content = check_content(params.get("text"), params.get("blocks"), params.get("attachments"))
        message = self.ws.add_ephemeral(channel, user.id, thread_ts=params.get("thread_ts"), **content)
        return {"message_ts": message["ts"]}

    def chat_update(self, params: Params) -> dict[str, Any]:
        channel = self._bot_channel(params)
        message = self.ws.message(channel, params.get("ts"))
        text = params.get("text")
        blocks = json_list(params.get("blocks"), "invalid_blocks_format")
        attachments = json_list(params.get("attachments"), "invalid_attachments")
        # Omitted content is kept and an empty list removes it (Slack's chat.update rules).
        new_text = message.text if text is None else str(text)
        new_blocks = message.fields.get("blocks") if blocks is None else blocks
        new_attachments = message.fields.get("attachments") if attachments is None else attachments
        content = check_content(new_text, new_blocks or None, new_attachments or None)
        before, after = self.ws.update_message(
            channel,
            message.ts,
            content.pop("text"),
            self.ws.bot.id,
            blocks=content.get("blocks"),
            attachments=content.get("attachments"),
        )
        self.emit(events.message_changed(before, after, self.ws.next_ts()))
        return {"channel": channel, "ts": after.ts, "text": after.text, "message": after.to_api()}

    def chat_delete(self, params: Params) -> dict[str, Any]:
        channel = self._bot_channel(params)
        deleted = self.ws.delete_message(channel, params.get("ts"), self.ws.bot.id)  # type: ignore[arg-type]
        self.emit(events.message_deleted(deleted, self.ws.next_ts()))
        return {"channel": channel, "ts": deleted.ts}

    def chat_get_permalink(self, params: Params) -> dict[str, Any]:
        message = self._message(params, "message_ts")
        link = f"{self.public_url()}/archives/{message.channel}/p{message.ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
        return {"channel": message.channel, "permalink": link}

    def reactions_add(self, params: Params) -> dict[str, Any]:
        return self._react(params, added=True)

    def reactions_remove(self, params: Params) -> dict[str, Any]:
        return self._react(params, added=False)

    def _react(self, params: Params, added: bool) -> dict[str, Any]:
        channel = self._bot_channel(params)
        name, ts, user = str(params.get("name") or ""), params.get("timestamp"), self.ws.bot.user_id or ""
        if not name:
            raise SlackApiError("invalid_name")
        change = self.ws.add_reaction if added else self.ws.remove_reaction
        message = change(channel, ts, name, user)  # type: ignore[arg-type]
        self.emit(events.reaction(added, user, name, message, self.ws.next_ts()))
        return {}

    def reactions_get(self, params: Params) -> dict[str, Any]:
        message = self._message(params, "timestamp")
        return {"type": "message", "channel": message.channel, "message": message.to_api()}

    def conversations_info(self, params: Params) -> dict[str, Any]:
        return {"channel": self.ws.channel(params.get("channel")).to_api(self.ws.bot.user_id)}

    def conversations_list(self, params: Params) -> dict[str, Any]:
        types = str(params.get("types") or "public_channel").split(",")
        unknown = set(types) - {"public_channel", "private_channel", "mpim", "im"}
        if unknown:
            raise SlackApiError(
                "invalid_types", response_metadata={"messages": [f"[ERROR] {sorted(unknown)}"]}
            )
        channels = [
            c.to_api(self.ws.bot.user_id)
            for c in self.ws.channels.values()
            if "public_channel" in types and not (c.is_archived and _flag(params.get("exclude_archived")))
        ]
        page, cursor = _page(channels, params, default=100, maximum=1000)
        return {"channels": page, "response_metadata": {"next_cursor": cursor}}

    def conversations_history(self, params: Params) -> dict[str, Any]:
        channel = self._bot_channel(params)
        inclusive = _flag(params.get("inclusive"))
        oldest, latest = str(params.get("oldest") or "0"), params.get("latest")

        def in_range(m: Message) -> bool:
            above = m.ts >= oldest if inclusive else m.ts > oldest
            below = latest is None or (m.ts <= latest if inclusive else m.ts < latest)
            return above and below

        newest_first = [m.to_api() for m in reversed(self.ws.top_level(channel)) if in_range(m)]
        page, cursor = _page(newest_first, params, default=100, maximum=999)
        return {
            "messages": page,
            "has_more": bool(cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    def conversations_replies(self, params: Params) -> dict[str, Any]:
        channel = self._bot_channel(params)
        if not params.get("ts"):
            raise SlackApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing ts"]})
        thread = [m.to_api() for m in self.ws.thread(channel, str(params["ts"]))]
        page, cursor = _page(thread, params, default=1000, maximum=1000)
        return {"messages": page, "has_more": bool(cursor), "response_metadata": {"next_cursor": cursor}}

    def conversations_join(self, params: Params) -> dict[str, Any]:
        channel = self.ws.channel(params.get("channel"))
        if channel.is_archived:
            raise SlackApiError("is_archived")
        user = self.ws.bot.user_id or ""
        if not self.ws.join(channel.id, user):
            return {
                "channel": channel.to_api(user),
                "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]},
            }
        self.emit(events.member_joined(user, channel.id, self.ws.next_ts()))
        return {"channel": channel.to_api(user)}

    def users_info(self, params: Params) -> dict[str, Any]:
        return {"user": self.ws.user(params.get("user")).to_api()}

    def bots_info(self, params: Params) -> dict[str, Any]:
        bot = self.ws.bots.get(str(params.get("bot")))
        if bot is None:
            raise SlackApiError("bot_not_found")
        return {"bot": bot.to_api()}

    def apps_connections_open(self, params: Params) -> dict[str, Any]:
        """Socket Mode: the URL of a WebSocket that carries events, commands and clicks instead of HTTP."""
        return {"url": self.public_url().replace("http://", "ws://", 1) + "/_socket"}

    def views_publish(self, params: Params) -> dict[str, Any]:
        user = self.ws.user(params.get("user_id"))
        view = params.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except json.JSONDecodeError:
                view = None
        problems = []
        if not isinstance(view, dict) or view.get("type") != "home":
            problems.append("view must be an object of type home")
        elif not isinstance(view.get("blocks"), list) or len(view["blocks"]) > MAX_VIEW_BLOCKS:
            problems.append(f"view.blocks must be a list of at most {MAX_VIEW_BLOCKS} blocks")
        if problems or not isinstance(view, dict):
            raise SlackApiError(
                "invalid_arguments", response_metadata={"messages": [f"[ERROR] {problems[0]}"]}
            )
        current = self.ws.home_views.get(user.id)
        if params.get("hash") and current is not None and params["hash"] != current["hash"]:
            raise SlackApiError("hash_conflict")
        view_id = current["id"] if current else "V0" + secrets.token_hex(5).upper()
        bot = self.ws.bot
        published = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "home",
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": secrets.token_hex(8),
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": None,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": bot.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": TEAM_ID,
            "bot_id": bot.id,
        }
        self.ws.home_views[user.id] = published
        return {"view": published}
