"""`python -m bot.local.emulator`: the emulator alone on 127.0.0.1, for curl, Alertmanager or a bot run by
hand."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from bot.local.emulator.server import SlackEmulator


async def _serve(args: argparse.Namespace) -> None:
    async with SlackEmulator(args.signing_secret, args.bot_token, args.bot_url, port=args.port) as emu:
        target = args.bot_url or "nobody (no --bot-url)"
        print(f"Slack emulator on {emu.url} (Web API {emu.api_url}), delivering to {target}")
        for channel in ("#incidents", "#alerts-prod"):
            print(f"incoming webhook for {channel}: {emu.create_webhook(channel)}")
        await asyncio.Event().wait()  # until interrupted


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.local.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=3100)
    parser.add_argument("--bot-url", default=os.environ.get("SLACK_BOT_URL"), help="where events are posted")
    parser.add_argument("--signing-secret", default=os.environ.get("SLACK_SIGNING_SECRET", "emulator-secret"))
    parser.add_argument("--bot-token", default=os.environ.get("SLACK_BOT_TOKEN", "xoxb-emulator"))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
