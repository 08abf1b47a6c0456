"""Writes that survive a database outage: a rating, a decision record or an event claim that cannot be
written now (SQLite locked by another process, PostgreSQL restarting) waits in memory, in order, and is
written when the database answers again. The bot keeps answering alerts meanwhile.

Every job is safe to run twice (each store write is one idempotent statement, see ``base``), so a job
that failed half-way, or timed out while its statement still ran, is simply run again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from bot.store.base import StoreUnavailable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
MAX_PENDING = 100_000  # beyond this the oldest job is dropped, loudly: memory is finite
FIRST_BACKOFF, MAX_BACKOFF = 0.25, 5.0  # seconds between attempts while the database stays away


class WriteBehind:
    """Runs store jobs now, or later in arrival order once the database is back."""

    def __init__(self) -> None:
        self._queue: deque[tuple[str, Job, object]] = deque()
        self._keys: Counter[object] = Counter()  # the keys of the waiting jobs
        self._drainer: asyncio.Task[None] | None = None
        self._down = False  # the last attempt found the store unavailable
        self.deferred = 0  # jobs that had to wait, since start
        self.dropped = 0  # jobs given up: the queue overflowed, or the job failed otherwise

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def waiting(self) -> bool:
        """The store is away or behind: a write now would wait in memory."""
        return self._down or bool(self._queue)

    async def run(self, what: str, job: Job, timeout: float | None = None, key: object = None) -> bool:
        """Run ``job`` now (True), or queue it when the store is unavailable or slower than ``timeout``
        (False). While the store is known to be down every job queues, in order; otherwise a job queues
        only behind a waiting job with the same ``key`` (an alert's outbox entry, a person's vote on a
        message): a withdrawn vote never overtakes its vote, and one slow write holds no other back."""
        if not self._down and (key is None or key not in self._keys):
            try:
                await asyncio.wait_for(job(), timeout)
                return True
            except StoreUnavailable as exc:
                self._down = True
                log.warning("store unavailable for %s (%s); writes wait until it is back", what, exc)
            except TimeoutError:
                log.warning("store slower than %.1f s for %s; it is written in the background", timeout, what)
        self._defer(what, job, key)
        return False

    def _defer(self, what: str, job: Job, key: object) -> None:
        if len(self._queue) >= MAX_PENDING:
            self._forget()
            self.dropped += 1
            log.error("store unavailable too long: dropped a pending write (%d pending)", MAX_PENDING)
        self._queue.append((what, job, key))
        self._keys[key] += 1
        self.deferred += 1
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())

    def _forget(self) -> None:
        _, _, key = self._queue.popleft()
        self._keys[key] -= 1
        if not self._keys[key]:
            del self._keys[key]

    async def _drain(self) -> None:
        backoff = FIRST_BACKOFF
        while self._queue:
            what, job, _ = self._queue[0]
            try:
                await job()
            except StoreUnavailable:
                self._down = True
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            except Exception:  # a job that can never succeed must not block the others
                self.dropped += 1
                log.exception("pending %s failed for good", what)
            self._forget()
            backoff = FIRST_BACKOFF
        self._down = False
        log.info("store back: every pending write is written")

    async def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the pending jobs (at shutdown); True when none is left."""
        if self._drainer is not None and not self._drainer.done():
            await asyncio.wait({self._drainer}, timeout=timeout)
        return not self._queue

    async def stop(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        if self._queue:
            log.error("stopping with %d writes still pending: the store never came back", len(self._queue))
