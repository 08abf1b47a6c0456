"""Alert grouping: duplicates and related alerts join the first alert's thread; the severity raise updates
the decision; groups close on resolution and survive a restart."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from bot.alerts.model import make_alert
from bot.config import GroupingSettings, load_settings
from bot.emulator.storm import bcubed, storm
from bot.grouping import Group, Grouper, rank
from tests.test_bot_e2e import Running, running, start_bot  # noqa: F401 - the fixture


def alert(title: str, service: str | None = None, fingerprint: str | None = None) -> Any:
    return make_alert("human", status="firing", title=title, service=service, fingerprint=fingerprint)


def test_duplicates_same_service_and_similar_text_join_unrelated_alerts_do_not() -> None:
    grouper = Grouper(GroupingSettings(window=600, quiet=1800, similarity=0.5))
    now = 1000.0
    for i, title in enumerate(["pod restarting", "queue depth growing", "login latency high", "disk full"]):
        grouper.open("C1", f"{i}.0", alert(f"{title} on host-{i}"), "low", now)  # some history for rarity
    first = grouper.open("C1", "1.0", alert("db-main: too many connections", "orders", "am:g1"), "high", now)
    assert grouper.find("C1", alert("other text entirely", fingerprint="am:g1"), now + 5) is first
    assert grouper.find("C1", alert("db-main: too many connections"), now + 5) is first  # same text
    assert grouper.find("C1", alert("db-main: too many connections (47)"), now + 5) is first  # numbers masked
    assert grouper.find("C1", alert("slow checkout", "orders"), now + 5) is first  # same service
    related = alert("payments: errors connecting to db-main, too many connections", "payments")
    assert grouper.find("C1", related, now + 5) is first  # similar text
    assert grouper.find("C1", alert("TLS certificate for api.example.com expires in 2 days"), now + 5) is None
    assert grouper.find("C2", related, now + 5) is None  # another channel
    assert grouper.find("C1", alert("slow checkout", "orders"), now + 700) is None  # outside the window
    assert grouper.find("C1", alert("x", fingerprint="am:g1"), now + 700) is first  # a duplicate still joins
    assert grouper.find("C1", alert("x", fingerprint="am:g1"), now + 2000) is None  # closed when quiet


def test_a_group_round_trips_through_its_stored_state() -> None:
    grouper = Grouper(GroupingSettings())
    group = grouper.open("C1", "1.0", alert("db-main down", "orders", "am:g1"), "high", 5.0)
    grouper.join(group, "2.0", alert("db-main unreachable", "payments", "am:g2"), 6.0)
    group.decision_ts, group.resolved = "1.5", {"am:g1"}
    back = Group.from_state(group.id, "C1", "1.0", json.loads(json.dumps(group.state())), group.last_seen)
    assert back.state() == group.state()
    assert back.count == 2 and back.alerts == {"2.0"} and back.services == {"orders", "payments"}


def test_grouping_settings_come_from_the_environment_and_bad_ones_are_refused() -> None:
    settings = load_settings({"ONCALL_GROUP_WINDOW": "120", "ONCALL_GROUP_SIMILARITY": "0.7"})
    assert settings.grouping == GroupingSettings(window=120.0, quiet=1800.0, similarity=0.7)
    with pytest.raises(Exception, match="ONCALL_GROUP_QUIET must be a number"):
        load_settings({"ONCALL_GROUP_QUIET": "soon"})


STORM = [  # one cause, several services, as Alertmanager would fire them
    ("[FIRING:1] PostgresTooManyConnections orders: db-main refused connections", "orders"),
    ("[FIRING:1] PostgresTooManyConnections payments: db-main refused connections", "payments"),
    ("[FIRING:1] PostgresTooManyConnections cart: db-main refused connections", "cart"),
    ("[FIRING:1] PostgresTooManyConnections search: db-main refused connections (critical)", "search"),
]


@pytest.mark.asyncio
async def test_a_storm_gets_one_decision_and_one_edited_thread_message(
    running: Running,  # noqa: F811 - the fixture imported above
) -> None:
    emu = running.emulator
    posted = [(await emu.post_message("U0BOB", "#incidents", text))["ts"] for text, _ in STORM]
    unrelated = await emu.post_message("U0BOB", "#incidents", "TLS certificate for api.example.com expires")
    first = posted[0]
    deadline = time.monotonic() + 15
    while True:
        thread = [m for m in emu.workspace.thread("C0INCIDENTS", first)[1:] if m.bot_id]
        summary = next((m for m in thread if "related alerts" in m.text), None)
        if summary is not None and "+3 related alerts" in summary.text:
            break
        assert time.monotonic() < deadline, [m.text for m in thread]
        await asyncio.sleep(0.1)
    assert len(thread) == 2, "one decision and one summary in the first alert's thread"
    for ts in posted[1:]:  # the later alerts get no thread of their own
        assert [m for m in emu.workspace.thread("C0INCIDENTS", ts)[1:] if m.bot_id] == []
    assert await emu.wait_for_bot_message("#incidents", thread_ts=unrelated["ts"], timeout=10)
    metrics = running.bot.services.metrics
    assert sum(metrics.grouped.values.values()) == 3
    edits = [c for c in emu.calls if c.method == "chat.update" and c.ok]
    assert len(edits) <= 2, "edited at most once per burst, not once per alert"
    members = await running.bot.services.store.open_groups(since=0)
    assert [state["count"] for _, _, thread_ts, state, _ in members if thread_ts == first] == [4]

    # A restart does not split the group: the next related alert joins the same thread.
    await running.bot.stop()
    settings = running.bot.settings
    running.bot = await start_bot(emu, running.models, settings.db_url, settings.data_dir)
    emu.bot_url = running.bot.events_url
    await emu.post_message(
        "U0BOB", "#incidents", "[FIRING:1] PostgresTooManyConnections billing: db-main refused"
    )
    deadline = time.monotonic() + 15
    while "+4 related alerts" not in emu.workspace.message("C0INCIDENTS", summary.ts).text:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_a_replayed_storm_is_a_few_threads_that_match_its_root_causes(running: Running) -> None:  # noqa: F811
    emu, store = running.emulator, running.bot.services.store
    hook = emu.create_webhook("#incidents")
    replayed = storm(150, seed=11)
    alert_ts: list[str] = []
    async with aiohttp.ClientSession() as http:
        for item in replayed:
            assert (await http.post(hook, json=item.body)).status == 200
            alert_ts.append((await emu.history("#incidents"))[-1]["ts"])
            await asyncio.sleep(0.02)
    await emu.settle()
    deadline = time.monotonic() + 20
    while True:  # every alert is a group's first (with a decision) or one of its members
        groups = {thread_ts: group_id for group_id, _, thread_ts, _, _ in await store.open_groups(since=0)}
        members = {ts: g for g in groups.values() for _, ts, _, _ in await store.members(g)}
        placed = {ts: groups.get(ts) or members.get(ts) for ts in alert_ts}
        if all(placed.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert all(placed.values()), f"{sum(not g for g in placed.values())} alerts in no group"
    decisions = [
        c for c in emu.calls if c.method == "chat.postMessage" and c.ok and "oncall_decision" in str(c.params)
    ]
    assert len(decisions) <= 10
    precision, recall = bcubed([a.cause for a in replayed], [placed[ts] for ts in alert_ts])
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)


@pytest.mark.asyncio
async def test_a_related_alert_of_higher_severity_updates_the_decision(running: Running) -> None:  # noqa: F811
    emu, engine = running.emulator, running.bot.services.engine
    mild = "queue depth growing slowly on orders-worker, no user impact yet"
    severe = "orders-worker down: all checkout orders failing for every customer, outage, data loss"
    low, high = (engine.analyze(alert(text, "orders").incident).severity for text in (mild, severe))
    assert rank(high) > rank(low), (low, high)  # the premise: the model ranks them so
    hook = emu.create_webhook("#incidents")

    def labelled(text: str) -> dict[str, Any]:  # Alertmanager's layout: the service is a label
        return {
            "username": "alertmanager",
            "attachments": [{"title": f"[FIRING:1] {text[:30]}", "text": f"*Description:* {text}\n"
                             " • *service:* `orders`"}],
        }  # fmt: skip

    async with aiohttp.ClientSession() as http:
        assert (await http.post(hook, json=labelled(mild))).status == 200
        first = (await emu.history("#incidents"))[-1]
        decision = await emu.wait_for_bot_message("#incidents", thread_ts=first["ts"], timeout=10)
        assert (await http.post(hook, json=labelled(severe))).status == 200
    deadline = time.monotonic() + 15
    while "Severity raised" not in json.dumps(emu.workspace.message("C0INCIDENTS", decision["ts"]).fields):
        assert time.monotonic() < deadline, "the decision was not updated"
        await asyncio.sleep(0.1)
    shown = json.dumps(emu.workspace.message("C0INCIDENTS", decision["ts"]).fields)
    assert f"Severity raised to *{high}*" in shown
    store = running.bot.services.store
    while (record := await store.decision("C0INCIDENTS", decision["ts"])) is None or record.severity != high:
        assert time.monotonic() < deadline, "ratings apply to what is shown"  # written after the update
        await asyncio.sleep(0.05)
