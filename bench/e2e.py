"""End to end: `oncall serve` as its own process, driven through the local Slack emulator over HTTP.

For each rate (events/s, open loop, for --seconds each) people post alerts spread over --channels incident
channels (Slack paces a channel to about one message a second, so real load spreads too). The emulator
delivers each message event to the bot, signed, and records when the bot's chat.postMessage arrives.
Prints, per rate: event acknowledged (p50/p99), event POST to reply arrival (p50/p99), replies lost or
doubled, the share of decisions posted without looking up similar incidents (the bot was overloaded),
the bot's CPU time per alert; then the bot's RSS after --rss-alerts alerts in all, against its RSS after
the first 1,000.

    python bench/e2e.py [--rates 20,100,200] [--seconds 30] [--channels 400] [--rss-alerts 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bot.local.emulator import SlackEmulator
from training.synthetic import generate_incidents
from training.train import train_builtin

SECRET, TOKEN = "bench-signing-secret", "xoxb-bench-token"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(http: aiohttp.ClientSession, port: int, timeout: float = 60.0) -> None:
    """Until the bot on ``port`` says it is ready (its models loaded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (await http.get(f"http://127.0.0.1:{port}/readyz")).status == 200:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the bot on port {port} was not ready within {timeout:.0f} s")


async def similar_skipped(http: aiohttp.ClientSession, port: int) -> int:
    """Decisions the bot posted without looking up similar incidents, since it started (its /metrics)."""
    text = await (await http.get(f"http://127.0.0.1:{port}/metrics")).text()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("oncall_similar_skipped_total{")
    )


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process used so far: its cost per alert, whatever else runs beside it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Load:
    def __init__(self, emu: SlackEmulator, channels: list[str]) -> None:
        self.emu = emu
        self.channels = channels
        self.texts = [r.text.replace(" service:", " on ") for r in generate_incidents(2000, seed=99)]
        self.sent = 0

    async def run(self, rate: float, seconds: float) -> list[tuple[str, str, float]]:
        """Post rate * seconds alerts at a steady pace; (channel, ts, posted at) of each."""
        posted: list[tuple[str, str, float]] = []
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            channel = self.channels[self.sent % len(self.channels)]
            message = await self.emu.post_message("U0BOB", channel, self.texts[self.sent % len(self.texts)])
            posted.append((message["channel"], message["ts"], time.monotonic()))
            self.sent += 1
        return posted

    async def settle(self, posted: list[tuple[str, str, float]], timeout: float = 60.0) -> None:
        """Wait until every alert has its reply (or timeout)."""
        wanted = {(c, ts) for c, ts, _ in posted}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replied = {(c.params.get("channel"), c.params.get("thread_ts")) for c in self._replies()}
            if wanted <= replied:
                return
            await asyncio.sleep(0.2)

    def _replies(self) -> list:
        return [c for c in self.emu.calls if c.method == "chat.postMessage" and c.ok]

    def report(self, posted: list[tuple[str, str, float]]) -> dict[str, float]:
        ts_of = {ts for _, ts, _ in posted}
        events = {}
        for eid, env in self.emu.events.items():
            if env["event"].get("ts") in ts_of and env["event"].get("type") == "message":
                events[env["event"]["ts"]] = eid
        first_attempt = {a.event_id: a for a in self.emu.attempts if a.kind == "event" and a.retry_num == 0}
        replies: dict[str, list[float]] = {}
        for call in self._replies():
            replies.setdefault(str(call.params.get("thread_ts")), []).append(call.at)
        acks, latencies, lost, doubled = [], [], 0, 0
        for _, ts, _ in posted:
            attempt = first_attempt.get(events.get(ts, ""))
            if attempt is None:
                lost += 1
                continue
            acks.append(attempt.elapsed)
            arrivals = replies.get(ts, [])
            if not arrivals:
                lost += 1
            else:
                doubled += len(arrivals) > 1
                latencies.append(min(arrivals) - attempt.started)
        return {
            "ack_p50": percentile(acks, 0.5) * 1e3,
            "ack_p99": percentile(acks, 0.99) * 1e3,
            "p50": percentile(latencies, 0.5) * 1e3,
            "p99": percentile(latencies, 0.99) * 1e3,
            "lost": lost,
            "doubled": doubled,
            "retries": sum(1 for a in self.emu.attempts if a.retry_num > 0),
        }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="20,100,200")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--channels", type=int, default=400)
    parser.add_argument("--rss-alerts", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        train_builtin(models)
        async with SlackEmulator(SECRET, TOKEN) as emu:
            channels = [emu.workspace.add_channel(f"inc-bench-{i:04d}").id for i in range(args.channels)]
            port = free_port()
            env = {
                **os.environ,
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": emu.api_url,
                "ONCALL_LOG_LEVEL": "WARNING",
                "ONCALL_GROUP_QUIET": "0",  # grouping off: every alert's own reply is what is timed
            }
            cmd = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--model-path", str(models)]
            cmd += ["--db-url", f"sqlite:///{tmp}/bench.db"]
            bot = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
            try:
                emu.bot_url = f"http://127.0.0.1:{port}/slack/events"
                async with aiohttp.ClientSession() as http:
                    await wait_ready(http, port)
                load = Load(emu, channels)
                await load.settle(await load.run(50, 2))  # warm-up: caches, first auth.test
                print(
                    f"{'events/s':>8} {'ack p50':>9} {'ack p99':>9} {'reply p50':>10} {'reply p99':>10} "
                    f"{'lost':>5} {'doubled':>7} {'no similar':>10} {'bot CPU/alert':>13}"
                )
                async with aiohttp.ClientSession() as http:
                    for rate in (float(r) for r in args.rates.split(",")):
                        skipped, cpu = await similar_skipped(http, port), cpu_seconds(bot.pid)
                        posted = await load.run(rate, args.seconds)
                        await load.settle(posted)
                        r = load.report(posted)
                        share = (await similar_skipped(http, port) - skipped) / len(posted)
                        cpu = (cpu_seconds(bot.pid) - cpu) / len(posted)
                        print(
                            f"{rate:>8.0f} {r['ack_p50']:>7.1f}ms {r['ack_p99']:>7.1f}ms {r['p50']:>8.1f}ms "
                            f"{r['p99']:>8.1f}ms {r['lost']:>5} {r['doubled']:>7} {share:>10.0%} "
                            f"{cpu * 1e3:>11.2f}ms"
                        )
                rss_start = None
                while load.sent < args.rss_alerts:  # 200 alerts/s, measuring at 1,000 and at the end
                    if rss_start is None and load.sent >= 1000:
                        rss_start = rss_mb(bot.pid)
                    goal = 1000 if load.sent < 1000 else args.rss_alerts
                    await load.settle(await load.run(200, min(1000, goal - load.sent) / 200))
                rss_end = rss_mb(bot.pid)
                print(
                    f"bot RSS: {rss_start or float('nan'):.0f} MB after 1,000 alerts, {rss_end:.0f} MB after "
                    f"{load.sent:,} (growth {rss_end - (rss_start or rss_end):+.0f} MB)"
                )
            finally:
                bot.terminate()
                bot.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
