"""The outbox on a real SQLite store and journal: an acknowledged alert stays recorded until it is answered,
a failed answer is tried again (looking for a reply Slack may have posted), a bug or a crash leaves it for
the next start, and one too old is given up. The answer is the test's: the outbox is what is under test."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from bot.pipeline.journal import Journal
from bot.pipeline.outbox import MAX_AGE, Job, Outbox, Retry
from bot.settings import sqlite_path
from bot.store import OutboxEntry, Store, open_store
from bot.store.write_behind import WriteBehind

pytestmark = pytest.mark.asyncio

OWNER = "host:3000"


def _entry(age: float = 0.0) -> OutboxEntry:
    event = {"text": "disk 97% full on db-prod-3", "ts": "5.0", "channel": "C1"}
    return OutboxEntry("C1", "5.0", event, "U0BOT", "B0BOT", time.time() - age)


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[Store, str]]:
    url = f"sqlite:///{tmp_path / 'oncall.db'}"
    opened = await open_store(url)
    yield opened, url
    await opened.close()


def _waiting(url: str) -> int:
    with sqlite3.connect(sqlite_path(url)) as db:
        return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def _outbox(store: Store, tmp_path: Path, answer: Callable[[Job], Awaitable[None]]) -> Outbox:
    return Outbox(store, WriteBehind(), OWNER, answer, Journal(tmp_path / "outbox.journal"))


async def _settled(outbox: Outbox) -> None:
    for _ in range(200):
        if not outbox.in_flight:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{outbox.in_flight} alerts still in flight")


async def test_a_failed_answer_is_retried_and_the_entry_kept_until_answered(
    store: tuple[Store, str], tmp_path: Path
) -> None:
    db, url = store
    calls: list[tuple[int, bool, int]] = []

    async def answer(job: Job) -> None:
        calls.append((job.attempts, job.check_thread, _waiting(url)))
        if len(calls) == 1:  # a 503 after which Slack may have posted the reply anyway
            raise Retry("slack 503", maybe_posted=True, after=0.01)

    outbox = _outbox(db, tmp_path, answer)
    await outbox.submit(_entry())
    await _settled(outbox)
    # recorded before each attempt; the retry first looks for a reply already posted
    assert calls == [(0, False, 1), (1, True, 1)]
    assert outbox.retries == 1 and _waiting(url) == 0
    await outbox.stop()


async def test_the_same_alert_submitted_twice_is_answered_once(
    store: tuple[Store, str], tmp_path: Path
) -> None:
    db, url = store
    release, answered = asyncio.Event(), []

    async def answer(job: Job) -> None:
        answered.append(job.entry.alert_ts)
        await release.wait()

    outbox = _outbox(db, tmp_path, answer)
    first = asyncio.create_task(outbox.submit(_entry()))
    await asyncio.sleep(0.05)
    await outbox.submit(_entry())  # Slack's retry of the same event while the first is being answered
    release.set()
    await first
    await _settled(outbox)
    assert answered == ["5.0"] and _waiting(url) == 0
    await outbox.stop()


async def test_a_bug_leaves_the_alert_for_the_next_start_which_checks_the_thread(
    store: tuple[Store, str], tmp_path: Path
) -> None:
    db, url = store

    async def broken(job: Job) -> None:
        raise ValueError("a bug in the answer")

    crashed = _outbox(db, tmp_path, broken)
    await crashed.submit(_entry())
    assert crashed.in_flight == 0 and _waiting(url) == 1  # not retried here, not lost either

    jobs: list[Job] = []

    async def answer(job: Job) -> None:
        jobs.append(job)

    restarted = _outbox(db, tmp_path, answer)  # the same owner: its own entries are taken back at once
    restarted.start()
    for _ in range(200):
        if jobs and not restarted.in_flight:
            break
        await asyncio.sleep(0.01)
    assert [(j.entry.alert_ts, j.check_thread) for j in jobs] == [("5.0", True)]
    assert restarted.recovered == 1 and _waiting(url) == 0
    await restarted.stop()


async def test_an_alert_unanswered_past_max_age_is_given_up(store: tuple[Store, str], tmp_path: Path) -> None:
    db, url = store
    attempts = 0

    async def answer(job: Job) -> None:
        nonlocal attempts
        attempts += 1
        raise Retry("slack 429", after=0.01)

    outbox = _outbox(db, tmp_path, answer)
    await outbox.submit(_entry(age=MAX_AGE + 1))
    await _settled(outbox)
    assert attempts == 1 and outbox.expired == 1 and outbox.retries == 0 and _waiting(url) == 0
    await outbox.stop()
