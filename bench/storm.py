"""An alert storm replayed through `oncall serve` (its own process) and the Slack emulator: --alerts alerts in
--seconds seconds over 50 services from 5 root causes, in the formats of Alertmanager, Grafana, Datadog,
Sentry, CloudWatch, PagerDuty and people, posted to one channel's incoming webhook.

Prints the decision messages posted (target: at most 10), the alerts accounted for in some thread (each is
the first alert of a group, answered with a decision, or a member listed in a group's thread: target all),
and the grouping's BCubed precision and recall against the root causes (target: both at least 0.9).

    python bench/storm.py [--alerts 1000] [--seconds 60] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from e2e import free_port, wait_ready  # bench/ is the script's directory

from bot.local.emulator import SlackEmulator
from bot.local.emulator.storm import bcubed, storm
from training.train import train_builtin

SECRET, TOKEN = "storm-signing-secret", "xoxb-storm-token"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    replayed = storm(args.alerts, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        models, db = Path(tmp) / "models", Path(tmp) / "storm.db"
        train_builtin(models)
        async with SlackEmulator(SECRET, TOKEN) as emu:
            port = free_port()
            env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
                   "SLACK_API_URL": emu.api_url, "ONCALL_LOG_LEVEL": "WARNING"}  # fmt: skip
            cmd = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--model-path", str(models)]
            bot = subprocess.Popen([*cmd, "--db-url", f"sqlite:///{db}"], env=env, stdout=subprocess.DEVNULL)
            try:
                async with aiohttp.ClientSession() as http:
                    await wait_ready(http, port)
                    emu.bot_url = f"http://127.0.0.1:{port}/slack/events"
                    hook = emu.create_webhook("#incidents")
                    alert_ts = []
                    started = time.monotonic()
                    for i, item in enumerate(replayed):
                        delay = started + i * args.seconds / len(replayed) - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        await http.post(hook, json=item.body)
                        alert_ts.append(
                            emu.workspace.top_level(emu.workspace.channel("#incidents").id)[-1].ts
                        )
                await emu.settle()
                await asyncio.sleep(5)  # the last group edits wait UPDATE_DELAY
            finally:
                bot.terminate()
                bot.wait(10)
        with sqlite3.connect(db) as store:
            openers = dict(store.execute("SELECT thread_ts, id FROM alert_groups").fetchall())
            members = dict(store.execute("SELECT alert_ts, group_id FROM group_members").fetchall())
        placed = [openers.get(ts) or members.get(ts) for ts in alert_ts]
        posts = [c for c in emu.calls if c.method == "chat.postMessage" and c.ok]
        decisions = [c for c in posts if "oncall_decision" in str(c.params.get("metadata"))]
        summaries = [c for c in posts if "oncall_group" in str(c.params.get("metadata"))]
        edits = [c for c in emu.calls if c.method == "chat.update" and c.ok]
        clusters = [g or f"none-{i}" for i, g in enumerate(placed)]  # an alert in no group is its own
        precision, recall = bcubed([a.cause for a in replayed], clusters)
        services = len({a.service for a in replayed})
        print(f"{len(replayed)} alerts in {args.seconds:.0f} s, {services} services, 5 root causes")
        print(
            f"decision messages: {len(decisions)} (target <= 10); "
            f"group messages: {len(summaries)}, edits: {len(edits)}"
        )
        print(f"alerts accounted for in a thread: {sum(g is not None for g in placed)} / {len(placed)}")
        print(
            f"grouping vs root causes: BCubed precision {precision:.3f}, recall {recall:.3f} (target >= 0.9)"
        )


if __name__ == "__main__":
    asyncio.run(main())
