"""/metrics is standard Prometheus: written by prometheus_client from a registry per bot, counters typed
counter with `_total`, the decision latency a histogram, the process and Python collectors beside the
bot's own, and `promtool check metrics` (Debian's `prometheus` package) finds nothing to say about a live
scrape after real traffic. Without promtool that test is skipped, unless ONCALL_REQUIRE_PROMTOOL=1 (CI)
makes that a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import aiohttp
import pytest

from bot.ops.metrics import Metrics, Scrape
from tests.harness import ADMIN, ALERTMANAGER, PERSON, Running, eventually

# Counts since start that were once typed gauge: each must be a counter with `_total` now.
COUNTS = (
    "oncall_outbox_retries",
    "oncall_outbox_recovered",
    "oncall_outbox_expired",
    "oncall_outbox_journaled",
    "oncall_store_writes_deferred",
    "oncall_store_writes_dropped",
    "oncall_model_reloads",
    "oncall_model_load_failures",
)
LEVELS = ("oncall_outbox_unanswered", "oncall_store_writes_pending", "oncall_store_degraded")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("ONCALL_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (ONCALL_REQUIRE_PROMTOOL=1) but not on PATH")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def types(text: str) -> dict[str, str]:
    """Each metric family's name and type, from the exposition's # TYPE lines."""
    return {parts[2]: parts[3] for line in text.splitlines() if (parts := line.split())[:2] == ["#", "TYPE"]}


async def traffic(bot: Running) -> None:
    """What a day brings, in small: alerts from a webhook and from a person, a re-delivery, a slash
    command, a rating, an unknown event type and a forged request."""
    emu = bot.emulator
    async with aiohttp.ClientSession() as http:
        assert (await http.post(emu.create_webhook("#incidents"), json=ALERTMANAGER)).status == 200
    webhook_alert = (await emu.history("#incidents"))[-1]
    await bot.decision_for(webhook_alert)
    alert = await emu.post_message(PERSON, "#incidents", "[P1] Triggered: orders-db replication lag 900s")
    reply = await bot.decision_for(alert)
    event_id = next(eid for eid, env in emu.events.items() if env["event"].get("ts") == alert["ts"])
    await emu.redeliver(event_id)
    await emu.run_command(PERSON, "#incidents", "/oncall-predict", "payments 5xx at 40%")
    await emu.add_reaction(ADMIN, "#incidents", reply["ts"], "+1")
    event = {
        "type": "pin_added",
        "user": PERSON,
        "channel_id": "C0INCIDENTS",
        "event_ts": f"{time.time():.6f}",
    }
    envelope = {"type": "event_callback", "team_id": "T0EMULATOR", "event_id": f"Ev{time.time_ns()}"}
    assert (await emu.deliver_raw({**envelope, "event": event})).status == 200
    assert (await emu.deliver_raw(envelope, signature="v0=" + "0" * 64)).status == 401
    await emu.settle()


@pytest.mark.asyncio
async def test_a_live_scrape_after_real_traffic_passes_promtool(running: Running) -> None:
    tool = promtool()
    await traffic(running)
    ratings = running.bot.parts.metrics.ratings

    async def rated() -> float:
        return ratings.value(kind="verdict", change="added")

    assert await eventually(rated, 1.0) == 1.0, "the rating was never counted"
    async with aiohttp.ClientSession() as http:
        answer = await http.get(running.bot.url + "/metrics")
        text = await answer.text()
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr

    kinds = types(text)
    for name in COUNTS:
        assert kinds.get(name + "_total") == "counter", name
        assert name not in kinds, f"{name} is still exported without _total"
    for name in LEVELS:
        assert kinds.get(name) == "gauge", name
    assert kinds["oncall_decision_seconds"] == "histogram"
    assert all(kind == "counter" for name, kind in kinds.items() if name.endswith("_total"))
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= set(kinds)
    assert "oncall_decision_seconds_count 2.0" in text
    assert 'oncall_alerts_total{source="alertmanager"} 1.0' in text
    assert 'oncall_events_total{outcome="unhandled",type="pin_added"} 1.0' in text
    assert "oncall_duplicate_events_total 1.0" in text
    assert 'oncall_requests_refused_total{kind="request",reason="bad signature"} 1.0' in text
    assert 'oncall_commands_total{command="/oncall-predict",sub="predict"} 1.0' in text
    assert 'oncall_model_reloads_total{outcome="failed"} 0.0' in text
    assert f'oncall_model_info{{version="{running.bot.ml.models.version}"}} 1.0' in text
    assert "oncall_ready 1.0" in text


def test_promtool_missing_skips_here_and_fails_where_it_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("ONCALL_REQUIRE_PROMTOOL", raising=False)
    with pytest.raises(pytest.skip.Exception):
        promtool()
    monkeypatch.setenv("ONCALL_REQUIRE_PROMTOOL", "1")  # as .ci/run sets it
    with pytest.raises(pytest.fail.Exception, match="ONCALL_REQUIRE_PROMTOOL"):
        promtool()


def test_each_bot_counts_in_a_registry_of_its_own() -> None:
    """Several bots in one process (the tests, two replicas) never add to each other's numbers."""
    one, two = Metrics(), Metrics()
    one.duplicates.inc()
    one.refused.inc(kind="request", reason="bad signature")
    one.decide_seconds.observe(0.2)
    assert one.duplicates.value() == 1 and two.duplicates.value() == 0
    assert two.refused.value(kind="request", reason="bad signature") == 0
    first, second = one.render(Scrape()).decode(), two.render(Scrape()).decode()
    assert "oncall_decision_seconds_count 1.0" in first and "oncall_decision_seconds_count 0.0" in second
    assert "process_cpu_seconds_total" in first and "process_cpu_seconds_total" in second


def test_counts_read_at_scrape_time_are_counters_and_levels_are_gauges() -> None:
    text = (
        Metrics()
        .render(
            Scrape(
                totals={"oncall_outbox_retries": ("Answers tried again since start.", 3)},
                levels={"oncall_outbox_unanswered": ("Alerts acknowledged and not answered yet.", 2)},
                reloads={"ok": 1, "failed": 0},
            )
        )
        .decode()
    )
    kinds = types(text)
    assert kinds["oncall_outbox_retries_total"] == "counter" and "oncall_outbox_retries_total 3.0" in text
    assert kinds["oncall_outbox_unanswered"] == "gauge" and "oncall_outbox_unanswered 2.0" in text
    assert kinds["oncall_model_reloads_total"] == "counter"
