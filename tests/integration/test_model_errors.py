"""A model version that does not load (its serving artifact corrupt): the bot never goes quiet. At start-up
it does not hang at 503 "loading models" with no reason; while it runs, the follower survives and still
picks up the next promotion; `/readyz`, `/metrics`, the log (at ERROR) and the Slack command that asked all
say why. The real bot in this process, against the emulator over HTTP."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.local.emulator import SlackEmulator
from bot.runner import LOAD_RETRY_FIRST, OncallBot
from engine.ml_service import MLService
from engine.registry import SERVING_FILE, ModelRegistry
from tests.conftest import small_config
from tests.harness import ADMIN, SECRET, TOKEN, start_bot
from training.train import train

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]  # e2e: the real bot against the Slack emulator


def broken_copy(registry: ModelRegistry, source: str) -> str:
    """A copy of version ``source`` whose serving artifact has one byte flipped."""
    target = registry.versions_dir / "zz-broken"
    shutil.copytree(registry.versions_dir / source, target)
    artifact = target / SERVING_FILE
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    return target.name


@asynccontextmanager
async def bot(
    emu: SlackEmulator, models: Path, tmp_path: Path, ml: MLService | None = None
) -> AsyncIterator[OncallBot]:
    """The bot in this process, started but maybe not ready (that is what is under test)."""
    db_url = f"sqlite:///{tmp_path / 'oncall.db'}"
    running = await start_bot(emu, models, db_url, tmp_path / "data", ml=ml, wait=False)
    emu.bot_url = running.events_url
    try:
        yield running
    finally:
        await emu.settle()
        await running.stop()


async def readyz_once(
    http: aiohttp.ClientSession, url: str, done: Any, timeout: float = 15
) -> dict[str, Any]:
    """/readyz (with its HTTP status) once ``done(body)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(url + "/readyz") as answer:
            body = await answer.json() | {"http": answer.status}
        if done(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


async def metrics(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """/metrics by series, and ``load failures``: every stage's failed model loads added up."""
    text = await (await http.get(url + "/metrics")).text()
    values = {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines() if line[:1] != "#")}
    failures = [v for k, v in values.items() if k.startswith("oncall_model_load_failures_total{")]
    return values | {"load failures": sum(failures)}


async def test_a_bad_active_version_at_start_up_is_reported_not_waited_on(
    models_dir: Path, registry_two_versions, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)
    bad = broken_copy(registry, first.version)
    registry.promote(bad)
    caplog.set_level(logging.ERROR)
    async with (
        SlackEmulator(SECRET, TOKEN) as emu,
        aiohttp.ClientSession() as http,
        bot(emu, models_dir, tmp_path) as running,
    ):
        ready = await readyz_once(http, running.url, lambda body: body["last_error"])
        assert ready["status"] != "loading models" and ready["last_error"], ready
        assert ready["active_version"] == bad and ready["status"] == "degraded", ready
        assert ready["http"] == 200 and ready["serving_version"] == second.version, "the newest good one"
        alert = await emu.post_message("U0BOB", "#incidents", "checkout 5xx at 40% for 10m")
        reply = await emu.wait_for_bot_message("#incidents", thread_ts=alert["ts"], timeout=10)
        assert f"model {second.version}" in json.dumps(reply)
        values = await metrics(http, running.url)
        assert values["oncall_model_degraded"] == 1 and values["load failures"] >= 1
    assert [r for r in caplog.records if r.levelno == logging.ERROR], "the failed load was not logged"


async def test_a_failed_reload_keeps_the_follower_and_answers_the_command_that_asked(
    models_dir: Path, registry_two_versions, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)
    bad = broken_copy(registry, first.version)
    async with (
        SlackEmulator(SECRET, TOKEN) as emu,
        aiohttp.ClientSession() as http,
        bot(emu, models_dir, tmp_path) as running,
    ):
        await running.wait_ready(timeout=30)
        caplog.set_level(logging.ERROR)
        registry.promote(bad)  # as `oncall models promote` would, from another process
        ready = await readyz_once(http, running.url, lambda body: body["last_error"])
        assert ready["status"] == "degraded" and ready["active_version"] == bad, ready
        assert ready["serving_version"] == second.version
        for command in ("reload", f"promote {bad}"):
            answer = await emu.run_command(ADMIN, "#incidents", "/oncall-models", command, timeout=10)
            assert answer.text.startswith(":x:") and len(answer.text) > 20, (command, answer.text)
        values = await metrics(http, running.url)
        assert values["oncall_model_degraded"] == 1 and values["load failures"] >= 3
        assert [r for r in caplog.records if r.levelno == logging.ERROR], "the failed reload was not logged"
        registry.promote(first.version)  # the follower is still alive: it serves the next promotion
        ready = await readyz_once(http, running.url, lambda body: body["serving_version"] == first.version)
        assert (ready["serving_version"], ready["status"], ready["last_error"]) == (first.version, "ok", None)
        values = await metrics(http, running.url)
        assert values["oncall_model_degraded"] == 0


async def test_no_model_set_at_all_is_failed_with_the_reason_and_tried_again(tmp_path: Path) -> None:
    """An empty model directory and the built-in training failing (the disk full, the first time): /readyz
    says 503 ``failed`` and why, not "loading models"; start-up tries again and then serves."""
    models = tmp_path / "models"
    tries: list[float] = []

    def trainer(path: Path) -> str:
        tries.append(time.monotonic())
        if len(tries) == 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path / "versions"))
        return train(small_config(samples=400), path).version

    ml = MLService(models, trainer=trainer, auto_train=True)
    async with (
        SlackEmulator(SECRET, TOKEN) as emu,
        aiohttp.ClientSession() as http,
        bot(emu, models, tmp_path, ml=ml) as running,
    ):
        failed = await readyz_once(http, running.url, lambda body: body["last_error"])
        assert (failed["http"], failed["ready"], failed["status"]) == (503, False, "failed"), failed
        assert "No space left on device" in failed["last_error"]
        assert (await metrics(http, running.url))['oncall_model_load_failures_total{stage="startup"}'] == 1
        ready = await readyz_once(http, running.url, lambda body: body["ready"], timeout=60)
        assert (ready["http"], ready["status"], ready["last_error"]) == (200, "ok", None), ready
        assert len(tries) == 2 and tries[1] - tries[0] >= LOAD_RETRY_FIRST


async def test_a_command_that_raises_answers_with_the_reason(
    models_dir: Path, registry_two_versions, tmp_path: Path
) -> None:
    """A kept version whose metadata.json no report foresaw (``metrics`` a number) made `/oncall-models
    history` raise, and the person got no answer at all."""
    _, first, _ = registry_two_versions
    registry = ModelRegistry(models_dir)
    odd = registry.versions_dir / "zz-odd-metadata"
    shutil.copytree(registry.versions_dir / first.version, odd)
    meta = json.loads((odd / "metadata.json").read_text())
    (odd / "metadata.json").write_text(json.dumps(meta | {"metrics": 5}))
    async with SlackEmulator(SECRET, TOKEN) as emu, bot(emu, models_dir, tmp_path) as running:
        await running.wait_ready(timeout=30)
        answer = await emu.run_command(ADMIN, "#incidents", "/oncall-models", "history", timeout=10)
        assert answer.text.startswith(":x: `/oncall-models history` failed: TypeError"), answer.text
