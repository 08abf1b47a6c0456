"""The playground's server side, over HTTP against `oncall serve` in local mode (in this process): the page
and its static files (nothing fetched from the network), the guards (loopback Host, same-origin JSON
only), live updates, acting as people and alert sources, and the models API. The browser drives the same
API in tests/integration/test_playground_browser.py."""

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

from bot.local.emulator import SlackEmulator
from bot.local.emulator.history import FILE_NAME as HISTORY_FILE
from bot.local.emulator.history import History
from bot.local.emulator.state import Workspace
from bot.local.playground.routes import STATIC, is_loopback
from bot.runner import OncallBot
from bot.settings import Settings
from engine.ml_service import MLService
from tests.conftest import small_config
from tests.harness import SECRET, TOKEN, start_bot
from training.train import GateRefused, train

API = "/playground/api"
CHANNEL = "C0INCIDENTS"


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body) as response:
        return response.status, await response.json()


async def thread_replies(http: aiohttp.ClientSession, base: str, ts: str, viewer: str = "alice") -> list[Any]:
    """The replies of `ts` in #incidents once the bot has answered (waits up to 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, data = await call(http, "GET", f"{base}{API}/channels/{CHANNEL}/messages?viewer={viewer}")
        assert status == 200
        parent = next(m for m in data["messages"] if m["ts"] == ts)
        if parent["replies"]:
            return list(parent["replies"])
        await asyncio.sleep(0.05)
    raise AssertionError("the bot never answered in the thread")


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.asyncio
async def test_the_page_and_its_files_are_served_and_fetch_nothing_from_the_network(
    local_bot: OncallBot, http: aiohttp.ClientSession
) -> None:
    async with http.get(local_bot.url + "/") as response:
        page = await response.text()
        assert response.status == 200 and response.content_type == "text/html"
    assert '<script type="module" src="/static/app.js">' in page
    files = sorted(p.name for p in STATIC.iterdir())
    assert {"index.html", "app.js", "blockkit.js", "mrkdwn.js", "models.js", "style.css"} <= set(files)
    remote = re.compile(
        r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|from\s+["']https?:|@import"""
    )
    for name in files:
        async with http.get(f"{local_bot.url}/static/{name}") as response:
            assert response.status == 200, name
            text = await response.text()
        assert not remote.search(text), f"{name} loads something from the network: {remote.search(text)}"
    async with http.get(local_bot.url + "/models") as response:  # the models page is the same app
        assert response.status == 200 and await response.text() == page
    async with http.get(local_bot.url + "/static/../routes.py") as response:
        assert response.status in (403, 404)


@pytest.mark.asyncio
async def test_only_this_machine_and_its_own_page_may_use_it(
    local_bot: OncallBot, http: aiohttp.ClientSession
) -> None:
    base = local_bot.url
    for path in ("/", f"{API}/workspace"):  # DNS rebinding: another name that resolves to 127.0.0.1
        async with http.get(base + path, headers={"Host": "attacker.example"}) as response:
            assert response.status == 403, path
        for host in (f"localhost:{local_bot.port}", f"[::1]:{local_bot.port}"):
            async with http.get(base + path, headers={"Host": host}) as response:
                assert response.status == 200, (path, host)
    body = {"user": "alice", "channel": CHANNEL, "text": "hello"}
    async with http.post(
        f"{base}{API}/messages", json=body, headers={"Origin": "https://attacker.example"}
    ) as r:
        assert r.status == 403 and (await r.json())["detail"] == "cross-site"
    async with http.post(
        f"{base}{API}/messages", data={"user": "alice", "channel": CHANNEL, "text": "x"}
    ) as r:
        assert r.status == 415  # a cross-site form cannot send JSON without a preflight
    async with http.post(f"{base}{API}/messages", json=body, headers={"Origin": base}) as r:
        assert r.status == 201
    history = await local_bot.emulator.history(CHANNEL)  # type: ignore[union-attr]
    assert [m["text"] for m in history] == ["hello"]  # only the same-origin post got in


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(
        is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "::", "example.com", "", "127.0.0.1.nip.io")
    )


@pytest.mark.asyncio
async def test_an_alert_from_a_source_gets_its_decision_live_and_commands_answer_only_their_user(
    local_bot: OncallBot, http: aiohttp.ClientSession
) -> None:
    base = local_bot.url
    status, workspace = await call(http, "GET", f"{base}{API}/workspace")
    assert status == 200
    sources = {t["source"]: t for t in workspace["templates"]}
    assert set(sources) == {"alertmanager", "grafana", "datadog", "sentry", "cloudwatch", "pagerduty"}
    assert "/oncall-predict" in workspace["commands"] and "/oncall-models" in workspace["commands"]

    async with http.get(f"{base}{API}/events", timeout=aiohttp.ClientTimeout(sock_read=10)) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert await stream.content.readline() == b"retry: 1000\n"
        status, _ = await call(
            http,
            "POST",
            f"{base}{API}/alerts",
            {"source": "alertmanager", "channel": "#incidents", "payload": sources["alertmanager"]["body"]},
        )
        assert status == 201
        changed: list[str] = []
        while CHANNEL not in changed:  # the alert, then the bot's reply, each announce the channel
            line = (await stream.content.readline()).decode()
            if line.startswith("data: ") and "channels" in line:
                changed += json.loads(line[6:])["channels"]

    status, data = await call(http, "GET", f"{base}{API}/channels/{CHANNEL}/messages?viewer=alice")
    alert = data["messages"][-1]
    assert alert["author"] == {"name": "alertmanager", "kind": "bot"}  # posted through a real webhook
    assert "HighErrorRate" in alert["attachments"][0]["title"]
    (decision,) = await thread_replies(http, base, alert["ts"])
    assert decision["author"]["kind"] == "app" and "Severity" in json.dumps(decision["blocks"])

    status, interaction = await call(
        http,
        "POST",
        f"{base}{API}/commands",
        {
            "user": "bob",
            "channel": CHANNEL,
            "command": "/oncall-predict",
            "text": "payments 503 for everyone",
        },
    )
    assert status == 202 and interaction["kind"] == "command"
    deadline = time.monotonic() + 10
    while True:
        seen = {}
        for viewer in ("bob", "alice"):
            _, data = await call(http, "GET", f"{base}{API}/channels/{CHANNEL}/messages?viewer={viewer}")
            seen[viewer] = data["ephemeral"]
        if seen["bob"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert len(seen["bob"]) == 1 and "Severity" in json.dumps(seen["bob"][0]["blocks"])
    assert seen["alice"] == []  # ephemeral: only who ran the command sees it


@pytest.mark.asyncio
async def test_bad_requests_get_a_clear_error_and_change_nothing(
    local_bot: OncallBot, http: aiohttp.ClientSession
) -> None:
    base = local_bot.url
    cases = [
        (
            "POST",
            "/alerts",
            {"source": "nagios", "channel": CHANNEL, "payload": {"text": "x"}},
            400,
            "unknown source",
        ),
        ("POST", "/alerts", {"source": "grafana", "channel": CHANNEL, "payload": ["x"]}, 400, "JSON object"),
        (
            "POST",
            "/alerts",
            {"source": "grafana", "channel": CHANNEL, "payload": {"nothing": 1}},
            400,
            "refused",
        ),
        (
            "POST",
            "/alerts",
            {"source": "grafana", "channel": "#nope", "payload": {"text": "x"}},
            404,
            "no channel",
        ),
        ("POST", "/messages", {"user": "mallory", "channel": CHANNEL, "text": "x"}, 404, "no person"),
        ("POST", "/messages", {"user": "alice", "channel": CHANNEL}, 400, "missing fields: text"),
        (
            "POST",
            "/commands",
            {"user": "alice", "channel": CHANNEL, "command": "oncall"},
            400,
            "slash command",
        ),
        (
            "POST",
            "/clicks",
            {"user": "alice", "channel": CHANNEL, "ts": "1.2", "action_id": "x"},
            404,
            "no message",
        ),
        (
            "POST",
            "/reactions",
            {"user": "alice", "channel": CHANNEL, "ts": "1.2", "name": "+1"},
            404,
            "no message",
        ),
        ("GET", "/channels/C0NOPE/messages", None, 404, "no channel"),
        ("POST", "/models/explode", {}, 404, "no model action"),
        ("POST", "/models/promote", {}, 400, "missing fields: version"),
    ]
    for method, path, body, status, detail in cases:
        got, answer = await call(http, method, f"{base}{API}{path}", body)
        assert (got, answer["ok"]) == (status, False), (path, body, answer)
        assert detail in answer["detail"], (path, answer)
    async with http.post(
        f"{base}{API}/messages", data="{not json", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400 and "JSON object" in (await r.json())["detail"]
    assert await local_bot.emulator.history(CHANNEL) == []  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_models_page_data_and_its_buttons(local_bot: OncallBot, http: aiohttp.ClientSession) -> None:
    base = local_bot.url
    _, summary = await call(http, "GET", f"{base}{API}/models")
    first, second = summary["versions"][1]["id"], summary["versions"][0]["id"]  # newest first
    assert summary["serving"] == summary["active"] == second and not summary["fallback"]
    for version in summary["versions"]:
        real = [s for s in version["rows_by_source"] if not s.startswith("synthetic/")]
        assert [q["kind"] for q in version["quality"]] == (["real"] if real else []) + ["synthetic"]
        quality = version["quality"][-1]  # after the real rows, when the version trained on any
        assert quality["label"] == "synthetic rows: not evidence of quality on real alerts"
        severity = quality["severity"]
        assert severity["confusion"]["labels"] == ["critical", "high", "medium", "low"]
        assert set(severity["per_class"]) == {"critical", "high", "medium", "low"}
        assert all(0 <= b["confidence"] <= 1 and b["n"] > 0 for b in severity["calibration"])
        assert version["ratings"] == {"decisions": 0, "confirm": 0, "reject": 0, "action": 0, "corrected": 0}
        assert 0 < quality["actions"]["top3"] <= 1

    _, answer = await call(http, "POST", f"{base}{API}/models/rollback", {})
    assert answer["ok"] and f"`{second}` → `{first}`" in answer["text"]
    assert local_bot.ml.models.version == first
    _, answer = await call(http, "POST", f"{base}{API}/models/promote", {"version": second})
    assert answer["ok"] and f"→ `{second}`" in answer["text"]
    promotions = local_bot.ml.registry.get(second).metadata["promotions"]
    assert promotions[-1]["via"] == "playground"
    _, answer = await call(http, "POST", f"{base}{API}/models/promote", {"version": "no-such-version"})
    assert not answer["ok"] and "no-such-version" in answer["text"]
    _, answer = await call(http, "POST", f"{base}{API}/models/reload", {})
    assert answer["ok"] and local_bot.ml.models.version == second  # the failed promote changed nothing


@pytest.mark.asyncio
async def test_models_page_puts_real_rows_first_and_never_passes_synthetic_ones_off_as_real(
    local_bot: OncallBot, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A version trained with a team's labeled file shows its real held-out rows first, with how many and
    whence; synthetic numbers say what they are, also for versions saved before the two were scored apart
    (inferred from the sources they trained on)."""
    registry = local_bot.ml.registry
    oldest = registry.list_versions()[0]
    legacy = dict(oldest.metadata)
    legacy["metrics"] = {k: v for k, v in legacy["metrics"].items() if k not in ("real", "synthetic")}
    (oldest.path / "metadata.json").write_text(json.dumps(legacy))  # as saved before this change
    data = tmp_path / "history.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "title": f"Payments API 5xx {i}%",
                    "description": "customers cannot pay",
                    "severity": "critical",
                    "category": "software_bug",
                    "actions": ["rollback_deploy"],
                    "provider": "acme",
                }
            )
            + "\n"
            for i in range(10, 40)
        )
    )
    config = small_config(3, samples=1200, data_files=[data])
    result = await asyncio.to_thread(train, config, registry.root, False)

    _, summary = await call(http, "GET", f"{local_bot.url}{API}/models")
    by_id = {v["id"]: v for v in summary["versions"]}
    real, synthetic = by_id[result.version]["quality"]
    assert real["kind"] == "real" and real["sources"]["history"] == 6  # a fifth of the file
    assert real["rows"] == sum(real["sources"].values()) == result.metrics["real"]["rows"]
    assert real["description"].startswith(f"real labeled rows, n={real['rows']} from ")
    assert "history 6 (held-out rows of the training sources" in real["description"]
    assert real["severity"]["by_provider"]["acme"]["n"] == 6
    assert synthetic["kind"] == "synthetic" and synthetic["rows"] == result.metrics["synthetic"]["rows"] > 200
    assert synthetic["label"] == "synthetic rows: not evidence of quality on real alerts"
    (pooled,) = by_id[oldest.id]["quality"]  # one pooled set, labeled by the sources it trained on
    mixed = any(not s.startswith("synthetic/") for s in legacy["data"]["by_source"])
    assert pooled["kind"] == ("mixed" if mixed else "synthetic")
    assert "not evidence of quality on real alerts" in pooled["label"]
    assert pooled["severity"]["macro_f1"] == legacy["metrics"]["severity"]["macro_f1"]


@pytest.mark.asyncio
async def test_no_playground_when_connected_to_slack(models_dir: Path, tmp_path: Path) -> None:
    async with SlackEmulator(SECRET, TOKEN) as emulator:
        bot = await start_bot(emulator, models_dir, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "data")
        try:
            async with aiohttp.ClientSession() as http:
                for path in ("/", f"{API}/workspace", "/static/app.js"):
                    async with http.get(bot.url + path) as response:
                        assert response.status == 404, path
        finally:
            await bot.stop()


@pytest.mark.asyncio
async def test_local_mode_listening_on_every_interface_answers_on_loopback(
    models_dir: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """A container's `oncall serve --host 0.0.0.0` with no tokens: the built-in emulator delivers to the
    bot over loopback, and an alert is answered (the playground is off: not a loopback host)."""
    settings = Settings(
        host="0.0.0.0", port=0, model_path=models_dir, db_url=f"sqlite:///{tmp_path / 'any.db'}",
        data_dir=tmp_path / "data",
    )  # fmt: skip
    bot = OncallBot(settings, ml=MLService(models_dir, auto_train=False))
    await bot.start()
    try:
        await bot.wait_ready(timeout=30)
        assert bot.url.startswith("http://127.0.0.1:") and bot.emulator is not None
        alert = await bot.emulator.post_message("U0BOB", "#incidents", "checkout 5xx at 40% for 10m")
        reply = await bot.emulator.wait_for_bot_message("#incidents", thread_ts=alert["ts"], timeout=15)
        assert "model " in json.dumps(reply)
        await bot.emulator.settle()
    finally:
        await bot.stop()


# A model far smaller than the fixture's (300 samples, not 1,500), let past the quality floor: the promotion
# gate refuses it against the active version, as it refuses a first `oncall train --samples 300`.
REFUSED_CONFIG = small_config(8, samples=300, min_macro_f1=0.2, min_action_top3=0.2)


def local_settings(models_dir: Path, tmp_path: Path) -> Settings:
    """`oncall serve` with no tokens on a free port: the same store and data directory on every start."""
    return Settings(
        port=0,
        model_path=models_dir,
        db_url=f"sqlite:///{tmp_path / 'oncall.db'}",
        data_dir=tmp_path / "data",
    )


async def started(settings: Settings, models_dir: Path) -> OncallBot:
    bot = OncallBot(settings, ml=MLService(models_dir, auto_train=False))
    await bot.start()
    await bot.wait_ready(timeout=30)
    return bot


def test_the_workspace_saved_is_the_workspace_restored(tmp_path: Path) -> None:
    """Channels, messages, threads, reactions, edits and the webhooks' bots, through the file and back;
    not the ephemeral messages (Slack does not keep them); the file replaced whole, nothing left beside."""
    ws = Workspace()
    hook = ws.new_bot("Grafana")
    alert = ws.add_message("C0INCIDENTS", "disk full", bot_id=hook.id, subtype="bot_message", username="G")
    reply = ws.post_as_bot("C0INCIDENTS", "decision", thread_ts=alert.ts, blocks=[{"type": "divider"}])
    ws.add_reaction("C0INCIDENTS", reply.ts, "+1", "U0ALICE")
    ws.update_message("C0INCIDENTS", reply.ts, "decision, corrected", ws.bot.id)
    ws.join("C0GENERAL", ws.bot.user_id or "")
    ws.add_ephemeral("C0INCIDENTS", "U0BOB", text="only Bob")
    path = tmp_path / "data" / HISTORY_FILE
    History(ws, path).save()
    History(ws, path).save()  # over the first
    assert sorted(p.name for p in path.parent.iterdir()) == [HISTORY_FILE]

    again = Workspace()
    history = History(again, path)
    history.load()
    assert history.found and history.restored == 2 and history.reset_reason is None
    assert again.snapshot() == ws.snapshot()
    assert again.ephemeral == []
    assert [m.text for m in again.thread("C0INCIDENTS", alert.ts)] == ["disk full", "decision, corrected"]
    assert again.bots[hook.id].name == "Grafana" and again.new_bot("Sentry").id not in ws.bots
    assert again.next_ts() > reply.ts  # new messages come after the restored ones


def test_a_history_that_cannot_be_restored_is_moved_aside_and_said(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    for broken in ("{not json", json.dumps({"format": 99}), json.dumps({"format": 1, "workspace": {}})):
        path.write_text(broken)
        ws = Workspace()
        history = History(ws, path)
        history.load()
        assert history.restored == 0 and not path.exists()
        assert history.reset_reason and "could not be restored" in history.reset_reason
        assert ws.snapshot() == Workspace().snapshot()
    assert len(list(tmp_path.glob("emulator-history.unreadable-*.json"))) >= 1


@pytest.mark.asyncio
async def test_the_channels_survive_a_restart_and_a_lost_history_is_said(
    models_dir: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = local_settings(models_dir, tmp_path)
    bot = await started(settings, models_dir)
    try:
        body = {"user": "bob", "channel": CHANNEL, "text": "payments 503 for everyone since 10:02"}
        status, posted = await call(http, "POST", f"{bot.url}{API}/messages", body)
        assert status == 201
        (decision,) = await thread_replies(http, bot.url, posted["ts"])
        await bot.emulator.settle()  # type: ignore[union-attr]
    finally:
        await bot.stop()
    saved = json.loads((settings.data_dir / HISTORY_FILE).read_text())
    assert saved["format"] == 1 and len(saved["workspace"]["messages"][CHANNEL]) == 2

    bot = await started(settings, models_dir)
    try:
        _, workspace = await call(http, "GET", f"{bot.url}{API}/workspace")
        assert workspace["history"]["reset"] is None and workspace["history"]["restored"] == 2
        assert await thread_replies(http, bot.url, posted["ts"]) == [decision]
    finally:
        await bot.stop()

    # An unreadable file, then none at all: the channels start empty and the page says why, and how many
    # decisions the store kept.
    (settings.data_dir / HISTORY_FILE).write_text("{cut off")
    for reason in ("could not be restored", "no saved history was found"):
        bot = await started(settings, models_dir)
        try:
            _, workspace = await call(http, "GET", f"{bot.url}{API}/workspace")
            _, channel = await call(http, "GET", f"{bot.url}{API}/channels/{CHANNEL}/messages")
        finally:
            await bot.stop()
        reset = workspace["history"]["reset"]
        assert reset.startswith("The channels' history was reset: ") and reason in reset, reset
        assert "The store kept 1 decision (counted on the models page)" in reset and channel["messages"] == []
        (settings.data_dir / HISTORY_FILE).unlink(missing_ok=True)


@pytest.mark.asyncio
async def test_a_version_the_gate_refuses_is_marked_and_promoted_only_when_forced(
    local_bot: OncallBot, http: aiohttp.ClientSession
) -> None:
    registry = local_bot.ml.registry
    active = registry.active_id()
    with pytest.raises(GateRefused) as refusal:
        await asyncio.to_thread(train, REFUSED_CONFIG, registry.root)
    refused = refusal.value.version_id

    deadline = time.monotonic() + 20
    while True:  # the gate checks it in the background, once
        _, summary = await call(http, "GET", f"{local_bot.url}{API}/models")
        gate = next(v for v in summary["versions"] if v["id"] == refused)["gate"]
        if not gate.get("checking") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert gate["passed"] is False and gate["against"] == active
    assert gate["reasons"] == list(refusal.value.gate.reasons)  # what `oncall train` was told
    assert next(v for v in summary["versions"] if v["id"] == active)["gate"] is None

    _, answer = await call(http, "POST", f"{local_bot.url}{API}/models/promote", {"version": refused})
    assert not answer["ok"] and "The promotion gate refuses" in answer["text"]
    assert "trails the active" in answer["text"] and "Promote anyway" in answer["text"]
    assert registry.active_id() == active and local_bot.ml.models.version == active

    body = {"version": refused, "force": True}
    _, answer = await call(http, "POST", f"{local_bot.url}{API}/models/promote", body)
    assert answer["ok"] and f"→ `{refused}`" in answer["text"]
    promotion = registry.get(refused).metadata["promotions"][-1]
    assert promotion["via"] == "playground" and promotion["forced"] is True
    _, summary = await call(http, "GET", f"{local_bot.url}{API}/models")
    shown = next(v for v in summary["versions"] if v["id"] == refused)
    assert shown["serving"] and shown["gate"] is None and shown["forced"] is not None
