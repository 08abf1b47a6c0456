"""Alert grouping: duplicates and related alerts join the first alert's thread; the severity raise updates
the decision; groups close on resolution and survive a restart."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from bot.alerts.alert import make_alert
from bot.local.emulator.storm import bcubed, storm
from bot.pipeline import group_thread
from bot.pipeline.grouping import Group, Grouper, rank
from bot.settings import GroupingSettings, load_settings
from bot.slack.posting import REACTIONS
from tests.harness import Running, start_bot


def alert(title: str, service: str | None = None, fingerprint: str | None = None) -> Any:
    return make_alert("human", status="firing", title=title, service=service, fingerprint=fingerprint)


def assert_marked(running: Running, alert_ts: str, group_ts: str, note: bool = True) -> None:
    """The grouped alert ``alert_ts`` carries the bot's :link: reaction and, in its thread, exactly one bot
    message: the note linking the thread of ``group_ts`` (none with ``note=False``: a storm)."""
    emu = running.emulator
    message = emu.workspace.message("C0INCIDENTS", alert_ts)
    assert message.reactions.get("link") == [emu.workspace.bot.user_id], message.reactions
    replies = [m for m in emu.workspace.thread("C0INCIDENTS", alert_ts)[1:] if m.bot_id]
    if not note:
        assert replies == []
        return
    assert len(replies) == 1, [m.text for m in replies]
    text = replies[0].text
    assert text.startswith(":link: Grouped with <") and "alerts so far): the decision" in text, text
    assert f"/archives/C0INCIDENTS/p{group_ts.replace('.', '')}|" in text, "it links the group's thread"


async def wait_marked(running: Running, alert_ts: str, timeout: float = 10.0) -> float:
    """Seconds until the grouped alert ``alert_ts`` shows the bot's reaction."""
    started = time.monotonic()
    while "link" not in running.emulator.workspace.message("C0INCIDENTS", alert_ts).reactions:
        assert time.monotonic() - started < timeout, f"{alert_ts} got no reaction"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


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
    running: Running,
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
    for ts in posted[1:]:  # the later alerts get no decision: a reaction and a note linking the group
        assert_marked(running, ts, first)
    resolved = await emu.post_message("U0BOB", "#incidents", STORM[1][0].replace("[FIRING:1]", "[RESOLVED]"))
    deadline = time.monotonic() + 15
    while "1 of 4 resolved" not in emu.workspace.message("C0INCIDENTS", summary.ts).text:
        assert time.monotonic() < deadline, "the resolution is not counted in the group's message"
        await asyncio.sleep(0.1)
    bot_user = emu.workspace.bot.user_id
    assert emu.workspace.message("C0INCIDENTS", resolved["ts"]).reactions == {"white_check_mark": [bot_user]}
    assert await emu.wait_for_bot_message("#incidents", thread_ts=unrelated["ts"], timeout=10)
    metrics = running.bot.parts.metrics
    assert sum(metrics.grouped.values.values()) == 3
    edits = [c for c in emu.calls if c.method == "chat.update" and c.ok]
    assert len(edits) <= 2, "edited at most once per burst, not once per alert"
    members = await running.bot.parts.store.open_groups(since=0)
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
async def test_a_replayed_storm_is_a_few_threads_that_match_its_root_causes(running: Running) -> None:
    emu, store = running.emulator, running.bot.parts.store
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
async def test_a_related_alert_of_higher_severity_updates_the_decision(running: Running) -> None:
    emu, engine = running.emulator, running.bot.parts.engine
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
    store = running.bot.parts.store
    while (record := await store.decision("C0INCIDENTS", decision["ts"])) is None or record.severity != high:
        assert time.monotonic() < deadline, "ratings apply to what is shown"  # written after the update
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_a_grouped_alert_shows_its_marker_at_once_and_exactly_once(running: Running) -> None:
    """A grouped alert gets the bot's reaction within a second and one note in its thread linking the group,
    once: not again for a re-delivered event, the same message under a new event_id, a post that failed after
    Slack made it (the outbox looks in the thread), nor a restart."""
    emu = running.emulator
    first = await emu.post_message("U0BOB", "#incidents", STORM[0][0])
    await running.decision_for(first)
    emu.faults.fail("chat.postMessage", status=503, after=True, times=1)  # the note is posted, then a 503
    joined = await emu.post_message("U0BOB", "#incidents", STORM[1][0])
    assert await wait_marked(running, joined["ts"]) < 1.0, "a visible sign within a second"
    deadline = time.monotonic() + 15
    while not [m for m in emu.workspace.thread("C0INCIDENTS", joined["ts"])[1:] if m.bot_id]:
        assert time.monotonic() < deadline, "no note"
        await asyncio.sleep(0.05)
    assert [m for m, _ in emu.faults.injected] == ["chat.postMessage"]
    event_id = next(eid for eid, env in emu.events.items() if env["event"].get("ts") == joined["ts"])
    await emu.redeliver(event_id)
    envelope = emu.events[event_id]
    assert (await emu.deliver_raw({**envelope, "event_id": "Ev0RESENTGROUPED"})).status == 200
    await emu.settle()
    await asyncio.sleep(1.5)  # the outbox's retry of the failed note has looked in the thread by now
    assert_marked(running, joined["ts"], first["ts"])

    settings = running.bot.settings  # a restart: the group, and that this alert was shown its sign, are kept
    await running.bot.stop()
    running.bot = await start_bot(emu, running.models, settings.db_url, settings.data_dir)
    emu.bot_url = running.bot.events_url
    assert (await emu.deliver_raw({**envelope, "event_id": "Ev0RESENTGROUPED2"})).status == 200
    later = await emu.post_message("U0BOB", "#incidents", STORM[2][0])
    await wait_marked(running, later["ts"])
    await emu.settle()
    await asyncio.sleep(0.5)
    assert_marked(running, joined["ts"], first["ts"])
    assert_marked(running, later["ts"], first["ts"])
    notes = [c for c in emu.calls if c.method == "chat.postMessage" and "oncall_grouped" in str(c.params)]
    assert len(notes) == 2, "one note per grouped alert"
    assert len([c for c in emu.calls if c.method == "chat.getPermalink"]) == 1, "the group's link, asked once"


@pytest.mark.asyncio
async def test_in_a_storm_joining_alerts_beyond_the_note_budget_get_the_reaction_only(
    running: Running,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(group_thread, "NOTES_PER_MINUTE", 2)  # a small storm stands for a big one
    emu = running.emulator
    posted = [(await emu.post_message("U0BOB", "#incidents", text))["ts"] for text, _ in STORM]
    for ts in posted[1:]:
        await wait_marked(running, ts)
    await emu.settle()
    await asyncio.sleep(0.3)
    noted = [ts for ts in posted[1:] if [m for m in emu.workspace.thread("C0INCIDENTS", ts)[1:] if m.bot_id]]
    assert len(noted) == 2, "two notes a minute in this channel, then reactions only"
    for ts in posted[1:]:
        assert_marked(running, ts, posted[0], note=ts in noted)
    replies = running.bot.parts.metrics.replies
    assert replies.value(kind="grouped, no note (storm)") == 1 and replies.value(kind="grouped reaction") == 3


@pytest.mark.asyncio
async def test_a_storm_beyond_slacks_reaction_limit_is_counted_in_the_group_only(
    running: Running,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reactions queue for Slack's limit at most REACTION_MAX_WAIT; an alert that would wait longer (and
    has no note left in the channel's minute) is shown only in its group's count, never as a 429."""
    monkeypatch.setattr(group_thread, "NOTES_PER_MINUTE", 1)
    monkeypatch.setattr(group_thread, "REACTION_MAX_WAIT", 1.0)
    running.bot.parts.pacer.limits[REACTIONS] = (2, 0.2)  # two at once, then one every 5 s
    emu = running.emulator
    posted = [(await emu.post_message("U0BOB", "#incidents", text))["ts"] for text, _ in STORM]
    deadline = time.monotonic() + 15
    while "+3 related alerts" not in " ".join(m.text for m in emu.workspace.thread("C0INCIDENTS", posted[0])):
        assert time.monotonic() < deadline, "the group's message does not count them"
        await asyncio.sleep(0.1)
    await emu.settle()
    replies = running.bot.parts.metrics.replies
    assert replies.value(kind="grouped reaction") == 2
    assert replies.value(kind="grouped, no reaction (storm)") == 1
    assert replies.value(kind="grouped note") == 1 and replies.value(kind="grouped, no note (storm)") == 2
    reacted = [ts for ts in posted[1:] if "link" in emu.workspace.message("C0INCIDENTS", ts).reactions]
    assert len(reacted) == 2
    assert not [c for c in emu.calls if not c.ok], "nothing refused, no 429"
