"""The Slack emulator driven by the real slack_sdk / slack_bolt over HTTP on 127.0.0.1, with a small bot
endpoint that checks every signature with slack_sdk's SignatureVerifier."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.local.emulator import CommandError, SlackEmulator

pytestmark = pytest.mark.asyncio

SECRET = "test-signing-secret"
TOKEN = "xoxb-emulator-test"
ACK_TIMEOUT = 0.3
TS = re.compile(r"^\d{10}\.\d{6}$")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


Behaviour = Callable[[Received], Awaitable[web.Response]]


class Bot:
    """The bot's endpoint: verifies each request's signature, records it, and answers as `behaviour` says."""

    def __init__(self) -> None:
        self.verifier = SignatureVerifier(SECRET)
        self.received: list[Received] = []
        self.behaviour: Behaviour | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        verified = self.verifier.is_valid(
            body, headers.get("X-Slack-Request-Timestamp", ""), headers.get("X-Slack-Signature", "")
        )
        received = Received(headers, body, verified)
        self.received.append(received)
        if not verified:
            return web.Response(status=401)
        if self.behaviour is not None:
            return await self.behaviour(received)
        return web.Response()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The event envelopes received (first attempts only), optionally of one event type."""
        out = []
        for r in self.received:
            if "X-Slack-Retry-Num" in r.headers or not r.body.startswith(b"{"):
                continue
            envelope = r.json
            if envelope.get("type") == "event_callback" and kind in (None, envelope["event"]["type"]):
                out.append(envelope)
        return out


@pytest_asyncio.fixture
async def bot() -> AsyncIterator[Bot]:
    endpoint = Bot()
    app = web.Application()
    app.router.add_post("/slack/events", endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    endpoint.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield endpoint
    await runner.cleanup()


@pytest_asyncio.fixture
async def emu(bot: Bot) -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(
        SECRET, TOKEN, bot.url, ack_timeout=ACK_TIMEOUT, retry_delays=(0, 0, 0)
    ) as emulator:
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emu.api_url)


async def slack_error(call: Awaitable[Any]) -> str:
    with pytest.raises(SlackApiError) as info:
        await call
    assert info.value.response.status_code == 200
    return info.value.response["error"]


# --- Web API ---------------------------------------------------------------------------------------


async def test_auth_test_and_post_message_return_slacks_shapes(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    auth = await client.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T0EMULATOR", "U0ONCALLBOT", "B0ONCALLBOT")

    first = await client.chat_postMessage(channel="#incidents", text="one", unfurl_links=False)
    second = await client.chat_postMessage(channel="C0INCIDENTS", text="two")
    assert first["ok"] and first["channel"] == "C0INCIDENTS"
    assert TS.match(first["ts"]) and TS.match(second["ts"]) and second["ts"] > first["ts"]
    message = first["message"]
    assert message["ts"] == first["ts"] and message["text"] == "one"
    assert (message["user"], message["bot_id"], message["app_id"]) == (
        "U0ONCALLBOT",
        "B0ONCALLBOT",
        "A0ONCALLAPP",
    )
    assert "subtype" not in message
    history = await client.conversations_history(channel="C0INCIDENTS")
    assert [m["text"] for m in history["messages"]] == ["two", "one"]  # newest first, as Slack
    assert [m["text"] for m in await emu.history("#incidents")] == ["one", "two"]
    assert emu.calls[-1].method == "conversations.history" and emu.calls[-1].ok


async def test_token_from_header_or_form_but_never_from_a_json_body(emu: SlackEmulator) -> None:
    assert await slack_error(AsyncWebClient(base_url=emu.api_url).auth_test()) == "not_authed"
    assert (
        await slack_error(AsyncWebClient(token="xoxb-wrong", base_url=emu.api_url).auth_test())
        == "invalid_auth"
    )
    async with aiohttp.ClientSession() as session:
        form = {"token": TOKEN, "channel": "C0INCIDENTS", "text": "hi", "blocks": '[{"type": "divider"}]'}
        async with session.post(emu.api_url + "chat.postMessage", data=form) as response:
            posted = await response.json()
        assert posted["ok"] and posted["message"]["blocks"] == [{"type": "divider"}]
        async with session.post(
            emu.api_url + "chat.postMessage", data=form | {"blocks": "[not json"}
        ) as response:
            assert (await response.json())["error"] == "invalid_blocks_format"
        async with session.post(emu.api_url + "auth.test", json={"token": TOKEN}) as response:
            assert response.status == 200 and (await response.json())["error"] == "not_authed"
        async with session.post(emu.api_url + "no.suchMethod", data={"token": TOKEN}) as response:
            assert (await response.json())["error"] == "unknown_method"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")  # no_text on purpose
async def test_content_limits_and_error_codes(emu: SlackEmulator, client: AsyncWebClient) -> None:
    post = client.chat_postMessage
    assert await slack_error(post(channel="#nope", text="x")) == "channel_not_found"
    assert await slack_error(post(channel="C0INCIDENTS", text="")) == "no_text"
    assert await slack_error(post(channel="C0INCIDENTS", text="x" * 40_001)) == "msg_too_long"
    assert (await post(channel="C0INCIDENTS", text="x" * 40_000))["ok"]
    divider = {"type": "divider"}
    assert await slack_error(post(channel="C0INCIDENTS", text="x", blocks=[divider] * 51)) == "invalid_blocks"
    assert (await post(channel="C0INCIDENTS", text="x", blocks=[divider] * 50))["ok"]
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}
    with pytest.raises(SlackApiError) as info:
        await post(channel="C0INCIDENTS", text="x", blocks=[long_section])
    assert info.value.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    assert await slack_error(post(channel="C0INCIDENTS", text="x", blocks=[header])) == "invalid_blocks"
    assert (
        await slack_error(post(channel="C0INCIDENTS", text="x", thread_ts="yesterday")) == "invalid_thread_ts"
    )
    assert await slack_error(post(channel="C0GENERAL", text="x")) == "not_in_channel"

    assert await slack_error(client.chat_update(channel="C0INCIDENTS", ts="1000000000.000001", text="x")) == (
        "message_not_found"
    )
    alice = await emu.post_message("alice", "#incidents", "mine")
    assert await slack_error(client.chat_update(channel="C0INCIDENTS", ts=alice["ts"], text="x")) == (
        "cant_update_message"
    )
    assert (
        await slack_error(client.chat_delete(channel="C0INCIDENTS", ts=alice["ts"])) == "cant_delete_message"
    )
    await client.reactions_add(channel="C0INCIDENTS", timestamp=alice["ts"], name="eyes")
    assert await slack_error(
        client.reactions_add(channel="C0INCIDENTS", timestamp=alice["ts"], name="eyes")
    ) == ("already_reacted")
    assert await slack_error(
        client.reactions_remove(channel="C0INCIDENTS", timestamp=alice["ts"], name="fire")
    ) == ("no_reaction")
    assert await slack_error(client.conversations_replies(channel="C0INCIDENTS", ts="1000000000.000001")) == (
        "thread_not_found"
    )
    assert await slack_error(client.users_info(user="U0NOBODY")) == "user_not_found"
    assert await slack_error(client.bots_info(bot="B0NOBODY")) == "bot_not_found"
    assert await slack_error(client.conversations_info(channel="C0NOPE")) == "channel_not_found"


async def test_channels_users_join_permalink_and_home(
    emu: SlackEmulator, client: AsyncWebClient, bot: Bot
) -> None:
    listed = await client.conversations_list(limit=2)
    assert [c["name"] for c in listed["channels"]] == ["incidents", "alerts-prod"]
    rest = await client.conversations_list(limit=2, cursor=listed["response_metadata"]["next_cursor"])
    assert [c["name"] for c in rest["channels"]] == ["general"] and rest["response_metadata"][
        "next_cursor"
    ] == ""
    general = await client.conversations_info(channel="C0GENERAL")
    assert general["channel"]["is_member"] is False and general["channel"]["is_general"] is True

    joined = await client.conversations_join(channel="C0GENERAL")
    assert joined["channel"]["is_member"] is True and "warning" not in joined
    again = await client.conversations_join(channel="C0GENERAL")
    assert again["warning"] == "already_in_channel"
    assert (await client.chat_postMessage(channel="C0GENERAL", text="hello"))["ok"]
    await emu.settle()
    [joined_event] = bot.events("member_joined_channel")
    assert joined_event["event"] | {"event_ts": None} == {
        "type": "member_joined_channel",
        "user": "U0ONCALLBOT",
        "channel": "C0GENERAL",
        "channel_type": "C",
        "team": "T0EMULATOR",
        "event_ts": None,
    }

    alice = (await client.users_info(user="U0ALICE"))["user"]
    assert alice["is_admin"] is True and alice["name"] == "alice" and alice["is_bot"] is False
    assert (await client.users_info(user="U0BOB"))["user"]["is_admin"] is False
    assert (await client.bots_info(bot="B0ONCALLBOT"))["bot"]["user_id"] == "U0ONCALLBOT"

    parent = await emu.post_message("bob", "#incidents", "parent")
    reply = await client.chat_postMessage(channel="C0INCIDENTS", text="r", thread_ts=parent["ts"])
    link = (await client.chat_getPermalink(channel="C0INCIDENTS", message_ts=reply["ts"]))["permalink"]
    path = f"/archives/C0INCIDENTS/p{reply['ts'].replace('.', '')}"
    assert link == f"{emu.url}{path}?thread_ts={parent['ts']}&cid=C0INCIDENTS"

    whisper = await client.chat_postEphemeral(channel="C0INCIDENTS", user="U0BOB", text="only bob")
    assert TS.match(whisper["message_ts"])
    assert emu.ephemeral == [
        {
            "channel": "C0INCIDENTS",
            "user": "U0BOB",
            "ts": whisper["message_ts"],
            "thread_ts": None,
            "text": "only bob",
        }
    ]
    assert "only bob" not in [m["text"] for m in await emu.history("#incidents")]
    await emu.settle()
    assert "only bob" not in [e["event"].get("text") for e in bot.events("message")]  # no event for it

    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "on call"}}]}
    published = await client.views_publish(user_id="U0ALICE", view=view)
    assert published["view"]["type"] == "home" and published["view"]["blocks"] == view["blocks"]
    assert await slack_error(
        client.views_publish(user_id="U0ALICE", view={"type": "modal", "blocks": []})
    ) == ("invalid_arguments")


# --- events ----------------------------------------------------------------------------------------


async def test_message_events_for_people_webhooks_and_the_bots_own_posts(
    emu: SlackEmulator, client: AsyncWebClient, bot: Bot
) -> None:
    human = await emu.post_message("alice", "#alerts-prod", "checkout 500s")
    hook = emu.create_webhook("#alerts-prod", name="alertmanager")
    async with aiohttp.ClientSession() as session:
        alert = {"text": "[FIRING:1] HighErrorRate", "username": "Alertmanager", "icon_emoji": ":fire:"}
        async with session.post(hook, json=alert) as response:
            assert (response.status, await response.text()) == (200, "ok")
    posted = await client.chat_postMessage(channel="C0ALERTSPROD", text="on it")
    await emu.settle()

    assert all(r.verified for r in bot.received) and all(a.status == 200 for a in emu.attempts)
    envelopes = bot.events("message")
    assert len(envelopes) == 3
    first = envelopes[0]
    assert set(first) >= {
        "token", "team_id", "api_app_id", "event", "type", "event_id", "event_time",
        "authorizations", "is_ext_shared_channel", "event_context",
    }  # fmt: skip
    assert (first["type"], first["team_id"], first["api_app_id"]) == (
        "event_callback",
        "T0EMULATOR",
        "A0ONCALLAPP",
    )
    assert first["authorizations"][0]["user_id"] == "U0ONCALLBOT"
    assert len({e["event_id"] for e in envelopes}) == 3

    person, webhook, own = (e["event"] for e in envelopes)
    assert person["user"] == "U0ALICE" and person["ts"] == human["ts"] and person["channel"] == "C0ALERTSPROD"
    assert "bot_id" not in person and "subtype" not in person and "client_msg_id" in person
    assert webhook["subtype"] == "bot_message" and webhook["username"] == "Alertmanager"
    assert webhook["bot_id"].startswith("B") and webhook["bot_id"] != "B0ONCALLBOT" and "user" not in webhook
    assert webhook["icons"] == {"emoji": ":fire:"} and webhook["text"] == "[FIRING:1] HighErrorRate"
    assert own["bot_id"] == "B0ONCALLBOT" and own["user"] == "U0ONCALLBOT" and "subtype" not in own
    assert own["ts"] == posted["ts"]
    assert (await client.bots_info(bot=webhook["bot_id"]))["bot"]["name"] == "alertmanager"


async def test_threads_reply_events_and_waiting_for_the_bot(
    emu: SlackEmulator, client: AsyncWebClient, bot: Bot
) -> None:
    parent = await emu.post_message("carol", "#incidents", "db-prod-3 disk 97%")

    async def reply_later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C0INCIDENTS", text="severity: high", thread_ts=parent["ts"])

    task = asyncio.create_task(reply_later())
    answer = await emu.wait_for_bot_message("#incidents", thread_ts=parent["ts"], timeout=2)
    await task
    assert answer["text"] == "severity: high" and answer["thread_ts"] == parent["ts"]
    await emu.post_message("bob", "#incidents", "thanks", thread_ts=parent["ts"])
    await emu.settle()

    replies = [e["event"] for e in bot.events("message") if e["event"].get("thread_ts")]
    assert [(r["text"], r["parent_user_id"]) for r in replies] == [
        ("severity: high", "U0CAROL"),
        ("thanks", "U0CAROL"),
    ]
    summary = (await client.conversations_history(channel="C0INCIDENTS"))["messages"]
    assert len(summary) == 1  # replies stay in the thread
    assert (summary[0]["reply_count"], summary[0]["reply_users"]) == (2, ["U0ONCALLBOT", "U0BOB"])
    thread = (await client.conversations_replies(channel="C0INCIDENTS", ts=parent["ts"]))["messages"]
    assert [m["text"] for m in thread] == ["db-prod-3 disk 97%", "severity: high", "thanks"]
    with pytest.raises(TimeoutError):
        await emu.wait_for_bot_message("#incidents", thread_ts=parent["ts"], after=answer["ts"], timeout=0.1)


async def test_update_and_delete_deliver_changed_and_deleted_subtypes(
    emu: SlackEmulator, client: AsyncWebClient, bot: Bot
) -> None:
    posted = await client.chat_postMessage(channel="C0INCIDENTS", text="investigating")
    updated = await client.chat_update(channel="C0INCIDENTS", ts=posted["ts"], text="resolved")
    assert updated["text"] == "resolved" and updated["message"]["edited"]["user"] == "U0ONCALLBOT"
    await client.chat_delete(channel="C0INCIDENTS", ts=posted["ts"])
    await emu.settle()

    subtyped = [e["event"] for e in bot.events("message") if e["event"].get("subtype")]
    changed, deleted = subtyped
    assert changed["subtype"] == "message_changed" and changed["hidden"] is True
    assert changed["message"]["text"] == "resolved" and changed["previous_message"]["text"] == "investigating"
    assert changed["message"]["ts"] == posted["ts"] and changed["channel"] == "C0INCIDENTS"
    assert deleted["subtype"] == "message_deleted" and deleted["deleted_ts"] == posted["ts"]
    assert deleted["previous_message"]["text"] == "resolved"
    assert await emu.history("#incidents") == []


async def test_reactions_events_and_counts(emu: SlackEmulator, client: AsyncWebClient, bot: Bot) -> None:
    alert = await emu.post_message("alice", "#incidents", "latency p99 4s")
    await client.reactions_add(channel="C0INCIDENTS", timestamp=alert["ts"], name="eyes")
    await emu.add_reaction("bob", "#incidents", alert["ts"], "eyes")
    got = await client.reactions_get(channel="C0INCIDENTS", timestamp=alert["ts"])
    assert got["message"]["reactions"] == [{"name": "eyes", "users": ["U0ONCALLBOT", "U0BOB"], "count": 2}]
    await emu.remove_reaction("bob", "#incidents", alert["ts"], "eyes")
    await emu.settle()

    added = [e["event"] for e in bot.events("reaction_added")]
    assert [(e["user"], e["reaction"]) for e in added] == [("U0ONCALLBOT", "eyes"), ("U0BOB", "eyes")]
    assert added[0]["item"] == {"type": "message", "channel": "C0INCIDENTS", "ts": alert["ts"]}
    assert added[0]["item_user"] == "U0ALICE" and TS.match(added[0]["event_ts"])
    [removed] = [e["event"] for e in bot.events("reaction_removed")]
    assert (removed["user"], removed["reaction"]) == ("U0BOB", "eyes")
    with pytest.raises(Exception, match="invalid_name"):
        await emu.add_reaction("bob", "#incidents", alert["ts"], ":not an emoji:")


async def test_a_slow_bot_gets_retries_with_the_same_event_id(emu: SlackEmulator, bot: Bot) -> None:
    async def slow_twice(received: Received) -> web.Response:
        if int(received.headers.get("X-Slack-Retry-Num", "0")) < 2:
            await asyncio.sleep(ACK_TIMEOUT * 2)
        return web.Response()

    bot.behaviour = slow_twice
    await emu.post_message("alice", "#incidents", "pager!")
    await emu.settle()

    attempts = [(a.retry_num, a.retry_reason, a.status, a.error) for a in emu.attempts]
    assert attempts == [
        (0, None, None, "http_timeout"),
        (1, "http_timeout", None, "http_timeout"),
        (2, "http_timeout", 200, None),
    ]
    retries = [r.headers for r in bot.received if "X-Slack-Retry-Num" in r.headers]
    assert [(h["X-Slack-Retry-Num"], h["X-Slack-Retry-Reason"]) for h in retries] == [
        ("1", "http_timeout"),
        ("2", "http_timeout"),
    ]
    assert len({r.json["event_id"] for r in bot.received}) == 1


async def test_http_errors_are_retried_three_times_unless_the_bot_says_no_retry(
    emu: SlackEmulator, bot: Bot
) -> None:
    async def failing(received: Received) -> web.Response:
        return web.Response(status=500)

    bot.behaviour = failing
    await emu.post_message("alice", "#incidents", "one")
    await emu.settle()
    assert [(a.retry_num, a.retry_reason, a.status) for a in emu.attempts] == [
        (0, None, 500),
        (1, "http_error", 500),
        (2, "http_error", 500),
        (3, "http_error", 500),
    ]

    async def refusing(received: Received) -> web.Response:
        return web.Response(status=503, headers={"X-Slack-No-Retry": "1"})

    bot.behaviour = refusing
    await emu.post_message("alice", "#incidents", "two")
    await emu.settle()
    assert len(emu.attempts) == 5


async def test_redeliver_sends_a_duplicate_and_raw_deliveries_test_the_bots_checks(
    emu: SlackEmulator, bot: Bot
) -> None:
    await emu.post_message("alice", "#incidents", "dup")
    await emu.settle()
    [event_id] = emu.events
    await emu.redeliver(event_id)
    assert [r.json["event_id"] for r in bot.received] == [event_id, event_id]
    with pytest.raises(KeyError):
        await emu.redeliver("EvNOSUCH")

    body = json.dumps(emu.events[event_id])
    assert (await emu.deliver_raw(body)).status == 200
    assert (await emu.deliver_raw(body, signature="v0=" + "0" * 64)).status == 401
    stale = str(int(time.time()) - 600)
    assert (await emu.deliver_raw(body, timestamp=stale)).status == 401  # signed right, but too old
    assert [r.verified for r in bot.received[2:]] == [True, False, False]


async def test_url_verification_handshake(emu: SlackEmulator, bot: Bot) -> None:
    async def echo(received: Received) -> web.Response:
        return web.json_response({"challenge": received.json["challenge"]})

    bot.behaviour = echo
    assert await emu.verify_url() is True
    bot.behaviour = None
    assert await emu.verify_url() is False


# --- faults ----------------------------------------------------------------------------------------


async def test_rate_limits_answer_429_with_retry_after_and_the_sdk_handler_retries(
    emu: SlackEmulator,
) -> None:
    emu.faults.fail("chat.postMessage", status=429, retry_after=1, times=1)
    bare = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    with pytest.raises(SlackApiError) as info:
        await bare.chat_postMessage(channel="C0INCIDENTS", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response["error"] == "ratelimited"
    assert info.value.response.headers["Retry-After"] in ("1", ["1"])

    emu.faults.fail("chat.postMessage", status=429, retry_after=1, times=1)
    patient = AsyncWebClient(
        token=TOKEN, base_url=emu.api_url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    )
    started = time.monotonic()
    assert (await patient.chat_postMessage(channel="C0INCIDENTS", text="x"))["ok"]
    assert time.monotonic() - started >= 1.0  # it waited Retry-After
    assert emu.faults.injected == [("chat.postMessage", "429"), ("chat.postMessage", "429")]


async def test_server_errors_and_resets_are_retried_by_the_sdk_handlers(emu: SlackEmulator) -> None:
    fast = FixedValueRetryIntervalCalculator(0.05)
    emu.faults.fail("auth.test", status=503, times=2)
    client = AsyncWebClient(
        token=TOKEN,
        base_url=emu.api_url,
        retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=2, interval_calculator=fast)],
    )
    assert (await client.auth_test())["ok"]
    emu.faults.fail("auth.test", status=500)
    with pytest.raises(SlackApiError) as info:
        await AsyncWebClient(token=TOKEN, base_url=emu.api_url, retry_handlers=[]).auth_test()
    assert (info.value.response.status_code, info.value.response["error"]) == (500, "internal_error")

    emu.faults.reset("auth.test")
    with pytest.raises(aiohttp.ClientError):
        await AsyncWebClient(token=TOKEN, base_url=emu.api_url, retry_handlers=[]).auth_test()
    emu.faults.reset("*")
    resilient = AsyncWebClient(
        token=TOKEN,
        base_url=emu.api_url,
        retry_handlers=[AsyncConnectionErrorRetryHandler(interval_calculator=fast)],
    )
    assert (await resilient.auth_test())["ok"]

    emu.faults.slow("auth.test", delay=0.5)
    with pytest.raises(asyncio.TimeoutError):
        await AsyncWebClient(token=TOKEN, base_url=emu.api_url, timeout=0.1, retry_handlers=[]).auth_test()
    assert [what for _, what in emu.faults.injected] == ["503", "503", "500", "reset", "reset", "delay 0.5"]

    with pytest.raises(ValueError, match="status"):
        emu.faults.fail("auth.test", status=404)
    with pytest.raises(ValueError, match="method"):
        emu.faults.fail("postMessage")
    with pytest.raises(ValueError, match="times"):
        emu.faults.slow("auth.test", delay=1, times=0)


async def test_a_failure_after_the_call_posts_the_message_yet_the_client_sees_an_error(
    emu: SlackEmulator,
) -> None:
    bare = AsyncWebClient(token=TOKEN, base_url=emu.api_url, retry_handlers=[])
    emu.faults.fail("chat.postMessage", status=500, after=True)
    with pytest.raises(SlackApiError) as info:
        await bare.chat_postMessage(channel="C0INCIDENTS", text="first")
    assert info.value.response.status_code == 500
    emu.faults.reset("chat.postMessage", after=True)
    with pytest.raises(aiohttp.ClientError):
        await bare.chat_postMessage(channel="C0INCIDENTS", text="second")
    history = (await bare.conversations_history(channel="C0INCIDENTS"))["messages"]
    assert [m["text"] for m in history[:2]] == ["second", "first"]  # both were posted
    assert [what for _, what in emu.faults.injected] == ["500 after", "reset after"]
    with pytest.raises(ValueError, match="429"):
        emu.faults.fail("chat.postMessage", status=429, after=True)


# --- commands, clicks, webhooks --------------------------------------------------------------------


async def test_slash_command_round_trip_through_response_url(emu: SlackEmulator, bot: Bot) -> None:
    async def command(received: Received) -> web.Response:
        form = received.form

        async def respond() -> None:
            await asyncio.sleep(0.05)
            reply = {"response_type": "in_channel", "text": f"prediction for {form['text']}: high"}
            async with (
                aiohttp.ClientSession() as session,
                session.post(form["response_url"], json=reply) as r,
            ):
                assert r.status == 200

        asyncio.get_running_loop().create_task(respond())
        return web.Response()  # ack at once, answer later: what Bolt does

    bot.behaviour = command
    response = await emu.run_command("alice", "#incidents", "/oncall-predict", "disk full on db-3")
    assert (response.via, response.response_type) == ("response_url", "in_channel")
    assert response.text == "prediction for disk full on db-3: high"
    form = bot.received[0].form
    assert {
        k: form[k] for k in ("command", "text", "user_id", "user_name", "channel_id", "channel_name")
    } == {
        "command": "/oncall-predict",
        "text": "disk full on db-3",
        "user_id": "U0ALICE",
        "user_name": "alice",
        "channel_id": "C0INCIDENTS",
        "channel_name": "incidents",
    }
    assert set(form) >= {"token", "team_id", "team_domain", "api_app_id", "response_url", "trigger_id"}
    assert (await emu.wait_for_bot_message("#incidents", timeout=1))["text"] == response.text

    async def ack_with_text(received: Received) -> web.Response:
        return web.json_response({"text": "only you can see this"})

    bot.behaviour = ack_with_text
    private = await emu.run_command("bob", "C0INCIDENTS", "/oncall-predict", "")
    assert (private.via, private.response_type, private.text) == ("ack", "ephemeral", "only you can see this")
    assert emu.ephemeral[-1]["user"] == "U0BOB"

    async def too_slow(received: Received) -> web.Response:
        await asyncio.sleep(ACK_TIMEOUT * 2)
        return web.Response()

    bot.behaviour = too_slow
    with pytest.raises(CommandError, match="operation_timeout"):
        await emu.run_command("bob", "#incidents", "/oncall-predict")
    with pytest.raises(ValueError, match="slash command"):
        await emu.run_command("bob", "#incidents", "oncall-predict")


async def test_click_posts_block_actions_and_replace_original_updates_the_message(
    emu: SlackEmulator, client: AsyncWebClient, bot: Bot
) -> None:
    button = {"type": "button", "action_id": "ack_incident", "text": {"type": "plain_text", "text": "Ack"}}
    blocks = [{"type": "actions", "block_id": "b1", "elements": [button | {"value": "inc-1"}]}]
    posted = await client.chat_postMessage(channel="C0INCIDENTS", text="incident", blocks=blocks)
    [message] = await emu.history("#incidents")

    async def on_click(received: Received) -> web.Response:
        if "payload" in received.form:
            payload = json.loads(received.form["payload"])
            reply = {"replace_original": True, "text": f"acked by {payload['user']['name']}"}
            async with aiohttp.ClientSession() as session:
                await session.post(payload["response_url"], json=reply)
        return web.Response()

    bot.behaviour = on_click
    interaction = await emu.click("carol", message, "ack_incident")
    assert interaction.ack is not None and interaction.ack.status == 200
    assert (await interaction.first_response(1)).payload["replace_original"] is True
    [payload] = [json.loads(r.form["payload"]) for r in bot.received if r.body.startswith(b"payload=")]
    assert payload["type"] == "block_actions" and payload["user"]["id"] == "U0CAROL"
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C0INCIDENTS",
        "is_ephemeral": False,
    }
    assert payload["actions"][0] | {"action_ts": None} == {
        "action_id": "ack_incident",
        "block_id": "b1",
        "type": "button",
        "text": {"type": "plain_text", "text": "Ack"},
        "value": "inc-1",
        "action_ts": None,
    }
    [after] = await emu.history("#incidents")
    assert after["text"] == "acked by carol" and after["ts"] == posted["ts"]
    assert "blocks" not in after  # a replacement is a whole new message
    with pytest.raises(ValueError, match="no element with action_id 'no_such_action'"):
        await emu.click("carol", message, "no_such_action")


async def test_incoming_webhook_refusals(emu: SlackEmulator) -> None:
    hook = emu.create_webhook("C0ALERTSPROD")
    assert re.fullmatch(rf"{emu.url}/services/T0EMULATOR/B\w+/[\w-]+", hook)
    async with aiohttp.ClientSession() as session:
        for body, expected in [
            (b"{not json", (400, "invalid_payload")),
            (b'{"username": "grafana"}', (400, "no_text")),
            (json.dumps({"text": "x" * 40_001}).encode(), (400, "msg_too_long")),
        ]:
            async with session.post(hook, data=body, headers={"Content-Type": "application/json"}) as r:
                assert (r.status, await r.text()) == expected
        async with session.post(hook + "x", json={"text": "hi"}) as r:
            assert (r.status, await r.text()) == (404, "no_service")
        attachments = {"attachments": [{"title": "CPU high", "text": "node-7 98%", "color": "danger"}]}
        async with session.post(hook, json=attachments) as r:
            assert r.status == 200
    [message] = await emu.history("#alerts-prod")
    assert message["attachments"][0]["title"] == "CPU high" and message["subtype"] == "bot_message"


# --- control API and construction ------------------------------------------------------------------


async def test_control_api(emu: SlackEmulator, bot: Bot) -> None:
    base = f"{emu.url}/_emulator"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/channels") as r:
            assert [c["name"] for c in await r.json()] == ["incidents", "alerts-prod", "general"]
        async with session.post(
            f"{base}/messages", json={"user": "alice", "channel": "incidents", "text": "hi"}
        ) as r:
            assert r.status == 201
            parent = await r.json()
        reply = {"user": "bob", "channel": "C0INCIDENTS", "text": "re", "thread_ts": parent["ts"]}
        async with session.post(f"{base}/messages", json=reply) as r:
            assert r.status == 201
        reaction = {"user": "bob", "channel": "incidents", "ts": parent["ts"], "name": "eyes"}
        async with session.post(f"{base}/reactions", json=reaction) as r:
            assert r.status == 200
        async with session.get(f"{base}/channels/incidents/history") as r:
            [message] = await r.json()
        assert message["text"] == "hi" and [m["text"] for m in message["replies"]] == ["re"]
        assert message["reactions"][0]["users"] == ["U0BOB"]
        async with session.delete(f"{base}/reactions", json=reaction) as r:
            assert r.status == 200
        async with session.post(f"{base}/reactions/x", json=reaction) as r:
            assert r.status in (404, 405)

        command = {"user": "carol", "channel": "incidents", "command": "/oncall-predict", "text": "x"}
        async with session.post(f"{base}/commands", json=command) as r:
            assert r.status == 202
            started = await r.json()
        await asyncio.sleep(0.1)
        async with session.get(f"{base}/interactions/{started['id']}") as r:
            assert (await r.json())["ack_status"] == 200
        async with session.post(f"{base}/webhooks", json={"channel": "alerts-prod"}) as r:
            assert (await r.json())["url"].startswith(f"{emu.url}/services/")

        for path, body, expected in [
            ("messages", {"user": "mallory", "channel": "incidents", "text": "x"}, (404, "user_not_found")),
            ("messages", {"user": "alice", "channel": "nope", "text": "x"}, (404, "channel_not_found")),
            ("messages", {"user": "alice", "text": "x"}, (400, "invalid_arguments")),
            ("messages", {"user": "alice", "channel": "incidents", "text": ""}, (400, "no_text")),
            (
                "commands",
                {"user": "alice", "channel": "incidents", "command": "predict"},
                (400, "invalid_arguments"),
            ),
        ]:
            async with session.post(f"{base}/{path}", json=body) as r:
                answer = await r.json()
                assert (r.status, answer["error"]) == expected and answer["detail"]
        async with session.get(f"{base}/deliveries") as r:
            assert all(a["status"] == 200 for a in await r.json())


async def test_construction_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        SlackEmulator(SECRET, TOKEN, host="0.0.0.0")
    with pytest.raises(ValueError, match="bot_url"):
        SlackEmulator(SECRET, TOKEN, bot_url="https://example.com/slack/events")
    with pytest.raises(ValueError, match="ack_timeout"):
        SlackEmulator(SECRET, TOKEN, ack_timeout=0)
    with pytest.raises(RuntimeError, match="not started"):
        _ = SlackEmulator(SECRET, TOKEN).url


# --- a real Bolt app -------------------------------------------------------------------------------


async def test_a_bolt_app_replies_in_thread_and_ignores_its_own_messages() -> None:
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp

    apps: list[AsyncApp] = []  # the Bolt app needs the emulator's URL, the emulator the app's

    async def dispatch(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await apps[0].async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", dispatch)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    seen: list[str] = []
    try:
        bot_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        async with SlackEmulator(SECRET, TOKEN, bot_url, ack_timeout=2) as emu:
            app = AsyncApp(
                token=TOKEN, signing_secret=SECRET, client=AsyncWebClient(token=TOKEN, base_url=emu.api_url)
            )
            apps.append(app)

            @app.event("message")
            async def on_message(event: dict[str, Any], say: Any) -> None:
                seen.append(event["text"])
                await say(text=f"triage: {event['text']}", thread_ts=event["ts"])

            alert = await emu.post_message("alice", "#incidents", "payments 5xx at 30%")
            answer = await emu.wait_for_bot_message("#incidents", thread_ts=alert["ts"], timeout=5)
            await emu.settle()
    finally:
        await runner.cleanup()
    assert answer["text"] == "triage: payments 5xx at 30%"
    assert seen == ["payments 5xx at 30%"]  # its own reply was delivered, and Bolt dropped it
    assert len([e for e in emu.events.values() if e["event"]["type"] == "message"]) == 2
    assert all(a.status == 200 for a in emu.attempts)
