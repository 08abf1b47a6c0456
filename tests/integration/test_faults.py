"""Faults injected into real processes: `oncall serve` in a subprocess against the Slack emulator, with a
real SQLite file or a real PostgreSQL server. Slack rate limits, errors, resets and slowness; a locked
SQLite file; a PostgreSQL restart; `kill -9` in the middle of replies. Whatever happens, every alert the
bot acknowledged gets exactly one reply, acknowledgements stay within Slack's 3 seconds, and the ratings
and event claims made meanwhile reach the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from bot.local.emulator import SlackEmulator
from bot.slack.middleware.dedup import claim_key
from tests.conftest import free_port

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.e2e,  # real processes, killed and restarted
    pytest.mark.slow,
]

SECRET, TOKEN = "faults-signing-secret", "xoxb-faults-token"
CHANNEL, PERSON = "C0INCIDENTS", "U0BOB"
ACK_LIMIT = 3.0  # Slack's: an event not acknowledged within it is delivered again


class BotProcess:
    """`oncall serve` in its own process, logging to a file."""

    def __init__(self, emu: SlackEmulator, models: Path, db_url: str, port: int, log: Path) -> None:
        self.emu, self.models, self.db_url, self.port, self.log = emu, models, db_url, port, log
        self.data_dir = log.parent / "data"  # the outbox journal
        self.proc: subprocess.Popen[bytes] | None = None

    async def readyz(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            return await (await http.get(f"http://127.0.0.1:{self.port}/readyz")).json()

    async def start(self) -> None:
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.emu.api_url,
            "ONCALL_LOG_LEVEL": "INFO",
            "ONCALL_DATA_DIR": str(self.data_dir),
        }
        argv = [sys.executable, "-m", "bot.cli", "serve", "--port", str(self.port)]
        argv += ["--model-path", str(self.models), "--db-url", self.db_url]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.proc.poll() is None, f"the bot exited: {self.log.read_text()[-3000:]}"
                with contextlib.suppress(aiohttp.ClientError):
                    if (await http.get(f"http://127.0.0.1:{self.port}/readyz")).status == 200:
                        break
                assert time.monotonic() < deadline, "the bot never got ready"
                await asyncio.sleep(0.1)
        self.emu.bot_url = f"http://127.0.0.1:{self.port}/slack/events"

    async def metrics(self) -> dict[str, float]:
        async with aiohttp.ClientSession() as http:
            text = await (await http.get(f"http://127.0.0.1:{self.port}/metrics")).text()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@asynccontextmanager
async def bot_and_slack(
    models_dir: Path, tmp_path: Path, db_url: str | None = None
) -> AsyncIterator[tuple[SlackEmulator, BotProcess]]:
    async with SlackEmulator(SECRET, TOKEN, ack_timeout=ACK_LIMIT, retry_delays=(0.5, 1.0, 2.0)) as emu:
        bot = BotProcess(
            emu,
            models_dir,
            db_url or f"sqlite:///{tmp_path / 'oncall.db'}",
            free_port(),
            tmp_path / "bot.log",
        )
        await bot.start()
        try:
            yield emu, bot
        finally:
            await emu.settle()
            bot.stop()


# Unrelated alerts: each gets a decision of its own (related ones would be grouped in one thread).
ALERTS = (
    "[FIRING:1] HighErrorRate checkout 5xx at 35% for 10m",
    "Disk usage 97% on db-prod-3 /var/lib/postgresql",
    "TLS certificate for api.example.com expires in 2 days",
    "Kafka consumer lag 120k on orders-events partition 7",
    "Memory 95% on search-indexer-2, OOM kills",
    "DNS resolution failures for payments.internal: SERVFAIL",
    "Stripe API latency p99 8s, card payment timeouts",
    "Deploy v2.14 of cart-service: readiness probe failing",
)


async def post_alerts(emu: SlackEmulator, n: int, first: int = 0) -> list[str]:
    return [(await emu.post_message(PERSON, CHANNEL, ALERTS[first + i]))["ts"] for i in range(n)]


def bot_replies(emu: SlackEmulator, ts: str) -> list[Any]:
    return [m for m in emu.workspace.thread(CHANNEL, ts)[1:] if m.bot_id == emu.workspace.bot.id]


async def answered(emu: SlackEmulator, alerts: list[str], timeout: float) -> tuple[list[str], list[str]]:
    """(lost, doubled) once every alert has a reply (or the time is up), and a moment more for doubles."""
    deadline = time.monotonic() + timeout
    while any(not bot_replies(emu, ts) for ts in alerts) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    lost = [ts for ts in alerts if not bot_replies(emu, ts)]
    doubled = [ts for ts in alerts if len(bot_replies(emu, ts)) > 1]
    return lost, doubled


def people_events(emu: SlackEmulator) -> set[str | None]:
    """What the bot claims in the store for each event (a message by its channel and ts): not for its own
    messages, which it drops first."""
    bot = emu.workspace.bot.id
    return {claim_key(envelope) for envelope in emu.events.values() if envelope["event"].get("bot_id") != bot}


async def written(bot: BotProcess, timeout: float = 20.0) -> None:
    """Wait until every write that waited for the store is written (none given up)."""
    deadline = time.monotonic() + timeout
    while (metrics := await bot.metrics())["oncall_store_writes_pending"] > 0:
        assert time.monotonic() < deadline, "writes still waiting for the store"
        await asyncio.sleep(0.2)
    assert metrics["oncall_store_writes_dropped_total"] == 0


def slow_or_failed_acks(emu: SlackEmulator) -> list[Any]:
    events = [a for a in emu.attempts if a.kind == "event"]
    assert events, "no event was delivered"
    return [a for a in events if a.status != 200 or a.elapsed >= ACK_LIMIT]


SLACK_FAULTS: dict[str, Callable[[SlackEmulator], None]] = {
    # more 429s than slack_sdk retries (5), on every method: the outbox waits Retry-After and tries again
    "429 storm with Retry-After": lambda emu: emu.faults.fail("*", 429, retry_after=1, times=24),
    "503s": lambda emu: emu.faults.fail("chat.postMessage", 503, times=4),
    "500 after Slack posted": lambda emu: emu.faults.fail("chat.postMessage", 500, after=True, times=3),
    "connection resets, before and after posting": lambda emu: (
        emu.faults.reset("chat.postMessage", times=2),
        emu.faults.reset("chat.postMessage", after=True, times=2),
    ),
    "5 s responses": lambda emu: (
        emu.faults.slow("chat.postMessage", 5.0, times=2),
        emu.faults.slow("conversations.info", 5.0, times=1),
    ),
}


@pytest.mark.parametrize("fault", list(SLACK_FAULTS))
async def test_slack_faults_delay_replies_but_never_lose_or_double_them(
    fault: str, models_dir: Path, tmp_path: Path
) -> None:
    async with bot_and_slack(models_dir, tmp_path) as (emu, bot):
        SLACK_FAULTS[fault](emu)
        alerts = await post_alerts(emu, 4)
        lost, doubled = await answered(emu, alerts, timeout=40)
        assert emu.faults.injected, "the fault was never hit"
        assert not lost and not doubled, f"{fault}: lost {lost}, doubled {doubled}"
        assert not slow_or_failed_acks(emu)
        metrics = await bot.metrics()
        assert metrics["oncall_outbox_unanswered"] == 0
        assert not [k for k in metrics if 'outcome="error"' in k], "a listener raised"
        if "after" in fault:  # the post went through: the retry found it in the thread
            assert metrics['oncall_replies_total{kind="found posted"}'] >= 1


async def test_kill_9_mid_reply_then_restart_answers_what_was_acknowledged(
    models_dir: Path, tmp_path: Path
) -> None:
    async with bot_and_slack(models_dir, tmp_path) as (emu, bot):
        emu.faults.slow("chat.postMessage", 3.0, times=50)  # every reply in flight when the bot dies
        alerts = await post_alerts(emu, 4)
        deadline = time.monotonic() + 10
        while len([a for a in emu.attempts if a.kind == "event" and a.status == 200]) < len(alerts):
            assert time.monotonic() < deadline, "events were not acknowledged"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        bot.kill()
        db = sqlite3.connect(tmp_path / "oncall.db")
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == len(alerts)
        await asyncio.sleep(3.5)  # the slowed posts the dead process sent may land now, or never
        emu.faults.clear()
        await bot.start()  # same host and port: it takes its own unanswered alerts back at once
        lost, doubled = await answered(emu, alerts, timeout=20)
        assert not lost and not doubled, f"lost {lost}, doubled {doubled}"
        deadline = time.monotonic() + 10
        while db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]:
            assert time.monotonic() < deadline, "the outbox was never emptied"
            await asyncio.sleep(0.1)
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == len(alerts)
        assert (await bot.metrics())["oncall_outbox_recovered_total"] == len(alerts)


async def test_kill_9_during_a_store_outage_loses_no_acknowledged_alert(
    models_dir: Path, tmp_path: Path
) -> None:
    """While the store cannot take an alert's outbox entry, it is journaled (fsync'd) before the ack: the
    alerts acknowledged during the outage are answered after a `kill -9`, each once."""
    async with bot_and_slack(models_dir, tmp_path) as (emu, bot):
        first = await post_alerts(emu, 1)
        assert await answered(emu, first, timeout=10) == ([], [])
        emu.faults.fail("chat.postMessage", 503, times=10_000)  # no reply may get out before the kill
        locker = sqlite3.connect(tmp_path / "oncall.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # the store is away: nothing reaches the outbox table
        during = await post_alerts(emu, 5, first=1)
        deadline = time.monotonic() + 15
        while len([a for a in emu.attempts if a.kind == "event" and a.status == 200]) < 1 + len(during):
            assert time.monotonic() < deadline, "events were not acknowledged"
            await asyncio.sleep(0.05)
        assert not slow_or_failed_acks(emu)
        [journal] = bot.data_dir.glob("outbox-*.journal")
        assert len(journal.read_bytes().splitlines()) == len(during)
        bot.kill()
        locker.execute("COMMIT")
        locker.close()
        db = sqlite3.connect(tmp_path / "oncall.db")
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0, "the outage let a write through"
        emu.faults.clear()
        await bot.start()  # replays the journal into the outbox, and answers
        lost, doubled = await answered(emu, first + during, timeout=20)
        assert not lost and not doubled, f"lost {lost}, doubled {doubled}"
        deadline = time.monotonic() + 10
        while db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] or journal.exists():
            assert time.monotonic() < deadline, "the outbox or the journal was never emptied"
            await asyncio.sleep(0.1)
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1 + len(during)
        assert (await bot.metrics())["oncall_outbox_recovered_total"] == len(during)


async def test_a_locked_sqlite_file_delays_writes_not_replies(models_dir: Path, tmp_path: Path) -> None:
    async with bot_and_slack(models_dir, tmp_path) as (emu, bot):
        before = await post_alerts(emu, 2)
        assert await answered(emu, before, timeout=10) == ([], [])
        replies = [bot_replies(emu, ts)[0].ts for ts in before]
        locker = sqlite3.connect(tmp_path / "oncall.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # as a long-running script holding the write lock would
        try:
            during = await post_alerts(emu, 3, first=2)
            for reply in replies:
                await emu.add_reaction("U0CAROL", CHANNEL, reply, "+1")
            await emu.redeliver(next(iter(emu.events)))  # a duplicate while the store cannot say
            assert await answered(emu, during, timeout=15) == ([], []), "no reply while the file was locked"
            assert (await bot.metrics())["oncall_store_writes_pending"] > 0
        finally:
            locker.execute("COMMIT")
            locker.close()
        assert not slow_or_failed_acks(emu)
        await emu.settle()
        await written(bot)
        db = sqlite3.connect(tmp_path / "oncall.db")
        assert db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == len(replies)
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == len(before) + len(during)
        claimed = {row[0] for row in db.execute("SELECT event_id FROM handled_events")}
        assert people_events(emu) <= claimed, "event claims made during the lock were lost"
        assert (await bot.metrics())["oncall_store_writes_deferred_total"] > 0
        assert len(bot_replies(emu, before[0])) == 1  # the duplicate was not answered


def pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    path = found[-1] if found else shutil.which("pg_ctl")
    return Path(path).parent if path else None


@contextlib.contextmanager
def postgres_cluster() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A PostgreSQL server of the test's own (it is restarted): (url, stop, start)."""
    bindir = pg_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's server programs are missing in CI: .ci/run installs them")
        pytest.skip("PostgreSQL's server programs (pg_ctl) are not installed")
    root = os.geteuid() == 0
    as_pg = ["runuser", "-u", "postgres", "--"] if root else []  # the server refuses to run as root
    data = Path(tempfile.mkdtemp(prefix="oncall-pg-"))  # outside pytest's 0700 tree: postgres reads it
    if root:
        shutil.chown(data, "postgres")
    port = free_port()

    def run(*argv: str) -> None:
        subprocess.run([*as_pg, *argv], check=True, capture_output=True)

    run(str(bindir / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "--no-sync")
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off"

    def start() -> None:
        run(
            str(bindir / "pg_ctl"), "-w", "-D", str(data / "db"), "-l", str(data / "log"), "-o", opts, "start"
        )

    def stop() -> None:
        run(str(bindir / "pg_ctl"), "-w", "-D", str(data / "db"), "-m", "fast", "stop")

    start()
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", stop, start
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.postgres
async def test_a_postgresql_restart_mid_load_loses_no_rating_and_no_reply(
    models_dir: Path, tmp_path: Path
) -> None:
    with postgres_cluster() as (url, stop_server, start_server):
        async with bot_and_slack(models_dir, tmp_path, db_url=url) as (emu, bot):
            before = await post_alerts(emu, 3)
            assert await answered(emu, before, timeout=10) == ([], [])
            replies = [bot_replies(emu, ts)[0].ts for ts in before]
            await asyncio.to_thread(stop_server)
            during = await post_alerts(emu, 3, first=3)
            for reply in replies:
                await emu.add_reaction("U0CAROL", CHANNEL, reply, "+1")
            assert await answered(emu, during, timeout=15) == ([], []), "no reply while the database was down"
            await asyncio.to_thread(start_server)
            after = await post_alerts(emu, 2, first=6)
            assert await answered(emu, after, timeout=15) == ([], [])
            assert not slow_or_failed_acks(emu)
            await emu.settle()
            await written(bot, timeout=40)
            with psycopg.connect(url) as db:
                assert (db.execute("SELECT COUNT(*) FROM ratings").fetchone() or (0,))[0] == len(replies)
                decisions = (db.execute("SELECT COUNT(*) FROM decisions").fetchone() or (0,))[0]
                claimed = {row[0] for row in db.execute("SELECT event_id FROM handled_events")}
                left = (db.execute("SELECT COUNT(*) FROM outbox").fetchone() or (0,))[0]
            assert decisions == len(before + during + after) and left == 0
            assert people_events(emu) <= claimed, "event claims made while the server was down were lost"
            assert (await bot.metrics())["oncall_store_writes_deferred_total"] > 0


async def test_the_sqlite_file_moved_away_is_noticed_and_never_written_until_it_is_back(
    models_dir: Path, tmp_path: Path
) -> None:
    """`mv oncall.db* elsewhere` while the bot runs: the open connection would keep writing into the moved
    file, and everything written then would be gone at the next start. Instead the store reports itself
    degraded, the writes wait (replies go on), and land once the file is back."""
    path, away = tmp_path / "oncall.db", tmp_path / "away"
    away.mkdir()

    def count(table: str) -> int:
        where = path if path.exists() else away / path.name
        with contextlib.closing(sqlite3.connect(where)) as db:
            return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    async with bot_and_slack(models_dir, tmp_path) as (emu, bot):
        before = await post_alerts(emu, 2)
        assert await answered(emu, before, timeout=10) == ([], [])
        await written(bot)
        replies = [bot_replies(emu, ts)[0].ts for ts in before]
        decisions, claims = count("decisions"), count("handled_events")
        for name in ("oncall.db", "oncall.db-wal", "oncall.db-shm"):
            if (tmp_path / name).exists():
                (tmp_path / name).rename(away / name)
        during = await post_alerts(emu, 2, first=2)
        for reply in replies:
            await emu.add_reaction("U0CAROL", CHANNEL, reply, "+1")
        await emu.redeliver(next(iter(emu.events)))  # an answered alert again: its claim is in the moved file
        assert await answered(emu, during, timeout=15) == ([], []), "no reply while the file was away"
        ready = await bot.readyz()
        assert ready["status"] == "degraded" and "was removed" in ready["store_error"], ready
        metrics = await bot.metrics()
        assert metrics["oncall_store_degraded"] == 1 and metrics["oncall_store_writes_pending"] > 0
        assert "ERROR bot.store.sqlite: the SQLite file" in bot.log.read_text()
        assert (count("decisions"), count("handled_events"), count("ratings")) == (decisions, claims, 0)
        for name in ("oncall.db", "oncall.db-wal", "oncall.db-shm"):
            if (away / name).exists():
                (away / name).rename(tmp_path / name)
        await written(bot)
        assert (await bot.readyz())["store_error"] is None
        assert (await bot.metrics())["oncall_store_degraded"] == 0
        assert count("decisions") == len(before + during) and count("ratings") == len(replies)
        assert count("outbox") == 0
        assert len(bot_replies(emu, before[0])) == 1, "the re-delivered alert was answered again"


async def test_a_replaced_sqlite_file_is_written_by_neither_file(models_dir: Path, tmp_path: Path) -> None:
    """A file put in place of the open one (another inode, e.g. a restore from a backup): the bot writes
    neither into the old file nor into a file it never migrated or vetted; it says so until restarted."""
    path = tmp_path / "oncall.db"
    async with bot_and_slack(models_dir, tmp_path) as (emu, bot):
        first = await post_alerts(emu, 1)
        assert await answered(emu, first, timeout=10) == ([], [])
        await written(bot)
        replacement = tmp_path / "restored.db"
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute(f"VACUUM INTO '{replacement}'")
        for suffix in ("", "-wal", "-shm"):  # the live file and its WAL, moved away together
            if (tmp_path / f"oncall.db{suffix}").exists():
                (tmp_path / f"oncall.db{suffix}").rename(tmp_path / f"old.db{suffix}")
        old = tmp_path / "old.db"
        replacement.rename(path)
        during = await post_alerts(emu, 1, first=1)
        assert await answered(emu, during, timeout=15) == ([], [])
        ready = await bot.readyz()
        assert ready["status"] == "degraded" and "was replaced" in ready["store_error"], ready
        for db_path in (path, old):
            with contextlib.closing(sqlite3.connect(db_path)) as db:
                assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1, db_path
