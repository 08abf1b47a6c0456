"""The real bot (slack_bolt over aiohttp, the real store and models) against the local Slack emulator, over
HTTP on 127.0.0.1 with signed requests: alerts answered in their thread, exactly once; commands; ratings."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.store import VERDICTS
from engine.registry import ModelRegistry
from tests.bot.alerts import test_alerts as alert_examples
from tests.conftest import BACKEND_PARAMS
from tests.harness import (
    ADMIN,
    ALERTMANAGER,
    PERSON,
    TOKEN,
    Running,
    as_webhook,
    eventually,
    socket_mode_bot,
    start_bot,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]  # e2e: the real bot against the Slack emulator

on_both_stores = pytest.mark.parametrize("running", BACKEND_PARAMS, indirect=True)


async def test_every_alert_format_gets_one_decision_in_its_thread(running: Running) -> None:
    emu = running.emulator
    hook = emu.create_webhook("#alerts-prod")
    async with aiohttp.ClientSession() as http:
        await http.post(hook, json=ALERTMANAGER)
    alerts = [(await emu.history("#alerts-prod"))[-1]]
    alerts.append(await emu.post_message(PERSON, "#incidents", "checkout is throwing 500s for everyone"))
    for alert in alerts:
        reply = await running.decision_for(alert)
        assert reply["thread_ts"] == alert["ts"]
        blocks = reply["blocks"]
        body = json.dumps(blocks)
        assert "*Severity:*" in body and "*Category:*" in body and "Recommended actions" in body
        assert len(re.findall(r"\(\d+%[,)]", body)) >= 5, (
            "severity, category and 3 actions carry a confidence"
        )
        context = [e for b in blocks if b["type"] == "context" for e in b["elements"]]
        assert any(running.bot.ml.models.version in e["text"] for e in context), "the model version shows"
        assert any(":+1:" in e["text"] for e in context), "how to rate"
        assert reply["text"] and len(reply["text"]) <= 3000, "a plain-text fallback for notifications"
    await emu.settle()
    await asyncio.sleep(0.2)
    assert len(running.bot_posts()) == len(alerts), "own messages are delivered back and must be ignored"


async def test_unwatched_channels_thread_replies_and_edits_get_no_reply(running: Running) -> None:
    emu = running.emulator
    await emu.post_message(ADMIN, "#general", "[FIRING:1] DiskFull db-1 97%")  # not an incident channel
    parent = await emu.post_message(PERSON, "#incidents", "latency p99 2.5s on search for 10m")
    await running.decision_for(parent)
    await emu.post_message(PERSON, "#incidents", "looking into it", thread_ts=parent["ts"])
    await emu.settle()
    await asyncio.sleep(0.2)
    assert len(running.bot_posts()) == 1


@on_both_stores
async def test_a_redelivered_event_is_answered_once(running: Running) -> None:
    emu = running.emulator
    alert = await emu.post_message(PERSON, "#incidents", "[P1] Triggered: orders-db replication lag 900s")
    await running.decision_for(alert)
    event_id = next(eid for eid, env in emu.events.items() if env["event"].get("ts") == alert["ts"])
    await emu.redeliver(event_id)
    await emu.redeliver(event_id)
    await emu.settle()
    await asyncio.sleep(0.2)
    assert len(running.bot_posts()) == 1
    retried = [a for a in emu.attempts if a.event_id == event_id]
    assert len(retried) == 3 and all(a.status == 200 for a in retried)


@on_both_stores
async def test_the_same_message_under_a_new_event_id_gets_no_second_decision(running: Running) -> None:
    """Slack may send a message again under a new event_id, validly signed: the alert is known by its
    channel and ts, kept in the store (a restart in between does not forget it)."""
    emu = running.emulator
    alert = await emu.post_message(PERSON, "#incidents", "[FIRING:1] PodCrashLooping checkout-7 (critical)")
    await running.decision_for(alert)
    envelope = next(env for env in emu.events.values() if env["event"].get("ts") == alert["ts"])
    assert (await emu.deliver_raw({**envelope, "event_id": "Ev0RESENT1"})).status == 200
    settings = running.bot.settings
    await running.bot.stop()
    running.bot = await start_bot(emu, running.models, settings.db_url, settings.data_dir)
    emu.bot_url = running.bot.events_url
    assert (await emu.deliver_raw({**envelope, "event_id": "Ev0RESENT2"})).status == 200
    await emu.settle()
    await asyncio.sleep(0.3)
    assert len(running.bot_posts()) == 1
    assert running.bot.parts.metrics.duplicates.value() == 1


async def test_an_unknown_event_type_is_acknowledged_and_counted(running: Running) -> None:
    """An event no listener takes gets a 200 (a 404 would have Slack deliver it again), and is counted."""
    emu = running.emulator
    for kind in ("pin_added", "pin_added", "Weird <type>"):
        event = {"type": kind, "user": PERSON, "channel_id": "C0INCIDENTS", "event_ts": f"{time.time():.6f}"}
        body = {"type": "event_callback", "team_id": "T0EMULATOR", "event_id": f"Ev{time.time_ns()}"}
        answer = await emu.deliver_raw({**body, "event": event})
        assert answer.status == 200, answer
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(running.bot.url + "/metrics")).text()
    assert 'oncall_events_total{outcome="unhandled",type="pin_added"} 2.0' in text
    assert 'oncall_events_total{outcome="unhandled",type="other"} 1.0' in text


@on_both_stores
async def test_replicas_sharing_a_store_answer_an_event_once_whichever_gets_it(running: Running) -> None:
    """Behind a load balancer Slack's retry may reach another replica: the shared store has the claim."""
    emu = running.emulator
    other = await start_bot(emu, running.models, running.bot.settings.db_url, running.bot.settings.data_dir)
    try:
        alert = await emu.post_message(PERSON, "#incidents", "[FIRING:1] KubeNodeNotReady node-7 (critical)")
        await running.decision_for(alert)
        event_id = next(eid for eid, env in emu.events.items() if env["event"].get("ts") == alert["ts"])
        emu.bot_url = other.events_url
        await emu.redeliver(event_id)
        await emu.settle()
        await asyncio.sleep(0.2)
        assert len(running.bot_posts()) == 1
        assert [a.status for a in emu.attempts if a.event_id == event_id] == [200, 200]
    finally:
        emu.bot_url = running.bot.events_url
        await other.stop()


async def test_bad_signatures_and_stale_requests_are_rejected(running: Running) -> None:
    emu = running.emulator
    body = {"type": "event_callback", "event_id": "Ev0FORGED", "event": {"type": "message", "text": "x"}}
    assert (await emu.deliver_raw(body, signature="v0=" + "0" * 64)).status == 401
    assert (await emu.deliver_raw(body, timestamp=str(int(time.time()) - 600))).status == 401
    assert (await emu.deliver_raw(body)).status == 200  # the same body, signed now: accepted


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 1, "times": 1},
        {"status": 503, "times": 2},
        {"status": 500, "times": 1},
        {"reset": True, "times": 2},
    ],
    ids=["429", "503x2", "500", "reset x2"],
)
async def test_slack_failures_then_success_deliver_the_reply_once(running: Running, fault: dict) -> None:
    emu = running.emulator
    if fault.pop("reset", False):
        emu.faults.reset("chat.postMessage", **fault)
    else:
        emu.faults.fail("chat.postMessage", **fault)
    alert = await emu.post_message(PERSON, "#incidents", "[FIRING:1] KubePodCrashLooping checkout-7d9f")
    reply = await running.decision_for(alert, timeout=15)
    assert reply["thread_ts"] == alert["ts"]
    await emu.settle()
    assert len(running.bot_posts()) == 1
    assert [m for m, _ in emu.faults.injected] == ["chat.postMessage"] * fault["times"], (
        "served, then retried"
    )


async def test_huge_and_garbage_messages_get_a_reply_without_a_crash(running: Running) -> None:
    emu = running.emulator
    huge = await emu.post_message(PERSON, "#incidents", "disk full on db-7 " * 2200)  # ~40,000 characters
    garbage = await emu.post_message(
        PERSON,
        "#incidents",
        "alert",
        attachments=[{"fields": [{"title": None, "value": ["x"] * 50}], "text": {"no": "string"}}, {}],
    )
    for alert in (huge, garbage):
        reply = await running.decision_for(alert)
        assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in reply["blocks"])


async def test_oncall_predict_answers_privately_and_explains_usage(running: Running) -> None:
    emu = running.emulator
    answer = await emu.run_command(PERSON, "#incidents", "/oncall-predict", "payments 5xx at 40%")
    assert answer.response_type == "ephemeral"
    assert "*Severity:*" in json.dumps(answer.payload.get("blocks"))
    usage = await emu.run_command(PERSON, "#incidents", "/oncall-predict", "")
    assert "Usage" in usage.text


async def test_oncall_models_status_history_and_admin_only_reload_and_rollback(running: Running) -> None:
    emu = running.emulator
    registry = ModelRegistry(running.models)
    active, previous = registry.active_id(), registry.history()[-1]
    status = await emu.run_command(PERSON, "#incidents", "/oncall-models", "")
    assert active in status.text and "Ratings for this version" in status.text
    # What the numbers were measured on: real labeled rows first (when there are any), then synthetic ones,
    # which say they are no evidence of quality on real alerts.
    sets = [line for line in status.text.splitlines() if line.startswith("• ") and "rows" in line]
    synthetic = [line for line in sets if line.startswith("• synthetic rows, n=")]
    assert len(synthetic) == 1 and sets[-1] == synthetic[0]
    assert "(not evidence of quality on real alerts): severity macro-F1 0." in synthetic[0]
    assert all(line.startswith("• real labeled rows, n=") for line in sets[:-1])
    history = await emu.run_command(PERSON, "#incidents", "/oncall-models", "history")
    assert active in history.text and previous in history.text
    for line in history.text.splitlines()[1:]:
        assert "severity macro-F1 0." in line, line
        assert " on real labeled rows: " in line or " on synthetic rows: not evidence of real quality" in line
    refused = await emu.run_command(PERSON, "#incidents", "/oncall-models", "rollback")
    assert "only on-call admins" in refused.text and registry.active_id() == active
    reloaded = await emu.run_command(ADMIN, "#incidents", "/oncall-models", "reload")
    assert f"`{active}` → `{active}`" in reloaded.text
    rolled = await emu.run_command(ADMIN, "#incidents", "/oncall-models", "rollback", timeout=10)
    assert f"`{active}` → `{previous}`" in rolled.text
    assert running.bot.ml.models.version == previous == registry.active_id()
    helped = await emu.run_command(PERSON, "#incidents", "/oncall-models", "frobnicate")
    assert "Usage" in helped.text


async def test_a_mistyped_subcommand_is_answered_at_once_with_the_closest_one(running: Running) -> None:
    """A typo gets the usage, privately, led by the subcommand meant, in the ack itself (no waiting)."""
    emu = running.emulator
    for typed, meant in [
        ("stauts", "status"),
        ("histroy", "history"),
        ("relaod", "reload"),
        ("STATSU", "status"),
        ("rollbak now", "rollback now"),
        ("canery v2 10%", "canary v2 10%"),
    ]:
        started = time.monotonic()
        answer = await emu.run_command(PERSON, "#incidents", "/oncall-models", typed)
        assert time.monotonic() - started < 1.0
        assert answer.via == "ack" and answer.response_type == "ephemeral"
        word = typed.split()[0]
        assert answer.text.startswith(f":grey_question: `{word}` is not an `/oncall-models` subcommand."), (
            typed
        )
        assert f"Did you mean `/oncall-models {meant}`?" in answer.text, answer.text
        assert "*Usage:*" in answer.text
    far = await emu.run_command(PERSON, "#incidents", "/oncall-models", "`<!channel>`")
    assert far.via == "ack" and "Did you mean" not in far.text and "<!channel>" not in far.text
    assert "*Usage:*" in far.text
    helped = await emu.run_command(PERSON, "#incidents", "/oncall-models", "help")
    assert helped.text.startswith("*Usage:*")
    metrics = running.bot.parts.metrics
    assert metrics.commands.value(command="/oncall-models", sub="unknown") == 7


@on_both_stores
async def test_reactions_on_decisions_are_ratings_and_removal_withdraws_them(running: Running) -> None:
    emu = running.emulator
    alert = await emu.post_message(PERSON, "#incidents", "[FIRING:1] HighLatency search p99 3s")
    reply = await running.decision_for(alert)
    store = running.bot.parts.store
    channel, ts = reply["channel"], reply["ts"]
    record = await running.stored(reply)
    await emu.add_reaction(PERSON, "#incidents", ts, "+1")
    await emu.add_reaction(ADMIN, "#incidents", ts, "two")
    await emu.add_reaction(PERSON, "#incidents", alert["ts"], "+1")  # on the alert, not a decision
    await emu.add_reaction(ADMIN, "#incidents", ts, "tada")  # rates nothing
    second_action = record.actions[1][0]
    expected = [(ADMIN, "action", "two", second_action), (PERSON, "verdict", "+1", VERDICTS["+1"])]
    assert await eventually(lambda: store.ratings(channel, ts), expected) == expected
    await emu.add_reaction(PERSON, "#incidents", ts, "-1")  # the latest vote wins
    await emu.remove_reaction(ADMIN, "#incidents", ts, "two")  # withdrawn
    expected = [(PERSON, "verdict", "-1", "reject")]
    assert await eventually(lambda: store.ratings(channel, ts), expected) == expected
    await emu.remove_reaction(PERSON, "#incidents", ts, "+1")  # not the current vote: no change
    await emu.settle()
    await asyncio.sleep(0.2)
    assert await store.ratings(channel, ts) == expected


@on_both_stores
async def test_a_resolved_notification_goes_to_the_original_thread(running: Running) -> None:
    emu = running.emulator
    firing = await emu.post_message(PERSON, "#incidents", "[FIRING:1] DiskFull backup-job disk 97% (warning)")
    decision = await running.decision_for(firing)
    await running.stored(decision)
    resolved = await emu.post_message(
        PERSON, "#incidents", "[RESOLVED] DiskFull backup-job disk 97% (warning)"
    )
    note = await emu.wait_for_bot_message("#incidents", thread_ts=firing["ts"], after=decision["ts"])
    assert note["text"] == ":white_check_mark: Resolved: DiskFull backup-job disk 97% (warning)", "said once"
    reactions = await eventually(
        lambda: asyncio.sleep(0, emu.workspace.message(resolved["channel"], resolved["ts"]).reactions),
        {"white_check_mark": [emu.workspace.bot.user_id]},
    )
    assert reactions == {"white_check_mark": [emu.workspace.bot.user_id]}, "the resolution shows it was read"
    unknown = await emu.post_message(PERSON, "#incidents", "[RESOLVED] NeverFired cache-9 (warning)")
    reactions = await eventually(
        lambda: asyncio.sleep(0, emu.workspace.message(unknown["channel"], unknown["ts"]).reactions),
        {"white_check_mark": [emu.workspace.bot.user_id]},
    )
    assert reactions == {"white_check_mark": [emu.workspace.bot.user_id]}, (
        "read, with no thread to note it in"
    )
    assert [m for m in emu.workspace.thread(unknown["channel"], unknown["ts"])[1:] if m.bot_id] == []


async def test_health_readiness_and_metrics(running: Running) -> None:
    alert = await running.emulator.post_message(PERSON, "#incidents", "redis evictions spiking on cache-3")
    record = await running.stored(await running.decision_for(alert))
    async with aiohttp.ClientSession() as http:
        assert (await http.get(running.bot.url + "/healthz")).status == 200
        ready = await http.get(running.bot.url + "/readyz")
        assert ready.status == 200
        assert (await ready.json())["serving_version"] == running.bot.ml.models.version

        async def metrics() -> bool:
            text = await (await http.get(running.bot.url + "/metrics")).text()
            version = running.bot.ml.models.version
            wanted = (
                'oncall_replies_total{kind="decision"} 1.0',
                "oncall_decision_seconds_count 1.0",
                f'oncall_predictions_total{{severity="{record.severity}",version="{version}"}} 1.0',
                f'oncall_severity_share{{severity="{record.severity}",window="24h"}} 1.0',
                'window="training"',
                "oncall_severity_drift ",
                'oncall_model_reloads_total{outcome="failed"} 0.0',
            )
            return all(w in text for w in wanted)

        assert await eventually(metrics, True), "the reply is counted once posted"
        assert (await http.get(running.bot.url + "/admin")).status == 404


@pytest.mark.parametrize(
    ("source", "firing"),
    [
        ("alertmanager", alert_examples.am_default("firing")),
        ("grafana", alert_examples.grafana_unified("firing")),
        (
            "datadog",
            alert_examples.datadog("Triggered: [P1] Checkout error rate", alert_examples.DD_TEXT, "danger"),
        ),
        ("sentry", alert_examples.sentry_issue()),
        ("cloudwatch", alert_examples.chatbot(False)),
        ("pagerduty", alert_examples.pagerduty_blocks("Triggered", ":rotating_light:")),
    ],
)
async def test_each_alert_source_through_a_webhook_gets_its_decision(
    running: Running, source: str, firing: dict[str, Any]
) -> None:
    emu = running.emulator
    async with aiohttp.ClientSession() as http:
        assert (await http.post(emu.create_webhook("#alerts-prod"), json=as_webhook(firing))).status == 200
    alert = (await emu.history("#alerts-prod"))[-1]
    record = await running.stored(await running.decision_for(alert))
    assert record.source == source and record.alert_ts == alert["ts"]


async def test_an_alert_through_the_app_s_own_webhook_is_answered_and_its_own_posts_are_not(
    running: Running,
) -> None:
    """Alertmanager pointed at the app's own incoming webhook (manifest.yml asks for the scope): Slack
    stamps the post with the app's bot_id, as a bot_message without a user. It is an alert, and answered;
    what the app posts itself (its bot user: replies, and here a top-level message) is still ignored."""
    emu, bot = running.emulator, running.emulator.workspace.bot
    hook = emu.create_webhook("#alerts-prod", own_app=True)
    firing = as_webhook(alert_examples.am_default("firing"))
    async with aiohttp.ClientSession() as http:
        assert (await http.post(hook, json=firing)).status == 200
    alert = (await emu.history("#alerts-prod"))[-1]
    event = next(env["event"] for env in emu.events.values() if env["event"].get("ts") == alert["ts"])
    assert (event["subtype"], event["bot_id"], event["app_id"]) == ("bot_message", bot.id, bot.app_id)
    assert "user" not in event
    record = await running.stored(await running.decision_for(alert))
    assert record.source == "alertmanager"
    own = AsyncWebClient(token=TOKEN, base_url=emu.api_url)  # the app itself, as its replies are posted
    posted = await own.chat_postMessage(channel="C0ALERTSPROD", text="[FIRING:1] HighErrorRate checkout 35%")
    await emu.settle()
    await asyncio.sleep(0.3)
    assert len(running.bot_posts()) == 2, "the app answered one of its own messages"
    assert not emu.workspace.thread("C0ALERTSPROD", posted["ts"])[1:]
    assert running.bot.parts.metrics.events.value(type="message", outcome="unhandled") == 0


async def test_socket_mode_answers_alerts_and_commands_over_the_socket(
    models_dir: Path, tmp_path: Path
) -> None:
    """SLACK_APP_TOKEN: the bot opens a Socket Mode connection (apps.connections.open, then a WebSocket)
    and takes everything over it; its HTTP server keeps /healthz but has no /slack/events."""
    async with socket_mode_bot(models_dir, tmp_path) as (emu, bot):
        assert emu.delivery.socket is not None, "the bot connected in Socket Mode"
        alert = await emu.post_message(PERSON, "#incidents", "[FIRING:1] DiskFull db-7 disk 97% (critical)")
        reply = await emu.wait_for_bot_message(alert["channel"], thread_ts=alert["ts"], timeout=10)
        assert "*Severity:*" in json.dumps(reply["blocks"])
        answer = await emu.run_command(PERSON, "#incidents", "/oncall-predict", "redis evictions on cache-3")
        assert "*Severity:*" in json.dumps(answer.payload.get("blocks"))
        async with aiohttp.ClientSession() as http:
            assert (await http.get(bot.url + "/healthz")).status == 200
            assert (await http.post(bot.url + "/slack/events", json={"type": "event_callback"})).status in (
                404,
                405,
            )
        assert all(a.status == 200 for a in emu.attempts if a.kind in ("event", "command"))


async def test_corrections_are_stored_as_labels_and_shown_on_the_decision(running: Running) -> None:
    emu = running.emulator
    alert = await emu.post_message(PERSON, "#incidents", "orders-db failover took 40s, writes failing")
    reply = await running.decision_for(alert)
    record = await running.stored(reply)
    store = running.bot.parts.store
    channel, ts = reply["channel"], reply["ts"]
    await emu.click(PERSON, reply, "correct_severity", "critical")
    await emu.click(ADMIN, reply, "correct_category", "database")
    await emu.click(ADMIN, reply, "fixed_action_1")  # the second recommended action's button
    first = [
        (ADMIN, "action", "fixed_action_1", record.actions[1][0]),
        (ADMIN, "category", "correct_category", "database"),
        (PERSON, "severity", "correct_severity", "critical"),
    ]
    assert await eventually(lambda: store.ratings(channel, ts), first) == first
    await emu.click(PERSON, reply, "correct_severity", "high")  # changed their mind: the latest wins
    final = [*first[:2], (PERSON, "severity", "correct_severity", "high")]
    assert await eventually(lambda: store.ratings(channel, ts), final) == final

    async def shows_every_correction() -> bool:
        message = (await emu.replies(channel, alert["ts"]))[1]
        note = next(
            (b["elements"][0]["text"] for b in message["blocks"] if b.get("block_id") == "corrected"), ""
        )
        wanted = ("severity → high", "category → database", "fixed by", f"<@{ADMIN}>", f"<@{PERSON}>")
        return all(w in note for w in wanted)

    assert await eventually(shows_every_correction, True), "chat.update shows what was corrected, by whom"
    with pytest.raises(ValueError, match="not an option"):
        await emu.click(PERSON, reply, "correct_severity", "apocalyptic")


async def test_shadow_then_canary_then_promote_a_candidate(running: Running) -> None:
    emu = running.emulator
    store = running.bot.parts.store
    registry = ModelRegistry(running.models)
    active, candidate = registry.active_id(), registry.history()[-1]
    refused = await emu.run_command(PERSON, "#incidents", "/oncall-models", f"shadow {candidate}")
    assert "only on-call admins" in refused.text and registry.trial() is None

    shadow = await emu.run_command(ADMIN, "#incidents", "/oncall-models", f"shadow {candidate}")
    assert "predicts on every alert" in shadow.text and registry.trial()["mode"] == "shadow"
    alert = await emu.post_message(PERSON, "#incidents", "[FIRING:1] HighErrorRate cart 5xx 22%")
    reply = await running.decision_for(alert)
    assert active in json.dumps(reply["blocks"]), "in shadow the active version still answers"

    async def recorded() -> int:
        return int((await store.trial_stats(candidate))["alerts"])

    assert await eventually(recorded, 1) == 1, "the candidate's prediction is stored beside the active one"
    stats = await store.trial_stats(candidate)
    assert stats["alerts"] == 1 and stats["answered"] == 0 and stats["latency_p50_ms"] > 0

    canary = await emu.run_command(ADMIN, "#incidents", "/oncall-models", f"canary {candidate} 100%")
    assert "answers 100% of the alerts" in canary.text
    alert = await emu.post_message(PERSON, "#incidents", "[FIRING:1] DiskFull search-2 93%")
    reply = await running.decision_for(alert)
    assert candidate in json.dumps(reply["blocks"]), "a canary hit is answered by the candidate"
    status = await emu.run_command(PERSON, "#incidents", "/oncall-models", "status")
    assert f"*Trial:* `{candidate}` in canary" in status.text and "2 alerts, 1 answered" in status.text

    promoted = await emu.run_command(
        ADMIN, "#incidents", "/oncall-models", f"promote {candidate}", timeout=10
    )
    assert f"`{active}` → `{candidate}`" in promoted.text
    assert registry.active_id() == candidate and registry.trial() is None
    note = registry.get(candidate).metadata["promotions"][-1]
    assert note["via"] == "slack" and note["by"] == ADMIN and note["trial"]["alerts"] == 2


async def test_the_home_tab_shows_models_and_monitoring_to_admins_only(running: Running) -> None:
    emu = running.emulator
    alert = await emu.post_message(PERSON, "#incidents", "[FIRING:1] HighLatency checkout p99 4s")
    await running.stored(await running.decision_for(alert))
    await emu.open_app_home(ADMIN)
    await emu.open_app_home(PERSON)

    async def published() -> bool:
        return emu.home_view(ADMIN) is not None and emu.home_view(PERSON) is not None

    assert await eventually(published, True)
    admin, person = json.dumps(emu.home_view(ADMIN)), json.dumps(emu.home_view(PERSON))
    assert running.bot.ml.models.version in admin and "Last 24 h" in admin and "1 decisions" in admin
    assert "synthetic rows, n=" in admin and "not evidence of quality on real alerts" in admin
    assert "On-call agent" in person and running.bot.ml.models.version not in person
