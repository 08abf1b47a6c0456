"""Signed HTTP delivery to the bot, as Slack does it: Events API envelopes with Slack's retries, slash
command and interactivity forms, and raw bodies with any signature or timestamp for negative tests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

import aiohttp
from aiohttp import web

from bot.local.emulator.state import TEAM_ID

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
SLACK_ACK_TIMEOUT = 3.0
# Slack retries after about 0 s, 1 min and 5 min; the emulator keeps the shape on a seconds scale.
DEFAULT_RETRY_DELAYS = (0.0, 1.0, 5.0)


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What the bot answered to one request: its HTTP status and body, or why there was none."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] | None = None
    error: str | None = None  # http_timeout or connection_failed when status is None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, recorded for tests and the control API."""

    kind: str  # event, command, block_actions, raw, url_verification
    event_id: str | None
    retry_num: int
    retry_reason: str | None
    status: int | None
    error: str | None
    elapsed: float
    started: float = 0.0  # time.monotonic() when the request went out: benchmarks measure from it

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Delivery:
    """Posts to the bot's URL; without one, events are only recorded (nothing listens)."""

    def __init__(
        self,
        signing_secret: str,
        bot_url: str | None,
        *,
        api_app_id: str,
        bot_user_id: str,
        ack_timeout: float = SLACK_ACK_TIMEOUT,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        if ack_timeout <= 0:
            raise ValueError(f"ack_timeout must be positive, got {ack_timeout}")
        if any(d < 0 for d in retry_delays):
            raise ValueError(f"retry_delays must not be negative, got {list(retry_delays)}")
        self.signing_secret = signing_secret
        self.bot_url = bot_url
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self.verification_token = "emulator-verification-token"
        self.ack_timeout = ack_timeout
        self.retry_delays = tuple(retry_delays)
        self.attempts: list[Attempt] = []
        self.envelopes: dict[str, dict[str, Any]] = {}  # every event_callback sent, by event_id
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        # Socket Mode: while the bot holds a connection, everything goes over it instead of HTTP.
        self.socket: web.WebSocketResponse | None = None
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def drain(self) -> None:
        """Waits until every event delivery under way (retries included) has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- events ---------------------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> str:
        """Wraps an event in its envelope, records it and delivers it in the background; its event_id."""
        event_id = "Ev" + secrets.token_hex(5).upper()
        context = json.dumps({"event_id": event_id, "team": TEAM_ID}).encode()
        self.envelopes[event_id] = {
            "token": self.verification_token,
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "context_enterprise_id": None,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + base64.urlsafe_b64encode(context).decode().rstrip("="),
        }
        if self.bot_url or self.socket is not None:
            task = asyncio.get_running_loop().create_task(self._deliver_event(event_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return event_id

    async def redeliver(self, event_id: str) -> None:
        """Delivers an event again, same envelope and event_id, as a first attempt (a duplicate)."""
        if event_id not in self.envelopes:
            raise KeyError(f"no event {event_id!r} was published")
        await self._deliver_event(event_id)

    async def _deliver_event(self, event_id: str) -> None:
        body = json.dumps(self.envelopes[event_id]).encode()
        reason: str | None = None
        for retry_num in range(len(self.retry_delays) + 1):
            headers = {}
            if retry_num:
                await asyncio.sleep(self.retry_delays[retry_num - 1])
                headers = {
                    "X-Slack-Retry-Num": str(retry_num),
                    "X-Slack-Retry-Reason": reason or "unknown_error",
                }
            answer = await self._post("event", event_id, body, "application/json", headers, retry_num, reason)
            if answer.ok or (answer.headers or {}).get("X-Slack-No-Retry") == "1":
                return
            reason = answer.error or "http_error"

    async def verify_url(self) -> bool:
        """Slack's check when the Request URL is saved: the bot must echo the challenge."""
        challenge = secrets.token_urlsafe(24)
        body = json.dumps(
            {"token": self.verification_token, "challenge": challenge, "type": "url_verification"}
        )
        answer = await self._post("url_verification", None, body.encode(), "application/json")
        if not answer.ok:
            return False
        try:
            echoed = json.loads(answer.body).get("challenge")
        except (json.JSONDecodeError, AttributeError):
            echoed = answer.body.decode(errors="replace")
        return echoed == challenge

    # --- forms and raw bodies -------------------------------------------------------------------

    async def post_form(self, kind: str, fields: Mapping[str, str]) -> Answer:
        """A slash command or an interaction: one signed form post, never retried (as on Slack)."""
        return await self._post(kind, None, urlencode(fields).encode(), "application/x-www-form-urlencoded")

    async def post_raw(
        self,
        body: bytes,
        *,
        signature: str | None = None,
        timestamp: str | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        """Any body, with the given signature and timestamp instead of correct ones."""
        return await self._post("raw", None, body, content_type, signature=signature, timestamp=timestamp)

    # --- Socket Mode ----------------------------------------------------------------------------

    async def serve_socket(self, request: web.Request) -> web.WebSocketResponse:
        """The bot's Socket Mode connection (the URL apps.connections.open hands out): hello, then
        envelopes out and acks in."""
        ws = web.WebSocketResponse(heartbeat=10)
        await ws.prepare(request)
        self.socket = ws
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "connection_info": {"app_id": self.api_app_id},
                "debug_info": {"host": "emulator", "approximate_connection_time": 3600},
            }
        )
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    ack = json.loads(message.data)
                except ValueError:
                    continue
                waiter = self._acks.pop(str(ack.get("envelope_id")), None) if isinstance(ack, dict) else None
                if waiter is not None and not waiter.done():
                    waiter.set_result(ack)
        finally:
            if self.socket is ws:
                self.socket = None
        return ws

    async def _send_socket(self, kind: str, body: bytes, retry_num: int, retry_reason: str | None) -> Answer:
        """One envelope over the socket; the ack (with its payload, for commands) is the answer."""
        assert self.socket is not None
        if kind == "event":
            envelope = {"type": "events_api", "payload": json.loads(body), "accepts_response_payload": False}
            envelope |= {"retry_attempt": retry_num, "retry_reason": retry_reason or ""}
        else:
            fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if kind == "command":
                envelope = {"type": "slash_commands", "payload": fields, "accepts_response_payload": True}
            else:
                payload = json.loads(fields.get("payload", "{}"))
                envelope = {"type": "interactive", "payload": payload, "accepts_response_payload": False}
        envelope_id = secrets.token_hex(16)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = waiter
        try:
            await self.socket.send_json({"envelope_id": envelope_id, **envelope})
            ack = await asyncio.wait_for(waiter, self.ack_timeout)
        except TimeoutError:
            return Answer(None, error="http_timeout")
        except ConnectionError:
            return Answer(None, error="connection_failed")
        finally:
            self._acks.pop(envelope_id, None)
        payload = ack.get("payload")
        return Answer(200, json.dumps(payload).encode() if payload else b"")

    async def _post(
        self,
        kind: str,
        event_id: str | None,
        body: bytes,
        content_type: str,
        extra_headers: Mapping[str, str] | None = None,
        retry_num: int = 0,
        retry_reason: str | None = None,
        *,
        signature: str | None = None,
        timestamp: str | None = None,
    ) -> Answer:
        if self.socket is not None and kind in ("event", "command", "block_actions"):
            started = time.monotonic()
            answer = await self._send_socket(kind, body, retry_num, retry_reason)
            self.attempts.append(
                Attempt(kind, event_id, retry_num, retry_reason, answer.status, answer.error,
                        time.monotonic() - started, started)
            )  # fmt: skip
            return answer
        if not self.bot_url or self._session is None:
            raise RuntimeError("no bot_url to deliver to (or the emulator is not started)")
        timestamp = timestamp if timestamp is not None else str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature
            if signature is not None
            else sign(self.signing_secret, timestamp, body),
            **(extra_headers or {}),
        }
        started = time.monotonic()
        try:
            async with self._session.post(
                self.bot_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.ack_timeout),
            ) as response:
                answer = Answer(response.status, await response.read(), dict(response.headers))
        except TimeoutError:
            answer = Answer(None, error="http_timeout")
        except aiohttp.ClientError:
            answer = Answer(None, error="connection_failed")
        self.attempts.append(
            Attempt(
                kind,
                event_id,
                retry_num,
                retry_reason,
                answer.status,
                answer.error,
                time.monotonic() - started,
                started,
            )
        )
        return answer
