"""Similar past incidents end to end: the store's imported incidents and decisions (both backends), `oncall
history import`, the memory the bot serves from (final labels, thread links), the Block Kit it renders,
and the real bot answering an alert with them."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.pipeline.similar import SEARCH_BUDGET, Similar, SimilarIncidents, thread_link
from bot.settings import sqlite_path
from bot.slack.blocks import CONTEXT_TEXT_MAX, SIMILAR_BLOCK, SIMILAR_SKIPPED, decision_blocks, similar_block
from bot.store import DecisionRecord, PastIncident, Rating, open_store
from bot.store.migrations import MIGRATIONS
from engine.decision import Decision
from tests.bot.cli.test_train_predict_evaluate import oncall
from tests.harness import PERSON, Running

DISK = "Disk full on db-prod-3: /var/lib/postgresql at 100%, writes failing"


def past(id: str, text: str, **kw: object) -> PastIncident:
    fields: dict[str, object] = {
        "id": id,
        "title": text,
        "incident_text": f"{text} service:orders-db",
        "severity": "high",
        "category": "resource_exhaustion",
        "actions": ("scale_up",),
    }
    return PastIncident(**(fields | kw))  # type: ignore[arg-type]


def decision(reply_ts: str, text: str, created_at: float = 0.0) -> DecisionRecord:
    return DecisionRecord(
        channel="C1",
        reply_ts=reply_ts,
        alert_ts=f"{reply_ts}0",
        source="human",
        fingerprint=None,
        incident_text=text,
        severity="medium",
        severity_confidence=0.6,
        category="hardware",
        category_confidence=0.5,
        actions=[("replace_hardware", 0.5), ("failover", 0.3), ("monitor", 0.1)],
        model_version="v1",
        created_at=created_at,
    )


@pytest.mark.asyncio
async def test_the_store_keeps_imports_upserted_and_lists_what_the_memory_reads(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        await store.import_incident(past("pm-1", DISK, created_at=10.0, link="https://example.com/pm-1"))
        await store.import_incident(past("pm-2", "TLS certificate expired", created_at=20.0))
        await store.import_incident(past("pm-1", DISK, severity="critical", created_at=30.0))  # re-import
        rows = await store.past_incidents()
        assert [(p.id, p.severity, p.link, p.actions) for p in rows] == [
            ("pm-2", "high", None, ("scale_up",)),
            ("pm-1", "critical", None, ("scale_up",)),
        ]
        assert [p.id for p in await store.past_incidents(since=20.0)] == ["pm-1"]
        await store.record_decision(decision("5.1", "disk full on db-3", created_at=5.0))
        await store.record_decision(decision("6.1", "api 5xx", created_at=6.0))
        assert [d.reply_ts for d in await store.decisions_since(5.0)] == ["6.1"]
        await store.rate("C1", "5.1", "U2", "correct_category", Rating("category", "database"))
        await store.rate("C1", "5.1", "U1", "+1", Rating("verdict", "confirm"))
        votes = await store.votes("C1", "5.1")
        assert [(v[0], v[1], v[3]) for v in votes] == [
            ("U1", "verdict", "confirm"),
            ("U2", "category", "database"),
        ]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_the_memory_shows_final_labels_thread_links_and_never_the_alert_itself(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'oncall.db'}")
    try:
        memory = SimilarIncidents(store, workspace_url=lambda: "https://acme.slack.com/")
        await store.import_incident(past("pm-1", DISK, link="https://wiki.example.com/pm-1"))
        await store.record_decision(decision("100.000200", "Disk full on db-prod-4, postgres writes failing"))
        await store.record_decision(decision("200.000300", "TLS certificate expired on api-gateway"))
        assert await memory.refresh() == 3
        assert await memory.refresh() == 0  # nothing new: nothing indexed twice
        hits = await memory.similar("disk full on db-prod-7, postgresql writes failing", "C1", "999.1")
        by_title = {h.title: h for h in hits}
        assert set(by_title) == {DISK, "Disk full on db-prod-4, postgres writes failing"}  # not the TLS one
        imported = by_title[DISK]
        assert (imported.link, imported.severity, imported.category, imported.action, imported.confirmed) == (
            "https://wiki.example.com/pm-1",
            "high",
            "resource_exhaustion",
            "scale_up",
            True,
        )
        made = by_title["Disk full on db-prod-4, postgres writes failing"]
        assert made.link == "https://acme.slack.com/archives/C1/p1000002000"
        assert (made.severity, made.category, made.confirmed) == ("medium", "hardware", False)  # unrated
        # A correction and a confirmed fix count from the next refresh (every REFRESH_SECONDS).
        await store.rate("C1", "100.000200", "U2", "correct_category", Rating("category", "database"))
        await store.rate("C1", "100.000200", "U2", "fixed_other", Rating("action", "failover"))
        await memory.refresh()
        again = await memory.similar("disk full on db-prod-7, postgresql writes failing", "C1", "999.1")
        made = next(h for h in again if h.link and "acme" in h.link)
        assert (made.severity, made.category, made.action, made.confirmed) == (
            None,
            "database",
            "failover",
            True,
        )
        # The alert being answered is never its own similar incident.
        own = await memory.similar("Disk full on db-prod-4, postgres writes failing", "C1", "100.0002000")
        assert all(h.link is None or "p1000002000" not in h.link for h in own)
        # A re-import with other labels replaces the old ones.
        await store.import_incident(past("pm-1", DISK, category="database"))
        assert await memory.refresh() == 1
        hits = await memory.similar(DISK, "C1", "999.1")
        assert [h.category for h in hits if h.title == DISK] == ["database"]
    finally:
        await store.close()


def test_thread_links_are_slack_permalinks() -> None:
    assert thread_link("https://acme.slack.com/", "C0INC", "1700000000.123456") == (
        "https://acme.slack.com/archives/C0INC/p1700000000123456"
    )
    assert thread_link(None, "C0INC", "1.2") is None


def test_the_similar_block_escapes_everything_and_shows_three_at_most() -> None:
    hostile = Similar(
        "<!channel> db down <https://evil.example|click> &amp; " + "x" * 500,
        "https://ok.example/a|b>c",
        "critical",
        "database",
        "failover",
        0.8123,
    )
    plain = Similar("Disk full", None, None, None, None, 0.41, confirmed=False)
    unconfirmed = Similar("API 5xx", None, "high", "software_bug", None, 0.5, confirmed=False)
    block = similar_block([hostile, plain, unconfirmed, hostile])
    assert block["type"] == "context" and block["block_id"] == SIMILAR_BLOCK
    text = block["elements"][0]["text"]
    assert len(text) <= CONTEXT_TEXT_MAX and text.count("\n") == 3  # a header and three lines
    assert "<!channel>" not in text and "<https://evil" not in text and "&lt;!channel&gt;" in text
    assert "<https://ok.example/a%7Cb&gt;c|" in text  # the bot's own link, its | and > made inert
    assert "critical, database · fixed by failover · 81% similar" in text
    assert "• Disk full · 41% similar" in text
    assert "high, software bug (predicted, unconfirmed)" in text


def test_decision_blocks_show_similar_incidents_only_when_there_are_some() -> None:
    decision = Decision("high", 0.7, "database", 0.6, [], False, False, model_version="v1")
    _, without = decision_blocks(decision, similar=[])
    assert all(b.get("block_id") != SIMILAR_BLOCK for b in without)
    _, blocks = decision_blocks(decision, similar=[Similar("Disk full", None, "high", None, None, 0.5)])
    assert [b.get("block_id") for b in blocks].count(SIMILAR_BLOCK) == 1
    _, skipped = decision_blocks(decision, similar=[], similar_skipped=True)  # not "none found"
    notes = [b["elements"][0]["text"] for b in skipped if b.get("block_id") == SIMILAR_BLOCK]
    assert notes == [SIMILAR_SKIPPED]


def test_history_import_reports_skips_and_is_idempotent(tmp_path: Path) -> None:
    data = tmp_path / "history.jsonl"
    rows = [
        {"id": "pm-1", "title": "Disk full on db-prod-3", "severity": "high",
         "category": "resource_exhaustion", "actions": ["scale_up"], "url": "https://wiki.example.com/pm-1"},
        {"title": "TLS certificate expired", "category": "security", "link": "javascript:alert(1)"},
        {"title": "x", "severity": "urgent"},
    ]  # fmt: skip
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    db_url = f"sqlite:///{tmp_path / 'oncall.db'}"
    first = oncall("history", "import", "--data", str(data), "--db-url", db_url)
    assert first.returncode == 0, first.stderr
    assert "2 past incidents imported into the memory, 2 lines skipped" in first.stdout
    assert "history.jsonl:3: unknown severity 'urgent'" in first.stderr
    assert "history.jsonl:4: not valid JSON" in first.stderr
    again = oncall("history", "import", "--data", str(data), "--db-url", db_url)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(sqlite_path(db_url)) as db:
        stored = sorted(db.execute("SELECT id, title, category, link FROM incidents").fetchall())
    assert len(stored) == 2
    assert (
        "pm-1",
        "Disk full on db-prod-3",
        "resource_exhaustion",
        "https://wiki.example.com/pm-1",
    ) in stored
    tls = next(r for r in stored if r[0] != "pm-1")
    assert tls[0].startswith("sha256:") and tls[3] is None  # no id: the text is its identity; no unsafe link
    missing = oncall("history", "import", "--data", str(tmp_path / "nope.jsonl"), "--db-url", db_url)
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr


@pytest.mark.asyncio
async def test_the_bot_lists_the_similar_past_incident_under_its_decision(running: Running) -> None:
    parts = running.bot.parts
    await parts.store.import_incident(
        past(
            "pm-42", "Disk full on db-prod-3: postgres writes failing", link="https://wiki.example.com/pm-42"
        )
    )
    await parts.similar.refresh()
    alert = await running.emulator.post_message(
        PERSON, "#incidents", "disk full on db-prod-5, postgres writes failing"
    )
    reply = await running.decision_for(alert)
    similar = [b for b in reply["blocks"] if b.get("block_id") == SIMILAR_BLOCK]
    assert similar, "the reply lists no similar past incident"
    text = similar[0]["elements"][0]["text"]
    assert "<https://wiki.example.com/pm-42|Disk full on db-prod-3: postgres writes failing>" in text
    assert "fixed by scale up" in text


@pytest.mark.asyncio
async def test_the_running_bot_remembers_its_decisions_and_their_corrections(running: Running) -> None:
    """What the bot serves from today: its memory follows the store and links to the workspace's threads."""
    parts = running.bot.parts
    alert = await running.emulator.post_message(
        PERSON, "#incidents", "disk full on db-prod-5, postgres writes failing"
    )
    reply = await running.decision_for(alert)
    await running.stored(reply)
    await parts.similar.refresh()
    await parts.store.rate(
        alert["channel"], reply["ts"], "U0CAROL", "correct_severity", Rating("severity", "low")
    )
    await parts.similar.refresh()  # as the memory does every REFRESH_SECONDS
    hits = await parts.similar.similar("disk full on db-prod-9: postgres writes failing", "C0OTHER", "1.0")
    assert [(h.title, h.severity, h.confirmed) for h in hits] == [
        ("disk full on db-prod-5, postgres writes failing", "low", True)
    ]
    assert (
        hits[0].link
        == f"https://emulator.slack.com/archives/{alert['channel']}/p{alert['ts'].replace('.', '')}"
    )
    assert await parts.similar.similar(alert["text"], alert["channel"], alert["ts"]) == []  # never itself


DISK_ALERT = "disk full on db-prod-5, postgres writes failing"


def similar_text(reply: dict[str, Any]) -> str | None:
    """The similar-incidents line(s) of a decision, or None when it has none."""
    block = next((b for b in reply["blocks"] if b.get("block_id") == SIMILAR_BLOCK), None)
    return block["elements"][0]["text"] if block else None


async def skipped_metric(bot: Running, reason: str) -> str:
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(bot.bot.url + "/metrics")).text()
    return next((line for line in text.splitlines() if f'reason="{reason}"' in line), "")


@pytest.mark.asyncio
async def test_a_slow_search_does_not_hold_the_decision_back_and_says_so(running: Running) -> None:
    parts = running.bot.parts
    await parts.store.import_incident(past("pm-7", "Disk full on db-prod-3: postgres writes failing"))
    await parts.similar.refresh()
    index, release = parts.similar.index, threading.Event()
    search = index.search

    def stuck(*args: Any, **kw: Any) -> Any:  # the fault: a search as slow as the test says
        release.wait(10)
        return search(*args, **kw)

    index.search = stuck  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        alert = await running.emulator.post_message(PERSON, "#incidents", DISK_ALERT)
        reply = await running.decision_for(alert)
        assert time.monotonic() - started < SEARCH_BUDGET + 2.0  # not the 10 s the search would take
        assert "*Severity:*" in json.dumps(reply["blocks"]) and similar_text(reply) == SIMILAR_SKIPPED
        assert (await skipped_metric(running, "slow")).endswith(" 1.0")
    finally:
        index.search = search  # type: ignore[method-assign]
        release.set()
    # Once the search is quick again, the next decision lists the incident as usual (another channel:
    # in the same one the alert would join the first one's group).
    alert = await running.emulator.post_message(PERSON, "#alerts-prod", DISK_ALERT)
    assert "Disk full on db-prod-3" in (similar_text(await running.decision_for(alert)) or "")


@pytest.mark.asyncio
async def test_while_the_event_loop_is_overloaded_decisions_skip_the_search(running: Running) -> None:
    parts = running.bot.parts
    await parts.store.import_incident(past("pm-8", "Disk full on db-prod-3: postgres writes failing"))
    await parts.similar.refresh()
    lag = parts.similar.loop_lag
    deadline = time.monotonic() + 3
    while not lag.busy:  # the overload: callbacks that hold the loop 150 ms each, as a storm would
        assert time.monotonic() < deadline, f"the loop was never found overloaded (last lag {lag.lag:.3f} s)"
        time.sleep(0.15)
        await asyncio.sleep(0)
    alert = await running.emulator.post_message(PERSON, "#incidents", DISK_ALERT)
    reply = await running.decision_for(alert)
    assert similar_text(reply) == SIMILAR_SKIPPED
    assert (await skipped_metric(running, "busy")).endswith(" 1.0")
    while lag.busy:  # the overload is over: within BUSY_HOLD the search is back
        await asyncio.sleep(0.1)
    alert = await running.emulator.post_message(PERSON, "#alerts-prod", DISK_ALERT)
    assert "Disk full on db-prod-3" in (similar_text(await running.decision_for(alert)) or "")
