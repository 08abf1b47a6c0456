"""Hostile input through the real bot and the emulator: alert text and command arguments are untrusted, so
no mention, link or formatting that acts reaches Slack in anything the bot posts; slash commands and
clicks from another workspace, or with a malformed user id, are refused without a side effect."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from bot.local.emulator import SlackEmulator
from bot.local.emulator import events as emu_events
from bot.slack.middleware.guard import NOT_SLACK, REFUSED, response_url_allowed
from tests.bot.alerts import test_alerts as alert_examples
from tests.harness import (
    ADMIN,
    PERSON,
    SECRET,
    TOKEN,
    Running,
    as_webhook,
    eventually,
    socket_mode_bot,
    start_bot,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]  # e2e: the real bot against the Slack emulator

# Everything a sender can write that Slack would turn into a notification, a link, or text that reorders
# or hides the bot's own words; and the same already escaped, which the bot decodes to the real thing.
HOSTILE = (
    "<!channel> <!here> <!everyone> <@U123> <@U123|boss> <#C123> <#C123|general> <!subteam^S1|@sre> "
    "<https://evil.example|trusted link> <mailto:x@evil.example|mail> &lt;!channel&gt; &lt;@U0EVIL&gt; "
    "&lt;https://evil.example|click&gt; *bold* _it_ ~strike~ `code` ```fence``` > quote "
    "zero\u200bwidth rtl\u202eenil\u202c iso\u2066x\u2069 nul\x00 bell\x07 ` | ` end"
)
# What would act if it reached Slack's mrkdwn unescaped, and what reorders text.
ACTIVE = re.compile(r"<[!@#]|<(?:https?|mailto):|[<>]|[\u202a-\u202e\u2066-\u2069]|[\x00-\x08]")
# The bot's own markup: mentions of the workspace's people who corrected a decision.
OWN = re.compile(r"<@(?:U0ALICE|U0BOB|U0CAROL)>")


@pytest_asyncio.fixture
async def running(models_dir: Path, tmp_path: Path) -> AsyncIterator[Running]:
    """The real bot on SQLite against the emulator (as in tests/harness.py)."""
    emulator = SlackEmulator(SECRET, TOKEN, ack_timeout=3.0, retry_delays=(0.2, 0.4, 0.6))
    await emulator.start()
    bot = await start_bot(
        emulator, models_dir, f"sqlite:///{tmp_path / 'db' / 'oncall.db'}", tmp_path / "data"
    )
    emulator.bot_url = bot.events_url
    try:
        yield Running(emulator, bot, models_dir)
    finally:
        await emulator.settle()
        await bot.stop()
        await emulator.stop()


def nested_lists(depth: int) -> Any:
    leaf: Any = {"type": "text", "text": "<!here> deep"}
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def strings(value: Any) -> list[str]:
    """Every string in a payload (blocks sent as a JSON string are parsed first)."""
    if isinstance(value, str):
        if value[:1] in "[{":
            try:
                return strings(json.loads(value))
            except ValueError:
                pass
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def posted(running: Running) -> list[tuple[str, str]]:
    """(where, string) for everything the bot sent Slack: Web API calls and response_url answers."""
    emu = running.emulator
    out = [
        (call.method, s)
        for call in emu.calls
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.publish")
        for s in strings(call.params)
    ]
    for interaction in emu.interactions.by_id.values():
        out += [(f"{interaction.kind} {r.via}", s) for r in interaction.responses for s in strings(r.payload)]
    return out


def leaks(running: Running) -> list[tuple[str, str]]:
    return [(where, s) for where, s in posted(running) if ACTIVE.search(OWN.sub("", s))]


def hostile(event: dict[str, Any]) -> dict[str, Any]:
    """The example with the hostile text added to every field a person or a template fills in."""
    if isinstance(event, list):
        return [hostile(v) for v in event]
    if not isinstance(event, dict):
        return event
    out = {}
    for key, value in event.items():
        if key in ("text", "title", "value", "pretext", "fallback") and isinstance(value, str):
            out[key] = f"{value} {HOSTILE}".strip()
        else:
            out[key] = hostile(value)
    return out


SOURCES = [
    ("alertmanager", alert_examples.am_default("firing")),
    ("grafana", alert_examples.grafana_unified("firing")),
    (
        "datadog",
        alert_examples.datadog("Triggered: [P1] Checkout error rate", alert_examples.DD_TEXT, "danger"),
    ),
    ("sentry", alert_examples.sentry_issue()),
    ("cloudwatch", alert_examples.chatbot(False)),
    ("pagerduty", alert_examples.pagerduty_blocks("Triggered", ":rotating_light:")),
]


async def test_nothing_a_sender_writes_acts_in_anything_the_bot_posts(running: Running) -> None:
    emu = running.emulator
    alerts: list[tuple[str, dict[str, Any]]] = []
    hooks = {}
    async with aiohttp.ClientSession() as http:
        for source, firing in SOURCES:  # a channel each: in one channel the same text would be grouped
            channel = emu.workspace.add_channel(f"inc-hostile-{source}").name
            hooks[source] = hook = emu.create_webhook(f"#{channel}")
            assert (await http.post(hook, json=as_webhook(hostile(firing)))).status == 200
            alerts.append((source, (await emu.history(f"#{channel}"))[-1]))
    alerts.append(("human", await emu.post_message(PERSON, "#incidents", HOSTILE)))
    emu.workspace.add_channel("inc-hostile-people")
    both_lines = await emu.post_message(PERSON, "#inc-hostile-people", f"{HOSTILE}\nsecond line {HOSTILE}")
    alerts.append(("human", both_lines))
    replies = []
    for source, alert in alerts:
        reply = await running.decision_for(alert)
        record = await running.stored(reply)
        assert record.source == source, "the hostile text went through that source's parser"
        replies.append(reply)

    # A resolution note quotes the alert's title.
    resolved = hostile(alert_examples.am_default("resolved"))
    async with aiohttp.ClientSession() as http:
        assert (await http.post(hooks[SOURCES[0][0]], json=as_webhook(resolved))).status == 200
    note = await emu.wait_for_bot_message(
        alerts[0][1]["channel"], thread_ts=alerts[0][1]["ts"], after=replies[0]["ts"]
    )
    assert note["text"].startswith(":white_check_mark: Resolved:") and "&lt;!channel&gt;" in note["text"]

    # Commands: the argument is the alert; admins' arguments are quoted back in errors.
    predicted = await emu.run_command(PERSON, "#incidents", "/oncall-predict", HOSTILE)
    assert "*Severity:*" in json.dumps(predicted.payload["blocks"])
    for words in (f"shadow {HOSTILE}", f"canary {HOSTILE}", f"promote {HOSTILE}", HOSTILE):
        await emu.run_command(ADMIN, "#incidents", "/oncall-models", words, timeout=10)

    # Corrections rewrite the decision (chat.update); the Home tab shows the status.
    clicked = await emu.click(PERSON, replies[-1], "correct_severity", "critical")
    assert clicked.ack is not None and clicked.ack.status == 200
    assert await eventually(lambda: _updated(running), True), "the correction was shown"
    await emu.open_app_home(ADMIN)
    assert await eventually(lambda: _home(running), True)
    await emu.settle()

    sent = posted(running)
    assert any("&lt;!channel&gt;" in s for _, s in sent), "the decoded <!channel> reached a reply, escaped"
    assert any(OWN.search(s) for w, s in sent if w == "chat.update"), "the bot's own mention stays"
    assert leaks(running) == []
    for call in running.bot_posts():
        assert not call.params.get("link_names") and call.params.get("unfurl_links") is False
        assert len(call.params["text"]) <= 3000


async def _updated(running: Running) -> bool:
    return any(c.method == "chat.update" and c.ok for c in running.emulator.calls)


async def _home(running: Running) -> bool:
    return running.emulator.home_view(ADMIN) is not None


def _foreign_command(running: Running, user: str, command: str, text: str, **form: str) -> Any:
    interaction = running.emulator.interactions.new_command(user, "#incidents", command, text)
    interaction.form.update(form)
    return interaction


def _foreign_click(running: Running, reply: dict[str, Any], change: dict[str, Any]) -> Any:
    interaction = running.emulator.interactions.new_click(PERSON, reply, "correct_severity", "critical")
    payload = json.loads(interaction.form["payload"])
    for key, value in change.items():
        payload[key] = {**payload[key], **value} if isinstance(value, dict) else value
    interaction.form["payload"] = json.dumps(payload)
    return interaction


@pytest.mark.parametrize(
    "change",
    [
        {"team": {"id": "T0OTHER"}},  # another workspace
        {"user": {"team_id": "T0OTHER"}},  # a Slack Connect guest from another organisation
        {"user": {"id": "U0BOB>|<!channel"}},  # a malformed user id
        {"user": {"id": 7}},
        {"user": "U0BOB"},
    ],
    ids=["team", "user team", "malformed user", "numeric user", "user not an object"],
)
async def test_a_click_from_another_team_or_a_malformed_user_is_refused(
    running: Running, change: dict[str, Any]
) -> None:
    emu = running.emulator
    alert = await emu.post_message(PERSON, "#incidents", "orders-db failover took 40s, writes failing")
    reply = await running.decision_for(alert)
    await running.stored(reply)
    refused = await emu.interactions.send(_foreign_click(running, reply, change))
    assert refused.ack is not None and refused.ack.status == 200
    await emu.settle()
    await asyncio.sleep(0.2)
    store = running.bot.parts.store
    assert await store.ratings(reply["channel"], reply["ts"]) == [], "no correction stored"
    assert not any(c.method == "chat.update" for c in emu.calls), "the decision is unchanged"
    reason = "foreign team" if "team" in json.dumps(change) else "malformed user"
    assert running.bot.parts.metrics.refused.value(kind="interaction", reason=reason) == 1
    # The same click from this workspace's own person is taken.
    await emu.interactions.send(_foreign_click(running, reply, {}))
    assert await eventually(
        lambda: store.ratings(reply["channel"], reply["ts"]),
        [(PERSON, "severity", "correct_severity", "critical")],
    )


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"team_id": "T0OTHER"}, "foreign team"),
        ({"team_id": ""}, "foreign team"),
        ({"user_id": "U0BOB|<!here>"}, "malformed user"),
        ({"user_id": ""}, "malformed user"),
    ],
    ids=["other team", "no team", "malformed user", "no user"],
)
async def test_a_command_from_another_team_or_a_malformed_user_is_refused(
    running: Running, form: dict[str, str], reason: str
) -> None:
    emu = running.emulator
    interaction = await emu.interactions.send(
        _foreign_command(running, PERSON, "/oncall-predict", "payments 5xx at 40%", **form)
    )
    answer = await interaction.first_response()
    assert answer.via == "ack" and answer.text == REFUSED and answer.response_type == "ephemeral"
    await emu.settle()
    await asyncio.sleep(0.2)
    assert len(interaction.responses) == 1, "no prediction was posted"
    metrics = running.bot.parts.metrics
    assert metrics.commands.value(command="/oncall-predict", sub="predict") == 0
    assert metrics.refused.value(kind="command", reason=reason) == 1
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(running.bot.url + "/metrics")).text()
    assert f'oncall_requests_refused_total{{kind="command",reason="{reason}"}} 1.0' in text


async def test_a_response_url_is_slack_s_or_the_configured_web_api_s() -> None:  # pytestmark: asyncio
    api = "http://127.0.0.1:3100/api/"
    for url in ("https://hooks.slack.com/commands/T1/1/x", "HTTPS://Hooks.Slack.com/actions/x", None,
                "http://127.0.0.1:3100/hooks/respond/1"):  # fmt: skip
        assert response_url_allowed(url, api), url
    for url in ("http://hooks.slack.com/x", "https://hooks.slack.com.evil.example/x", "https://evil.example/x",
                "http://127.0.0.1:9/x", "https://127.0.0.1:3100/x", "http://[::1/x", 7, ""):  # fmt: skip
        assert not response_url_allowed(url, api), url
    assert not response_url_allowed("http://127.0.0.1:3100/hooks/respond/1", None)


async def test_a_command_or_click_whose_response_url_is_not_slack_s_is_refused(running: Running) -> None:
    """A signed command or click naming a response_url elsewhere (here a listener of the test's own, as
    `http://127.0.0.1:9/x` was tried): nothing is sent there, and it is refused, logged and counted."""
    emu, metrics = running.emulator, running.bot.parts.metrics
    received: list[str] = []

    async def record(request: web.Request) -> web.Response:
        received.append(request.path)
        return web.Response(text="ok")

    elsewhere = web.Application()
    elsewhere.router.add_post("/{tail:.*}", record)
    runner = web.AppRunner(elsewhere)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    trap = f"http://127.0.0.1:{runner.addresses[0][1]}/respond"
    try:
        command = _foreign_command(
            running, PERSON, "/oncall-predict", "payments 5xx at 40%", response_url=trap
        )
        answer = await (await emu.interactions.send(command)).first_response()
        assert answer.via == "ack" and answer.text == NOT_SLACK
        alert = await emu.post_message(PERSON, "#incidents", "orders-db failover took 40s, writes failing")
        reply = await running.decision_for(alert)
        await running.stored(reply)
        click = await emu.interactions.send(_foreign_click(running, reply, {"response_url": trap}))
        assert click.ack is not None and click.ack.status == 200
        await emu.settle()
        await asyncio.sleep(0.5)
        assert received == [], "the bot posted to a response_url that is not Slack's"
        assert await running.bot.parts.store.ratings(reply["channel"], reply["ts"]) == []
        for kind in ("command", "interaction"):
            assert metrics.refused.value(kind=kind, reason="foreign response_url") == 1
        # The emulator's own response_url is the configured SLACK_API_URL's host: answered there.
        answer = await emu.run_command(PERSON, "#incidents", "/oncall-predict", "payments 5xx at 40%")
        assert answer.via == "response_url" and "*Severity:*" in json.dumps(answer.payload.get("blocks"))
    finally:
        await runner.cleanup()


def _error_count(running: Running) -> float:
    events = running.bot.parts.metrics.events
    return sum(v for labels, v in events.values.items() if ("outcome", "error") in labels)


async def test_garbage_bodies_and_payloads_never_break_a_listener(running: Running) -> None:
    emu = running.emulator
    ws = emu.workspace
    channel, person = ws.channel("#incidents").id, ws.human(PERSON).id
    unreadable = [
        b'{"type": "event_callback", "event": {"type": "message", "text": "trunc',
        b'{"type": "event_callback", "event": {"type": "message", "text": "\xff\xfe\xc3("}}',
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"type": "event_callback", "user": 5}',
        b'{"type": "event_callback", "authorizations": {"a": 1}}',
        b"[" * 200_000,
    ]
    for body in unreadable:  # signed by Slack: acknowledged (a retry would not help), and counted
        answer = await emu.deliver_raw(body)
        assert answer.status == 200, body[:60]
    refused = running.bot.parts.metrics.refused
    assert refused.value(kind="request", reason="malformed body") == len(unreadable)

    base = {"type": "message", "channel": channel, "user": person, "ts": "1732600000.000100"}
    events: list[Any] = [
        "a string",
        ["a", "list"],
        {"type": 5},
        {**base, "channel": ["C1"], "text": "x"},
        {**base, "ts": {"a": 1}, "text": "x"},
        {**base, "text": None, "blocks": "x", "attachments": {"a": [1]}},
        {**base, "text": "\x00" * 1000 + "\ud800" + "<!channel>"},
        {**base, "subtype": ["x"], "thread_ts": 5, "text": "x"},
        {**base, "blocks": [{"type": "rich_text", "elements": nested_lists(900)}]},
        {"type": "reaction_added", "user": ["x"], "reaction": 5, "item": "x"},
        {
            "type": "reaction_added",
            "user": person,
            "reaction": "+1",
            "item": {"type": "message", "channel": 5},
        },
        {"type": "app_home_opened", "user": {"id": 1}, "tab": "home"},
        {"type": "app_home_opened", "user": "U0NOBODY", "tab": "home"},
    ]
    ids = [emu.delivery.publish(event) for event in events]
    huge = ws.add_message(channel, "disk full on db-7 <!channel> " * 33_000, user=person, blocks=[])
    emu.delivery.publish(emu_events.message_posted(huge))
    await emu.settle()
    reply = await emu.wait_for_bot_message("#incidents", thread_ts=huge.ts, timeout=10)
    assert "&lt;!channel&gt;" in reply["text"] or "<!channel>" not in reply["text"]
    metrics = running.bot.parts.metrics
    assert _error_count(running) == 0, metrics.events.values
    refusals = {0: "malformed event", 1: "malformed event", 2: "malformed event", 10: "malformed body"}
    for event_id in ids:  # refused or answered, each acknowledged once: Slack has no reason to retry
        assert [a.status for a in emu.attempts if a.event_id == event_id] == [200]
    attempts = [a for a in emu.attempts if a.event_id in ids]
    for reason in ("malformed event", "malformed body"):
        wanted = sum(1 for a in attempts if refusals.get(ids.index(a.event_id)) == reason)
        wanted += len(unreadable) if reason == "malformed body" else 0
        assert refused.value(kind="request", reason=reason) == wanted
    assert refused.value(kind="event", reason="malformed user") == 1
    deadline = time.monotonic() + 10  # answered concurrently: the refusals may still be on their way
    while metrics.reply_errors.value() < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert metrics.reply_errors.value() >= 2, "the unknown user's home tab and the thread of a dict ts"
    assert leaks(running) == []


async def test_socket_mode_refuses_a_command_from_another_team_too(models_dir: Path, tmp_path: Path) -> None:
    """Over the socket there is no signature: the team check is what keeps another workspace out."""
    async with socket_mode_bot(models_dir, tmp_path) as (emu, bot):
        forged = emu.interactions.new_command(PERSON, "#incidents", "/oncall-predict", "db down")
        forged.form["team_id"] = "T0OTHER"
        answer = await (await emu.interactions.send(forged)).first_response()
        assert answer.text == REFUSED
        assert bot.parts.metrics.refused.value(kind="command", reason="foreign team") == 1
        own = await emu.run_command(PERSON, "#incidents", "/oncall-predict", "db down")
        assert "*Severity:*" in json.dumps(own.payload.get("blocks"))
