"""Three `oncall serve` processes behind a round-robin proxy, sharing one model directory and one store:
100 alerts a second for a minute while the active version changes ten times and is rolled back once.
No reply is lost or doubled, and every reply carries a version that was active around its alert."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.emulator import SlackEmulator
from engine.registry import ModelRegistry
from tests.conftest import free_port

SECRET, TOKEN = "replica-secret", "xoxb-replica-token"
RATE, SECONDS, REPLICAS, CHANNELS = 100, 60, 3, 240
FOLLOW_SECONDS = 0.5  # how often each replica checks the model pointer
VERSION_IN_REPLY = re.compile(r"^model (\S+)")  # the context line: "model <version> · why: ..."


async def round_robin_proxy(targets: list[str]) -> tuple[web.AppRunner, str]:
    """A load balancer: each request goes to the next replica, headers and body as they came."""
    turn = itertools.cycle(targets)
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower().startswith(("x-slack", "content-type"))
        }
        async with session.post(next(turn) + request.path, data=body, headers=headers) as answer:
            return web.Response(status=answer.status, body=await answer.read(), headers={
                "Content-Type": answer.headers.get("Content-Type", "text/plain")})  # fmt: skip

    app = web.Application()
    app.router.add_post("/slack/events", forward)
    app.on_cleanup.append(lambda _: session.close())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/slack/events"


def test_three_replicas_answer_every_alert_once_through_version_changes(
    models_dir: Path, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    if os.environ.get("ONCALL_TEST_POSTGRES_URL"):
        db_url = os.environ["ONCALL_TEST_POSTGRES_URL"]  # one PostgreSQL, as replicas share in production
    registry = ModelRegistry(models_dir)
    versions = [registry.active_id(), registry.history()[-1]]

    async def run() -> None:
        async with SlackEmulator(SECRET, TOKEN) as emu:
            channels = [emu.workspace.add_channel(f"inc-replica-{i:03d}").id for i in range(CHANNELS)]
            ports = [free_port() for _ in range(REPLICAS)]
            env = {
                **os.environ,
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": emu.api_url,
                "ML_FOLLOW_SECONDS": str(FOLLOW_SECONDS),
                "ONCALL_LOG_LEVEL": "WARNING",
                "ONCALL_GROUP_QUIET": "0",  # every alert answered on its own: this test counts replies
            }
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bot.cli",
                        "serve",
                        "--port",
                        str(port),
                        "--model-path",
                        str(models_dir),
                        "--db-url",
                        db_url,
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
                for port in ports
            ]
            proxy, proxy_url = await round_robin_proxy([f"http://127.0.0.1:{p}" for p in ports])
            try:
                async with aiohttp.ClientSession() as http:
                    for port in ports:
                        deadline = time.monotonic() + 60
                        while True:
                            try:
                                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status == 200:
                                    break
                            except aiohttp.ClientError:
                                pass
                            assert time.monotonic() < deadline, f"replica on {port} never got ready"
                            await asyncio.sleep(0.1)
                emu.bot_url = proxy_url
                active_since = [(time.monotonic(), registry.active_id())]

                async def change_versions() -> None:
                    for i in range(10):  # as `oncall models promote` on any machine would
                        await asyncio.sleep(SECONDS / 12)
                        registry.promote(versions[i % 2 == 0])
                        active_since.append((time.monotonic(), registry.active_id()))
                    await asyncio.sleep(SECONDS / 12)
                    registry.rollback()
                    active_since.append((time.monotonic(), registry.active_id()))

                changer = asyncio.create_task(change_versions())
                posted: list[tuple[str, str, float]] = []
                start = time.monotonic()
                for i in range(RATE * SECONDS):
                    delay = start + i / RATE - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    message = await emu.post_message(
                        "U0BOB", channels[i % CHANNELS], f"disk {i % 100}% on db-{i}"
                    )
                    posted.append((message["channel"], message["ts"], time.monotonic()))
                await changer
                deadline = time.monotonic() + 30
                while True:
                    replies = [c for c in emu.calls if c.method == "chat.postMessage" and c.ok]
                    if len(replies) >= len(posted) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)
                await emu.settle()
            finally:
                await proxy.cleanup()
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(10)

        by_alert: dict[tuple[str, str], list] = {}
        for call in (c for c in emu.calls if c.method == "chat.postMessage" and c.ok):
            by_alert.setdefault((call.params["channel"], call.params["thread_ts"]), []).append(call)
        missing = [ts for c, ts, _ in posted if (c, ts) not in by_alert]
        doubled = [key for key, calls in by_alert.items() if len(calls) > 1]
        assert not missing, f"{len(missing)} alerts got no reply"
        assert not doubled, f"{len(doubled)} alerts got two replies"
        failed = [a for a in emu.attempts if a.kind == "event" and a.status != 200]
        assert not failed, f"{len(failed)} event deliveries failed"
        assert len(active_since) == 12
        at = {ts: t for _, ts, t in posted}
        for (_, ts), [call] in by_alert.items():
            blocks = call.params.get("blocks")
            blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
            contexts = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
            version = next(filter(None, map(VERSION_IN_REPLY.search, contexts)), None)  # similar ones above
            assert version is not None, contexts
            # active at some moment between (the alert - the replicas' follow lag) and the reply
            window = (at[ts] - 2 * FOLLOW_SECONDS - 1.0, call.at)
            live = {
                v for i, (since, v) in enumerate(active_since)
                if since <= window[1] and (i + 1 == len(active_since) or active_since[i + 1][0] >= window[0])
            }  # fmt: skip
            assert version.group(1) in live, f"{ts} answered by {version.group(1)}, active then: {live}"

    asyncio.run(run())


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
