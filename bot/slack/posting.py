"""Posting to Slack without tripping its limits: a retrying Web API client and per-channel pacing.

Slack allows about one message per second per channel, with short bursts; above that it answers 429.
slack_sdk's retry handlers already wait out a 429's Retry-After and retry 5xx and dropped connections;
pacing keeps a storm in one channel from hitting the limit in the first place, in arrival order.
Reactions are limited per workspace, not per channel (reactions.add is Tier 3: 50 a minute, with bursts):
they are paced under the one key REACTIONS.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

SLACK_API_URL = "https://slack.com/api/"
BURST = 3  # messages a channel may take at once
PER_SECOND = 1.0  # then this many a second
MAX_CHANNELS = 10_000  # pacing state kept for this many channels (least recently used dropped)
REACTIONS = (
    "reactions.add"  # the pacing key of the bot's reactions, in every channel (no channel ID has a dot)
)
REACTION_BURST, REACTION_PER_SECOND = 20, 50 / 60


def web_client(
    token: str | None,
    api_url: str | None = None,
    timeout: float = 10.0,
    *,
    ambiguous_retries: bool = True,
    session: aiohttp.ClientSession | None = None,
) -> AsyncWebClient:
    """A Web API client that retries what Slack asks to be retried. Without ``ambiguous_retries`` it
    retries only 429s (Slack did nothing): a 5xx or a dropped connection may come after Slack posted, so
    the outbox, which looks in the thread first, retries those posts itself. Clients sharing a
    ``session`` reuse its connections (without one, each call opens a connection of its own)."""
    handlers: list[Any] = [AsyncRateLimitErrorRetryHandler(max_retry_count=5)]
    if ambiguous_retries:
        handlers += [
            AsyncServerErrorRetryHandler(max_retry_count=4),
            AsyncConnectionErrorRetryHandler(max_retry_count=4),
        ]
    return AsyncWebClient(token=token, base_url=api_url or SLACK_API_URL, timeout=int(timeout),
                          retry_handlers=handlers, session=session)  # fmt: skip


class _Bucket:
    __slots__ = ("burst", "lock", "per_second", "queued", "tokens", "updated")

    def __init__(self, burst: int, per_second: float) -> None:
        self.lock = asyncio.Lock()  # FIFO: posts leave in the order they arrived
        self.queued = 0  # turns asked for and not yet begun
        self.burst = burst
        self.per_second = per_second
        self.tokens = float(burst)
        self.updated = time.monotonic()


class ChannelPacer:
    """A token bucket per channel: BURST posts at once, then PER_SECOND; a key in ``limits`` (REACTIONS by
    default) has its own (burst, per second)."""

    def __init__(
        self,
        burst: int = BURST,
        per_second: float = PER_SECOND,
        limits: dict[str, tuple[int, float]] | None = None,
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self.limits = {REACTIONS: (REACTION_BURST, REACTION_PER_SECOND)} if limits is None else limits
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, channel: str) -> _Bucket:
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = _Bucket(
                *self.limits.get(channel, (self.burst, self.per_second))
            )
            if len(self._buckets) > MAX_CHANNELS:
                oldest, old = next(iter(self._buckets.items()))
                if not old.lock.locked():
                    del self._buckets[oldest]
        self._buckets.move_to_end(channel)
        return bucket

    def delay(self, channel: str) -> float:
        """About how long a turn asked for now would wait, in seconds: the turns queued ahead of it, less
        what the bucket holds."""
        bucket = self._buckets.get(channel)
        if bucket is None:
            return 0.0
        held = min(bucket.burst, bucket.tokens + (time.monotonic() - bucket.updated) * bucket.per_second)
        return max(0.0, (bucket.queued + 1 - held) / bucket.per_second)

    @asynccontextmanager
    async def turn(self, channel: str) -> AsyncIterator[None]:
        """Wait for the channel's turn; the post happens inside the block, one at a time per channel."""
        bucket = self._bucket(channel)
        bucket.queued += 1
        try:
            await bucket.lock.acquire()
        finally:  # cancelled while queued, too
            bucket.queued -= 1
        try:
            now = time.monotonic()
            bucket.tokens = min(bucket.burst, bucket.tokens + (now - bucket.updated) * bucket.per_second)
            bucket.updated = now
            if bucket.tokens < 1.0:
                await asyncio.sleep((1.0 - bucket.tokens) / bucket.per_second)
                bucket.tokens = 1.0
                bucket.updated = time.monotonic()
            bucket.tokens -= 1.0
            yield
        finally:
            bucket.lock.release()
