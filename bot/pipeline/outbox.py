"""The durable outbox: every alert acknowledged to Slack is answered, once, even across crashes.

An alert is written to the store's outbox before it is worked on and deleted once its reply is posted and
recorded. An answer that fails for a reason that passes (Slack rate limits or errors, a dropped connection,
a locked database) is tried again with backoff, in this process, for as long as MAX_AGE. Each process
holds a lease on its entries and renews it; entries whose lease ran out belong to a replica that died,
and another takes them over. A restarted process takes its own entries back at once (its owner name is
its host and port), so an alert acknowledged just before a ``kill -9`` is answered on restart.

While the store cannot take an entry, it is kept in the local journal (``bot/pipeline/journal.py``, fsync'd,
before the ack when the store is known to be away) and replayed at the next start: a ``kill -9`` during a
database outage loses nothing either.

Whoever answers an entry it did not receive, or retries after an error that may have come after Slack
posted the reply (a 5xx, a reset connection, a timeout), first looks in the alert's thread for a reply
the bot already posted: a reply is never doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass

from bot.pipeline.journal import Journal
from bot.store import OutboxEntry, Store, StoreUnavailable
from bot.store.write_behind import WriteBehind

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0  # a dead replica's alerts are taken over this long after its last renewal
RENEW_EVERY = 10.0  # renew leases and look for abandoned entries this often
MAX_AGE = 3600.0  # an alert still unanswered after an hour is given up (and counted): it is stale
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 30.0


class Retry(Exception):
    """The answer failed for a reason that passes; ``maybe_posted``: Slack may have posted it anyway."""

    def __init__(self, reason: str, *, maybe_posted: bool = False, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_posted = maybe_posted
        self.after = after  # seconds Slack asked us to wait (Retry-After)


@dataclass(slots=True)
class Job:
    entry: OutboxEntry
    attempts: int = 0
    check_thread: bool = False  # look for a reply already posted before posting one


Answer = Callable[[Job], Awaitable[None]]


class Outbox:
    def __init__(
        self, store: Store, writes: WriteBehind, owner: str, answer: Answer, journal: Journal
    ) -> None:
        self.store = store
        self.writes = writes
        self.owner = owner
        self.answer = answer
        self.journal = journal
        self._tasks: set[asyncio.Task[None]] = set()
        self._working: set[tuple[str, str]] = set()
        self._keeper: asyncio.Task[None] | None = None
        self.retries = 0  # answers tried again, since start
        self.recovered = 0  # entries taken over from a previous life or a dead replica
        self.expired = 0  # given up after MAX_AGE

    @property
    def in_flight(self) -> int:
        return len(self._working)

    def start(self) -> None:
        """Take back what this owner left behind (the journal's entries first), then keep leases fresh and
        adopt abandoned entries."""
        for entry in self.journal.replay():  # acknowledged in a previous life while the store was away
            key = (entry.channel, entry.alert_ts)
            self._working.add(key)
            self.recovered += 1
            log.info("outbox: answering %s/%s from the journal", *key)
            self._spawn(self._put_and_attempt(Job(entry, check_thread=True)))
        self._keeper = asyncio.create_task(self._keep())

    async def keep(self, entry: OutboxEntry) -> None:
        """Before the ack, while the store is away: the entry into the journal, on disk."""
        try:
            await self.journal.append(entry)
        except OSError as exc:  # the alert is still answered, from memory: only a crash now would lose it
            log.error("outbox journal %s not written, %s/%s kept in memory only: %s",
                      self.journal.path, entry.channel, entry.alert_ts, exc)  # fmt: skip

    async def submit(self, entry: OutboxEntry) -> None:
        """Record the alert, then answer it (now, and again later if that fails)."""
        key = (entry.channel, entry.alert_ts)
        if key in self._working:
            return
        self._working.add(key)
        await self._put_and_attempt(Job(entry))

    async def _put_and_attempt(self, job: Job) -> None:
        entry = job.entry
        key = (entry.channel, entry.alert_ts)

        async def put() -> None:
            await self.store.outbox_put(entry, self.owner, time.time() + LEASE_SECONDS)
            await self.journal.stored(key)

        if not await self.writes.run("outbox entry", put, timeout=1.0, key=key):
            await self.keep(entry)  # it waits in memory for the store: on disk too, in case we die first
        await self._attempt(job)

    async def _attempt(self, job: Job) -> None:
        entry = job.entry
        key = (entry.channel, entry.alert_ts)
        fields = {"channel": entry.channel, "alert_ts": entry.alert_ts}  # for the JSON log format
        try:
            await self.answer(job)
        except Retry as retry:
            job.attempts += 1
            job.check_thread = job.check_thread or retry.maybe_posted
            if time.time() - entry.received_at > MAX_AGE:
                self.expired += 1
                log.error(
                    "gave up answering %s/%s after %d attempts: %s",
                    *key,
                    job.attempts,
                    retry.reason,
                    extra=fields,
                )
                await self._finish(key)
                return
            delay = retry.after or min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (job.attempts - 1))
            self.retries += 1
            log.warning(
                "answer to %s/%s failed (%s); retrying in %.1f s", *key, retry.reason, delay, extra=fields
            )
            self._later(job, delay)
            return
        except Exception:
            log.exception("answer to %s/%s failed on a bug; it stays in the outbox", *key, extra=fields)
            self._working.discard(key)  # taken over again on restart, where the bug may be fixed
            return
        await self._finish(key)

    def _later(self, job: Job, delay: float) -> None:
        async def again() -> None:
            await asyncio.sleep(delay)
            await self._attempt(job)

        self._spawn(again())

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, key: tuple[str, str]) -> None:
        async def done() -> None:
            await self.store.outbox_done(*key)

        await self.writes.run("outbox done", done, key=key)
        self._working.discard(key)

    async def _keep(self) -> None:
        mine = True  # the first pass also takes this owner's own entries: a restart after a crash
        while True:
            try:
                await self.store.outbox_renew(self.owner, time.time() + LEASE_SECONDS)
                taken = await self.store.outbox_take(self.owner, time.time() + LEASE_SECONDS, mine=mine)
                mine = False
            except StoreUnavailable as exc:
                log.warning("outbox: store unavailable (%s); trying again", exc)
                taken = []
            for entry in taken:
                key = (entry.channel, entry.alert_ts)
                if key in self._working:
                    continue
                self._working.add(key)
                self.recovered += 1
                log.info("outbox: answering %s/%s, acknowledged but left unanswered", *key)
                self._spawn(self._attempt(Job(entry, check_thread=True)))
            await asyncio.sleep(RENEW_EVERY)

    async def stop(self) -> None:
        """Stop answering; what is unanswered stays in the store, released for whoever starts next."""
        tasks = [t for t in (self._keeper, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._working:
            log.warning("stopping with %d alerts unanswered: they stay in the outbox", len(self._working))
            with contextlib.suppress(StoreUnavailable):  # another replica may take them now
                await self.store.outbox_renew(self.owner, 0.0)
