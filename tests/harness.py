"""The real bot in this process against the local Slack emulator, for the tests that drive it end to end:
the credentials the two share, an Alertmanager post, and waiting for what the bot does after its ack.
The ``running`` fixture (tests/conftest.py) starts both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.local.emulator import SlackEmulator
from bot.runner import OncallBot
from bot.settings import Settings
from bot.store import DecisionRecord
from engine.ml_service import MLService

SECRET = "e2e-signing-secret"
TOKEN = "xoxb-e2e-token"
ADMIN, PERSON = "U0ALICE", "U0BOB"
ALERTMANAGER = {
    "attachments": [
        {
            "color": "danger",
            "title": "[FIRING:2] HighErrorRate payments (critical)",
            "text": "*Alert:* HighErrorRate - critical\n"
            "*Description:* error rate 38% on payments-api for 12m\n*Details:*\n"
            "• *alertname:* `HighErrorRate`\n• *service:* `payments`\n• *severity:* `critical`",
            "fallback": "[FIRING:2] HighErrorRate payments (critical)",
        }
    ]
}


async def eventually(read: Callable[[], Awaitable[Any]], expected: Any, timeout: float = 5.0) -> Any:
    """``read()`` once it returns ``expected`` (the bot acks an event before it handles it), else its last."""
    deadline = time.monotonic() + timeout
    while (got := await read()) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return got


class Running:
    def __init__(self, emulator: SlackEmulator, bot: OncallBot, models: Path) -> None:
        self.emulator = emulator
        self.bot = bot
        self.models = models

    async def decision_for(self, alert: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """The bot's reply in the alert's thread."""
        channel, ts = alert["channel"], alert["ts"]
        return await self.emulator.wait_for_bot_message(channel, thread_ts=ts, timeout=timeout)

    async def stored(self, reply: dict[str, Any]) -> DecisionRecord:
        """The decision record of a reply: stored once Slack has answered the post, a moment after."""
        store = self.bot.parts.store
        deadline = time.monotonic() + 5
        while (record := await store.decision(reply["channel"], reply["ts"])) is None:
            assert time.monotonic() < deadline, "the decision was never stored"
            await asyncio.sleep(0.02)
        return record

    def bot_posts(self) -> list[Any]:
        return [c for c in self.emulator.calls if c.method == "chat.postMessage" and c.ok]


async def start_bot(
    emulator: SlackEmulator,
    models_dir: Path,
    db_url: str,
    data_dir: Path,
    *,
    ml: MLService | None = None,
    wait: bool = True,
) -> OncallBot:
    """The bot in this process, signed for ``emulator`` (made with SECRET and TOKEN); ``wait``: until
    its models are loaded."""
    settings = Settings(
        bot_token=TOKEN,
        signing_secret=SECRET,
        api_url=emulator.api_url,
        port=0,
        model_path=models_dir,
        admins=frozenset({ADMIN}),
        db_url=db_url,
        data_dir=data_dir,
    )
    bot = OncallBot(settings, ml=ml or MLService(models_dir, auto_train=False))
    await bot.start()
    if wait:
        await bot.wait_ready(timeout=30)
    return bot


def as_webhook(event: dict[str, Any]) -> dict[str, Any]:
    """What the app behind an event posts to an incoming webhook (its name as the webhook username)."""
    body = {k: event[k] for k in ("text", "attachments", "blocks") if k in event}
    name = event.get("username") or (event.get("bot_profile") or {}).get("name")
    return body | ({"username": name} if name else {})


@asynccontextmanager
async def socket_mode_bot(models_dir: Path, tmp_path: Path) -> AsyncIterator[tuple[SlackEmulator, OncallBot]]:
    """The bot in Socket Mode (SLACK_APP_TOKEN set) against the emulator, ready."""
    app_token = "xapp-e2e-socket"
    async with SlackEmulator(SECRET, TOKEN, app_token=app_token) as emu:
        settings = Settings(
            bot_token=TOKEN,
            app_token=app_token,
            api_url=emu.api_url,
            port=0,
            model_path=models_dir,
            db_url=f"sqlite:///{tmp_path / 'oncall.db'}",
            data_dir=tmp_path / "data",
        )
        bot = OncallBot(settings, ml=MLService(models_dir, auto_train=False))
        await bot.start()
        try:
            await bot.wait_ready(timeout=30)
            yield emu, bot
        finally:
            await emu.settle()
            await bot.stop()
