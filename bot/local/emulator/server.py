"""`SlackEmulator`: the aiohttp app on 127.0.0.1 that a real slack_bolt / slack_sdk client talks to, and
the async Python API tests use to act as the people in the workspace."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.local.emulator import events
from bot.local.emulator.control import control_routes
from bot.local.emulator.delivery import DEFAULT_RETRY_DELAYS, SLACK_ACK_TIMEOUT, Answer, Attempt, Delivery
from bot.local.emulator.faults import Faults
from bot.local.emulator.interactions import BotResponse, Interaction, Interactions
from bot.local.emulator.limits import check_content
from bot.local.emulator.state import Message, Workspace, is_ts
from bot.local.emulator.web_api import ApiCall, WebApi
from bot.local.emulator.webhooks import Webhooks

HOST = "127.0.0.1"


def _with_channel(message: Message) -> dict[str, Any]:
    """A message as the API shows it, plus its channel, so it can be handed back (to click, replies)."""
    return message.to_api() | {"channel": message.channel}


def _check_bot_url(url: str | None) -> None:
    if url is not None and not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError(f"bot_url must be an http URL on this machine (127.0.0.1), got {url!r}")


class SlackEmulator:
    """A Slack workspace on 127.0.0.1: Web API at `api_url`, events, commands and clicks signed to `bot_url`.

    `ack_timeout` is Slack's 3 s wait for the bot's 2xx before it retries an event; `retry_delays` the
    waits before retries 1..3 (tests shorten both). With an `app_token` the bot may connect in Socket Mode
    (apps.connections.open); while connected, everything goes over that socket instead of `bot_url`.
    """

    def __init__(
        self,
        signing_secret: str,
        bot_token: str,
        bot_url: str | None = None,
        host: str = HOST,
        port: int = 0,
        *,
        ack_timeout: float = SLACK_ACK_TIMEOUT,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        app_token: str | None = None,
    ) -> None:
        if host != HOST:
            raise ValueError(f"the emulator listens on {HOST} only, not {host!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (any free port) to 65535, got {port}")
        if not signing_secret or not bot_token:
            raise ValueError("signing_secret and bot_token must be non-empty")
        _check_bot_url(bot_url)
        self.workspace = Workspace()
        self.faults = Faults()
        self.delivery = Delivery(
            signing_secret,
            bot_url,
            api_app_id=self.workspace.bot.app_id,
            bot_user_id=self.workspace.bot.user_id or "",
            ack_timeout=ack_timeout,
            retry_delays=retry_delays,
        )
        self.web_api = WebApi(self.workspace, bot_token, self.faults, self._emit, lambda: self.url, app_token)
        self.webhooks = Webhooks(self.workspace, self._emit, lambda: self.url)
        self.interactions = Interactions(self.workspace, self.delivery, self._emit, lambda: self.url)
        self._port = port
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def bot_url(self) -> str | None:
        return self.delivery.bot_url

    @bot_url.setter
    def bot_url(self, url: str | None) -> None:
        """Where events, commands and clicks go (set once the bot knows its port)."""
        _check_bot_url(url)
        self.delivery.bot_url = url

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already started")
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self.web_api.handle)
        app.router.add_post("/services/{team}/{bot}/{secret}", self.webhooks.handle)
        app.router.add_post("/hooks/respond/{id}", self.interactions.handle_response_url)
        app.router.add_get("/_socket", self.delivery.serve_socket)
        app.router.add_routes(control_routes(self))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self._port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        await self.delivery.start()

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.delivery.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the emulator is not started: await start() or use `async with`")
        return f"http://{HOST}:{self._port}"

    @property
    def api_url(self) -> str:
        """The base_url for slack_sdk's AsyncWebClient (ends with /api/)."""
        return f"{self.url}/api/"

    # --- what happened --------------------------------------------------------------------------

    @property
    def attempts(self) -> list[Attempt]:
        """Every delivery attempt to the bot (events with their retries, commands, clicks, raw bodies)."""
        return self.delivery.attempts

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        """Every event_callback envelope published, by event_id, in order."""
        return self.delivery.envelopes

    @property
    def calls(self) -> list[ApiCall]:
        """Every Web API call the bot made, with Slack's verdict."""
        return self.web_api.calls

    @property
    def ephemeral(self) -> list[dict[str, Any]]:
        """Ephemeral messages the bot showed (chat.postEphemeral and ephemeral responses)."""
        return self.workspace.ephemeral

    def _emit(self, event: dict[str, Any]) -> str:
        event_id = self.delivery.publish(event)
        self._changed.set()
        self._changed = asyncio.Event()
        return event_id

    async def settle(self) -> None:
        """Waits until every event delivery under way (retries included) has finished."""
        await self.delivery.drain()

    # --- acting as people -----------------------------------------------------------------------

    async def post_message(self, user: str, channel: str, text: str = "", **fields: Any) -> dict[str, Any]:
        """A person (id or name) posts; `fields`: thread_ts, blocks, attachments, reply_broadcast."""
        unknown = set(fields) - {"thread_ts", "blocks", "attachments", "reply_broadcast"}
        if unknown:
            raise TypeError(f"post_message() got unknown fields {sorted(unknown)}")
        person = self.workspace.human(user)
        where = self.workspace.channel(channel)
        thread_ts = fields.get("thread_ts")
        if thread_ts is not None and not is_ts(thread_ts):
            raise ValueError(f"thread_ts must be a message ts such as '1732600000.000100', got {thread_ts!r}")
        content = check_content(text, fields.get("blocks"), fields.get("attachments"))
        message = self.workspace.add_message(
            where.id,
            content.pop("text"),
            user=person.id,
            thread_ts=thread_ts,
            broadcast=bool(fields.get("reply_broadcast")),
            **content,
        )
        self._emit(events.message_posted(message))
        return _with_channel(message)

    async def add_reaction(self, user: str, channel: str, ts: str, name: str) -> None:
        person, where = self.workspace.human(user), self.workspace.channel(channel)
        message = self.workspace.add_reaction(where.id, ts, name, person.id)
        self._emit(events.reaction(True, person.id, name, message, self.workspace.next_ts()))

    async def remove_reaction(self, user: str, channel: str, ts: str, name: str) -> None:
        person, where = self.workspace.human(user), self.workspace.channel(channel)
        message = self.workspace.remove_reaction(where.id, ts, name, person.id)
        self._emit(events.reaction(False, person.id, name, message, self.workspace.next_ts()))

    async def open_app_home(self, user: str) -> None:
        """A person opens the app's Home tab; what the bot publishes lands in `home_view(user)`."""
        person = self.workspace.human(user)
        self._emit(events.app_home_opened(person.id, self.workspace.next_ts()))

    def home_view(self, user: str) -> dict[str, Any] | None:
        return self.workspace.home_views.get(self.workspace.human(user).id)

    async def history(self, channel: str) -> list[dict[str, Any]]:
        """The channel's messages, oldest first (as a person reads them), without thread replies."""
        return [_with_channel(m) for m in self.workspace.top_level(self.workspace.channel(channel).id)]

    async def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """A thread: the parent, then its replies, oldest first."""
        return [_with_channel(m) for m in self.workspace.thread(self.workspace.channel(channel).id, ts)]

    async def wait_for_bot_message(
        self, channel: str, thread_ts: str | None = None, timeout: float = 5.0, after: str | None = None
    ) -> dict[str, Any]:
        """The first message of the app's bot in `channel` (in the thread `thread_ts`, if given) newer than
        `after` (default: the thread's parent, or the start of the channel), waiting up to `timeout` s."""
        where = self.workspace.channel(channel).id
        after = after or thread_ts or "0"
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            candidates = (
                self.workspace.thread(where, thread_ts)[1:] if thread_ts else self.workspace.top_level(where)
            )
            for message in candidates:
                if message.bot_id == self.workspace.bot.id and message.ts > after:
                    return _with_channel(message)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                place = f"thread {thread_ts} of {where}" if thread_ts else where
                raise TimeoutError(f"the bot posted nothing in {place} after {after} within {timeout} s")
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue

    def create_webhook(self, channel: str, name: str = "incoming-webhook", own_app: bool = False) -> str:
        """An incoming webhook URL posting into `channel` (id or '#name'): a custom integration's, or with
        `own_app` the app's own (its posts carry the app's bot_id, as Slack stamps them)."""
        return self.webhooks.create(channel, name, own_app)

    async def run_command(
        self, user: str, channel: str, command: str, text: str = "", timeout: float = 3.0
    ) -> BotResponse:
        """A person runs a slash command; the bot's first response (its HTTP answer or a response_url post).
        Raises CommandError when the bot fails to ack, TimeoutError when it never responds."""
        return await self.interactions.run_command(user, channel, command, text, timeout)

    async def click(
        self, user: str, message: dict[str, Any], action_id: str, value: str | None = None
    ) -> Interaction:
        """A person clicks a button (or other element) of `message`; await `.first_response()` for the
        bot's response_url answer, if it sends one."""
        return await self.interactions.send(self.interactions.new_click(user, message, action_id, value))

    def start_command(self, user: str, channel: str, command: str, text: str = "") -> Interaction:
        """Sends a command without waiting for anything (the control API's way): its Interaction at once."""
        interaction = self.interactions.new_command(user, channel, command, text)
        task = asyncio.get_running_loop().create_task(self.interactions.send(interaction))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return interaction

    # --- delivery tests -------------------------------------------------------------------------

    async def redeliver(self, event_id: str) -> None:
        """Delivers a published event again, same event_id (Slack sometimes sends duplicates)."""
        await self.delivery.redeliver(event_id)

    async def deliver_raw(
        self,
        body: bytes | str | dict[str, Any],
        *,
        signature: str | None = None,
        timestamp: str | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        """Posts any body to the bot, signed correctly unless `signature` / `timestamp` say otherwise."""
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        return await self.delivery.post_raw(
            body, signature=signature, timestamp=timestamp, content_type=content_type
        )

    async def verify_url(self) -> bool:
        """Slack's url_verification handshake against bot_url: True when the bot echoes the challenge."""
        return await self.delivery.verify_url()
