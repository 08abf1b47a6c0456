"""`oncall serve` as a real subprocess against the Slack emulator: broken model versions (it keeps serving
the last good one, or the labeled fallback, and /readyz and `/oncall-models status` say which and why), and
secrets that must never reach a log line, an error, /metrics or `oncall doctor`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.local.emulator import SlackEmulator
from bot.ops import redact
from bot.runner import OncallBot
from bot.settings import Settings
from engine.fallback import FALLBACK_VERSION
from engine.ml_service import MLService
from engine.registry import SERVING_FILE, ModelRegistry, dump_artifact, sha256_file
from tests.integration.test_replicas import free_port

pytestmark = pytest.mark.e2e  # `oncall serve` as a subprocess against the emulator

REPO = Path(__file__).resolve().parents[2]
TOKEN = "xoxb-1111-2222-sEcReTbOtToKeN"
APP_TOKEN = "xapp-1-A111-3333-sEcReTaPpToKeN"
SIGNING = "sEcReTsIgNiNg0123456789abcdef"
DB_PASSWORD = "sEcReTdBpAsS"
SECRETS = (TOKEN, APP_TOKEN, SIGNING, DB_PASSWORD, "sEcReT")
PERSON = "U0BOB"


@dataclass
class BotProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    async def readyz(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(self.url + "/readyz") as answer:
            return await answer.json()


@asynccontextmanager
async def bot_process(
    emu: SlackEmulator, models: Path, tmp_path: Path, **env: str
) -> AsyncIterator[BotProcess]:
    """`oncall serve` on a free port, talking to ``emu``; its stdout and stderr go to a log file."""
    port = free_port()
    log = tmp_path / f"bot-{port}.log"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ONCALL_", "ML_"))},
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING,
        "SLACK_API_URL": emu.api_url,
        "ONCALL_DB_URL": f"sqlite:///{tmp_path / 'oncall.db'}",
        "ONCALL_DATA_DIR": str(tmp_path / "data"),
        "ML_AUTO_TRAIN": "0",
        "ML_FOLLOW_SECONDS": "0.1",
        **env,
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--model-path", str(models)],
            cwd=REPO,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    bot = BotProcess(proc, f"http://127.0.0.1:{port}", log)
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if (await http.get(bot.url + "/readyz")).status == 200:
                        break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "the bot never got ready:\n" + log.read_text()
                await asyncio.sleep(0.05)
        if "SLACK_APP_TOKEN" not in env:
            emu.bot_url = bot.url + "/slack/events"
        yield bot
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 20)


async def reply_to(emu: SlackEmulator, text: str, channel: str = "#incidents") -> str:
    """Post an alert into a channel; the context line of the bot's answer in its thread."""
    alert = await emu.post_message(PERSON, channel, text)
    reply = await emu.wait_for_bot_message(alert["channel"], thread_ts=alert["ts"], timeout=10)
    return json.dumps(reply)


async def models_status(emu: SlackEmulator) -> str:
    answer = await emu.run_command(PERSON, "#incidents", "/oncall-models", "status", timeout=10)
    return answer.text


def break_copy(registry: ModelRegistry, source: str, fault: str) -> str:
    """A copy of version ``source`` broken the way ``fault`` says; its id."""
    target = registry.versions_dir / f"zz-{fault}"
    shutil.copytree(registry.versions_dir / source, target)
    meta_path = target / "metadata.json"
    meta = json.loads(meta_path.read_text())
    serving = target / SERVING_FILE  # what serves: the joblib files beside it are never read
    if fault == "corrupt":
        data = bytearray(serving.read_bytes())
        data[len(data) // 2] ^= 0xFF
        serving.write_bytes(bytes(data))
    elif fault == "truncated":
        serving.write_bytes(serving.read_bytes()[: serving.stat().st_size // 2])
    elif fault == "foreign":  # a pickle, its checksum left as recorded (valid-looking, wrong)
        serving.write_bytes(dump_artifact({"vocabulary_": {"hello": 0}}))
    elif fault == "foreign-resigned":  # a pickle with a matching checksum: never unpickled, refused
        serving.write_bytes(dump_artifact({"vocabulary_": {"hello": 0}}))
        meta["artifacts"][SERVING_FILE]["sha256"] = sha256_file(serving)
    elif fault == "saved-before-serving-artifacts":  # only pickles: refused, with how to convert it
        serving.unlink()
        del meta["artifacts"][SERVING_FILE]
    meta_path.write_text(json.dumps(meta))
    return target.name


FAULTS = {
    "corrupt": "sha256",
    "truncated": "sha256",
    "foreign": "sha256",
    "foreign-resigned": "serving.npz is unusable",
    "saved-before-serving-artifacts": "--trust-pickles",
}


@pytest.mark.asyncio
async def test_broken_versions_never_serve_and_readyz_and_status_say_why(
    models_dir: Path, registry_two_versions, tmp_path: Path
) -> None:
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)
    async with (
        SlackEmulator(SIGNING, TOKEN) as emu,
        aiohttp.ClientSession() as http,
    ):
        async with bot_process(emu, models_dir, tmp_path) as bot:
            ready = await bot.readyz(http)
            assert ready == {
                "ready": True,
                "serving_version": second.version,
                "active_version": second.version,
                "fallback": False,
                "status": "ok",
                "last_error": None,
                "store_error": None,
            }
            for fault, why in FAULTS.items():
                bad = break_copy(registry, first.version, fault)
                registry.promote(bad)  # as `oncall models promote` would, from another process
                deadline = time.monotonic() + 10
                while bad not in str((ready := await bot.readyz(http))["last_error"]):
                    assert time.monotonic() < deadline, f"{fault}: the bot never tried {bad}: {ready}"
                    await asyncio.sleep(0.05)
                assert ready["serving_version"] == second.version and ready["active_version"] == bad
                assert ready["status"] == "degraded" and not ready["fallback"] and why in ready["last_error"]
                incidents = emu.workspace.add_channel(f"inc-{fault.replace(' ', '-')}").id  # no group joined
                reply = await reply_to(emu, f"{fault}: checkout 5xx at 40%", incidents)
                assert f"model {second.version}" in reply
                status = await models_status(emu)
                assert f"*Serving:* `{second.version}` (active: `{bad}`, status degraded" in status
                assert why in status
        # A restart with the pointer on a broken version: the newest version that loads serves.
        async with bot_process(emu, models_dir, tmp_path) as bot:
            ready = await bot.readyz(http)
            assert ready["serving_version"] == second.version and ready["status"] == "degraded"
            assert "oncall models convert" in ready["last_error"]
        # Nothing loadable at all, auto-training off: the labeled rule-based fallback.
        empty = tmp_path / "empty"
        empty.mkdir()
        async with bot_process(emu, empty, tmp_path) as bot:
            ready = await bot.readyz(http)
            assert ready["fallback"] and ready["serving_version"] == FALLBACK_VERSION
            assert ready["status"] == "fallback" and "oncall train" in ready["last_error"]
            reply = await reply_to(emu, "database is down for all users service:payments")
            assert "Rule-based fallback" in reply and f"model {FALLBACK_VERSION}" in reply
            status = await models_status(emu)
            assert f"*Serving:* `{FALLBACK_VERSION}`" in status and "status fallback" in status


def oncall(*args: str | Path, env: dict[str, str], timeout: float = 60) -> str:
    """Run `oncall` with ``env`` at DEBUG; everything it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *map(str, args)],
        cwd=REPO,
        env={**os.environ, "ONCALL_LOG_LEVEL": "DEBUG", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return f"$ oncall {args} -> {result.returncode}\n{result.stdout}{result.stderr}"


@pytest.mark.asyncio
async def test_no_secret_reaches_a_log_an_error_an_endpoint_or_the_doctor(
    registry_two_versions, tmp_path: Path
) -> None:
    models = registry_two_versions[0]
    debug = {"ONCALL_LOG_LEVEL": "DEBUG"}
    seen: list[str] = []
    # An unreachable PostgreSQL with a password (it takes its connect timeout): runs beside the rest.
    unreachable = asyncio.create_task(
        asyncio.to_thread(
            oncall,
            "serve",
            "--port",
            str(free_port()),
            "--model-path",
            models,
            env={
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING,
                "ONCALL_DB_URL": f"postgresql://oncall:{DB_PASSWORD}@127.0.0.1:{free_port()}/oncall",
            },
        )
    )
    async with SlackEmulator(SIGNING, TOKEN) as emu, aiohttp.ClientSession() as http:
        async with bot_process(emu, models, tmp_path, **debug) as bot:
            seen.append(await reply_to(emu, "checkout 5xx at 40% for 10m"))
            forged = await emu.deliver_raw({"type": "event_callback"}, signature="v0=" + "0" * 64)
            assert forged.status == 401
            seen.append(forged.body.decode())
            emu.faults.fail("chat.postMessage", 500, times=3)
            await emu.post_message(PERSON, "#incidents", "payments 5xx at 60%: the post fails")
            emu.faults.fail("users.info", 500, times=2)
            refused = await emu.run_command(PERSON, "#incidents", "/oncall-models", "reload", timeout=10)
            assert "only on-call admins" in refused.text
            seen.append(refused.text)
            for path in ("/metrics", "/readyz", "/healthz", "/.env", "/slack/events/../config"):
                async with http.get(bot.url + path) as answer:
                    seen.append(f"{path} {answer.status} {dict(answer.headers)} {await answer.text()}")
            await emu.settle()
        async with (
            SlackEmulator(SIGNING, TOKEN, app_token=APP_TOKEN) as socket_emu,
            bot_process(socket_emu, models, tmp_path, SLACK_APP_TOKEN=APP_TOKEN, **debug),
        ):
            seen.append(await reply_to(socket_emu, "redis evictions on cache-3 (Socket Mode)"))
        seen.append(bot.log.read_text())
    secret_env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_SIGNING_SECRET": SIGNING}
    seen.append(oncall("doctor", "--model-path", models, env=secret_env))
    for bad in (
        {"SLACK_BOT_TOKEN": "xoxp-9-sEcReTuSeRtOkEn"},  # a user token where a bot token belongs
        {"SLACK_APP_TOKEN": APP_TOKEN},  # Socket Mode without a bot token
        {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SIGNING, "SLACK_API_URL": f"ftp://{TOKEN}"},
        {**secret_env, "ONCALL_DB_URL": f"mysql://oncall:{DB_PASSWORD}@db/oncall"},
        {**secret_env, "ONCALL_DB_URL": f"postgresql://oncall:{DB_PASSWORD}@db:port/oncall"},
    ):
        output = oncall("serve", "--model-path", models, env=bad)
        assert "-> 2" in output and "error:" in output, output
        seen.append(output)
    failed = await unreachable
    last = failed.rstrip().splitlines()[-1]  # its traceback is logged at DEBUG, the verdict is one line
    assert "-> 1" in failed and last.startswith("error: the bot stopped: PoolTimeout"), failed
    seen.append(failed)
    everything = "\n".join(seen)
    assert "DEBUG slack_sdk" in everything and "DEBUG slack_bolt" in everything, "DEBUG logs were captured"

    for secret in SECRETS:
        leaks = [line for line in everything.splitlines() if secret in line]
        assert not leaks, f"{secret!r} leaked:\n" + "\n".join(leaks[:5])


def test_the_log_filter_masks_secrets_in_messages_and_tracebacks() -> None:
    """Defense in depth: slack_sdk did not log a token at DEBUG above, but any library may."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redact.RedactSecrets([SIGNING, DB_PASSWORD]))
    logger = logging.getLogger("slack_sdk.web.async_base_client")
    logger.addHandler(handler)
    try:
        logger.warning("headers: %s", {"Authorization": f"Bearer {TOKEN}"})
        logger.warning("socket %s, secret %s", APP_TOKEN, SIGNING)
        try:
            raise ConnectionError(f"postgresql://oncall:{DB_PASSWORD}@db:5432/oncall refused")
        except ConnectionError:
            logger.exception("store")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Bearer [redacted]" in text and "socket [redacted], secret [redacted]" in text
    assert "ConnectionError: postgresql://[redacted]@db:5432/oncall refused" in text
    assert not [s for s in SECRETS if s in text], text


@asynccontextmanager
async def bot_in_process(
    emu: SlackEmulator, models: Path, tmp_path: Path, **settings: Any
) -> AsyncIterator[OncallBot]:
    """The whole bot in this process (no ONCALL_ADMINS: admins are whoever Slack says is one)."""
    config = Settings(
        bot_token=TOKEN,
        signing_secret=SIGNING,
        api_url=emu.api_url,
        port=0,
        model_path=models,
        db_url=f"sqlite:///{tmp_path / 'inproc.db'}",
        data_dir=tmp_path / "data",
        **settings,
    )
    bot = OncallBot(config, ml=MLService(models, auto_train=False))
    await bot.start()
    try:
        await bot.wait_ready(timeout=30)
        if not config.socket_mode:
            emu.bot_url = bot.events_url
        yield bot
    finally:
        await emu.settle()
        await bot.stop()


BARE = {404: "404: Not Found", 405: "405: Method Not Allowed"}


@pytest.mark.asyncio
async def test_only_the_documented_endpoints_answer_and_metrics_can_move_to_their_own_listener(
    registry_two_versions, tmp_path: Path
) -> None:
    models = registry_two_versions[0]
    probes = [
        ("GET", "/slack/events", 405),
        ("PUT", "/slack/events", 405),
        ("POST", "/healthz", 405),
        ("DELETE", "/readyz", 405),
        ("GET", "/metrics", 404),  # moved to the metrics listener
        ("GET", "/", 404),
        ("GET", "/admin", 404),
        ("GET", "/.env", 404),
        ("GET", "/slack/events/x", 404),
        ("POST", "/slack/commands", 404),
        ("GET", "/_emulator/workspace", 404),
        ("GET", "/static/../../etc/passwd", 404),
    ]
    async with SlackEmulator(SIGNING, TOKEN) as emu, aiohttp.ClientSession() as http:
        async with bot_in_process(emu, models, tmp_path, metrics_addr=("127.0.0.1", 0)) as bot:
            ops = f"http://127.0.0.1:{bot.metrics_port}"
            for method, path, status in probes:
                async with http.request(method, bot.url + path) as answer:
                    body = await answer.text()
                    assert (answer.status, body) == (status, BARE[status]), (method, path)
                    assert "Server" not in answer.headers, "the server software is nobody's business"
            for path in ("/healthz", "/readyz"):
                assert (await http.get(bot.url + path)).status == 200
            for path in ("/metrics", "/healthz", "/readyz"):
                async with http.get(ops + path) as answer:
                    assert answer.status == 200 and "Server" not in answer.headers
            assert "oncall_model_reloads_total" in await (await http.get(ops + "/metrics")).text()
            assert (await http.get(ops + "/slack/events")).status == 404
            signed = await emu.deliver_raw({"type": "url_verification", "challenge": "c"})
            assert signed.status == 200
        async with bot_in_process(emu, models, tmp_path) as bot:  # no separate listener: /metrics here
            assert (await http.get(bot.url + "/metrics")).status == 200
    async with (
        SlackEmulator(SIGNING, TOKEN, app_token=APP_TOKEN) as socket_emu,
        aiohttp.ClientSession() as http,
        bot_in_process(socket_emu, models, tmp_path, app_token=APP_TOKEN) as bot,
        http.post(bot.url + "/slack/events", data=b"{}") as answer,  # Socket Mode: no such path
    ):
        assert (answer.status, await answer.text()) == (404, BARE[404])


@pytest.mark.asyncio
async def test_every_admin_command_checks_the_user_on_every_call(
    models_dir: Path, registry_two_versions, tmp_path: Path
) -> None:
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)
    admin = "U0ALICE"
    commands = [
        "reload",
        "rollback",
        f"shadow {second.version}",
        f"canary {second.version} 10%",
        f"promote {second.version}",
        "end",
    ]
    async with SlackEmulator(SIGNING, TOKEN) as emu, bot_in_process(emu, models_dir, tmp_path):
        alice = emu.workspace.users[admin]
        for text in commands:
            alice.is_admin = True
            allowed = await emu.run_command(admin, "#incidents", "/oncall-models", text, timeout=10)
            assert "Sorry" not in allowed.text and ":x:" not in allowed.text, (text, allowed.text)
            alice.is_admin = False  # demoted in Slack between two calls
            before = (registry.active_id(), registry.trial())
            refused = await emu.run_command(admin, "#incidents", "/oncall-models", text, timeout=10)
            assert "only on-call admins" in refused.text, (text, refused.text)
            assert (registry.active_id(), registry.trial()) == before, f"{text} acted for a non-admin"
        lookups = [c for c in emu.calls if c.method == "users.info"]
        assert len(lookups) == 2 * len(commands), "users.info is asked on every call, never cached"
    assert registry.active_id() == second.version and registry.trial() is None
    assert first.version in registry.history()
