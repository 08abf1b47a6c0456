"""`oncall serve`: the bot's lifecycle. Opens the store, starts the HTTP server (and Socket Mode, or the
local Slack emulator when there are no Slack tokens), loads the models in the background, and stops
cleanly. The HTTP server answers /healthz at once; /readyz turns ready when the models are loaded."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import socket
import sys
import time
from dataclasses import replace

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.local.emulator import SlackEmulator
from bot.local.emulator.history import FILE_NAME as HISTORY_FILE
from bot.local.emulator.history import History
from bot.local.playground import add_playground
from bot.local.playground.routes import is_loopback
from bot.pipeline.grouping import Group
from bot.pipeline.journal import Journal
from bot.pipeline.runbooks import load_runbooks
from bot.settings import Settings, check_paths
from bot.slack.app import build_app
from bot.slack.identity import SlackIdentity
from bot.slack.posting import web_client
from bot.slack.server import EVENTS_PATH, build_ops_app, build_web_app
from bot.store import StoreUnavailable, open_store
from bot.wiring import Components, wire
from engine.decision import AIDecisionEngine
from engine.ml_service import MLService

log = logging.getLogger(__name__)
SWITCH_INTERVAL = 0.0005  # seconds
LOAD_RETRY_FIRST, LOAD_RETRY_MAX = 5.0, 60.0  # seconds between tries when the models fail to load at all


class OncallBot:
    """The whole bot in one process; ``start()`` returns once it listens (models may still be loading)."""

    def __init__(self, settings: Settings, ml: MLService | None = None) -> None:
        self.settings = settings
        engine = settings.runtime.engine  # the ML core's settings, checked by bot.settings, passed in here
        self.ml = ml or MLService(
            settings.model_path, auto_train=engine.auto_train, keep_versions=engine.keep_versions
        )
        self.emulator: SlackEmulator | None = None
        self.history: History | None = None  # local mode: the emulated channels, kept across restarts
        self.parts: Components | None = None
        self.identity: SlackIdentity | None = None
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._ops_runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._loading: asyncio.Task[None] | None = None
        self._following: asyncio.Task[None] | None = None
        self._journal: Journal | None = None
        self.port: int | None = None
        self.metrics_port: int | None = None  # the ONCALL_METRICS_ADDR listener's, when there is one

    @property
    def url(self) -> str:
        """Where this machine reaches the bot: loopback when it listens on every interface (a container's
        ``--host 0.0.0.0``), which is also where the built-in emulator may deliver."""
        host = self.settings.host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{self.port}"

    @property
    def events_url(self) -> str:
        return self.url + EVENTS_PATH

    async def start(self) -> None:
        """Raises ConfigError, before anything listens, for a directory the bot could not write."""
        settings = self.settings
        check_paths(settings, self.ml.model_path, train_models=self.ml.auto_train)
        runbooks = load_runbooks(settings.runbooks)
        if settings.local:
            self.emulator = SlackEmulator(
                signing_secret=secrets.token_hex(16), bot_token=f"xoxb-local-{secrets.token_hex(8)}"
            )
            # What the channels showed before a restart, kept beside the store (the decisions it holds
            # point at these messages).
            self.history = History(self.emulator.workspace, settings.data_dir / HISTORY_FILE)
            await asyncio.to_thread(self.history.load)
            self.history.start()
            await self.emulator.start()
            settings = replace(
                settings,
                bot_token=self.emulator.web_api.bot_token,
                signing_secret=self.emulator.delivery.signing_secret,
                api_url=self.emulator.api_url,
            )
            self.settings = settings
        store = await open_store(settings.db_url)
        self._http = http = aiohttp.ClientSession()  # one connection pool for every call to Slack
        token = settings.bot_token or ""
        self.identity = SlackIdentity(web_client(token, settings.api_url, session=http))
        engine = AIDecisionEngine(self.ml, uncertain_below=settings.runtime.engine.uncertain_below)
        poster = web_client(token, settings.api_url, ambiguous_retries=False, session=http)
        name = replica_name(settings.port)
        self._journal = Journal(settings.data_dir / f"outbox-{name.replace(':', '-')}.journal")
        self.parts = parts = wire(
            settings, engine, store, runbooks, self.identity, poster, name, self._journal
        )
        bolt = build_app(parts, web_client(None, settings.api_url, session=http), self.identity)
        main_app = build_web_app(bolt, parts, with_metrics=settings.metrics_addr is None)
        if self.emulator is not None:
            if is_loopback(settings.host):
                add_playground(main_app, self.emulator, parts.controls, parts.readiness, http, self.history)
            else:  # its buttons change the models: only for whoever sits at this machine
                log.warning("the playground is off: --host %s is not a loopback address", settings.host)
        self._runner = web.AppRunner(main_app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, settings.host, settings.port).start()
        self.port = self._runner.addresses[0][1]
        if settings.metrics_addr is not None:
            ops_app = build_ops_app(parts)
            self._ops_runner = web.AppRunner(ops_app, access_log=None, handle_signals=False)
            await self._ops_runner.setup()
            await web.TCPSite(self._ops_runner, *settings.metrics_addr).start()
            self.metrics_port = self._ops_runner.addresses[0][1]
        if self.emulator is not None:
            self.emulator.bot_url = self.events_url
        if settings.socket_mode:
            self._socket = AsyncSocketModeHandler(bolt, settings.app_token)
            await self._socket.connect_async()
        self._loading = asyncio.create_task(self._load_models())
        parts.similar.start()  # similar past incidents, read from the store in the background
        parts.outbox.start()  # alerts left unanswered by this replica's previous life, first

    async def _load_models(self) -> None:
        assert self.parts is not None and self.identity is not None
        readiness = self.parts.readiness
        delay = LOAD_RETRY_FIRST
        while True:  # whatever fails, /readyz says why and the bot tries again: it never hangs silently
            try:
                await self.ml.initialize()  # trains the built-in model if the directory is empty
                break
            # MLService serves the last good version when one fails to load; what is raised here (the
            # built-in training failing, say on a full disk) leaves nothing to serve.
            except Exception as exc:
                readiness.failed(f"{type(exc).__name__}: {exc}")
                log.error("models did not load (trying again in %.0f s): %s", delay, readiness.load_error)
                log.debug("the failed load", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(LOAD_RETRY_MAX, delay * 2)
        readiness.loaded()
        await self.identity.fetch_until_known()  # then no event waits on auth.test before its ack
        await self._restore_groups()
        readiness.set()
        log.info("models ready: %s", self.ml.models.version)
        # Every replica follows the shared model directory's active pointer: a promote or rollback
        # anywhere reaches all of them within seconds, without a restart.
        self._following = asyncio.create_task(
            self.ml.follow_active(self.settings.runtime.engine.follow_seconds)
        )

    async def _restore_groups(self) -> None:
        """The groups still open, as the store keeps them: a restart does not split a storm in two."""
        assert self.parts is not None
        parts = self.parts
        try:
            rows = await parts.store.open_groups(since=time.time() - parts.settings.grouping.quiet)
        except StoreUnavailable as exc:
            log.warning("alert groups not restored, the store is unavailable: %s", exc)
            return
        except Exception:  # grouping is a convenience: the bot must still answer alerts
            log.exception("alert groups not restored")
            return
        for group_id, channel, thread_ts, state, last_seen in rows:
            parts.grouper.restore(Group.from_state(group_id, channel, thread_ts, state, last_seen))

    async def wait_ready(self, timeout: float | None = None) -> None:
        assert self._loading is not None, "start() first"
        await asyncio.wait_for(asyncio.shield(self._loading), timeout)

    async def stop(self) -> None:
        tasks = [t for t in (self._loading, self._following) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._socket is not None:
            await self._socket.close_async()
        for runner in (self._runner, self._ops_runner):
            if runner is not None:
                await runner.cleanup()
        if self.parts is not None:
            await self.parts.similar.stop()
            await self.parts.outbox.stop()
            await self.parts.writes.flush(timeout=5.0)  # the store may be back by now
            await self.parts.writes.stop()
            await self.parts.store.close()
        if self._journal is not None:
            self._journal.close()
        if self._http is not None:
            await self._http.close()
        if self.emulator is not None:
            await self.emulator.stop()
        if self.history is not None:
            await self.history.close()  # after the emulator: whatever reached it last is saved too


def replica_name(port: int) -> str:
    """Who owns this process's outbox entries: its host and port, the same after a restart (so it takes
    back at once what it left unanswered); a random name on a random port."""
    return f"{socket.gethostname()}:{port or secrets.token_hex(4)}"


def local_instructions(bot: OncallBot) -> str:
    """What to do next in local mode: post an alert into the emulated channel and see the reply."""
    assert bot.emulator is not None
    hook = bot.emulator.create_webhook("#incidents")
    emu = bot.emulator.url
    playground = [f"Open the playground: {bot.url}/"] if is_loopback(bot.settings.host) else []
    return "\n".join(
        [
            f"oncall bot listening on {bot.url} (local mode: no Slack tokens, so a built-in Slack emulator)",
            *playground,
            f"  emulated Slack: {emu}   health: {bot.url}/healthz   ready: {bot.url}/readyz",
            "Or post an alert into #incidents like a real alert sender would:",
            f"  curl -s -X POST -H 'Content-Type: application/json' {hook} \\",
            '    -d \'{"text": "[FIRING:1] HighErrorRate checkout 5xx at 35% for 10m (critical)"}\'',
            "Then read the bot's reply in the alert's thread:",
            f"  curl -s {emu}/_emulator/channels/incidents/history",
        ]
    )


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    # The store and the similar-incident search run on threads that need the GIL for a moment per
    # statement; with Python's default 5 ms switch interval a busy event loop makes each of them wait
    # that long, which caps the store at a few hundred statements a second under load.
    sys.setswitchinterval(SWITCH_INTERVAL)
    bot = OncallBot(settings)
    await bot.start()
    if bot.emulator is not None:
        print(local_instructions(bot), flush=True)
    else:
        mode = "Socket Mode" if settings.socket_mode else f"HTTP, Slack requests at {bot.events_url}"
        print(f"oncall bot listening on {bot.url} ({mode})", flush=True)
    if bot.metrics_port is not None:
        print(f"metrics at http://{settings.metrics_addr[0]}:{bot.metrics_port}/metrics", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await bot.stop()
