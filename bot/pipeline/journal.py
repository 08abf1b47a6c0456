"""The outbox journal: acknowledged means kept, even while the store is away.

An alert's outbox entry normally goes into the store. While the store cannot take it (SQLite locked or its
file gone, PostgreSQL down), the entry waits in memory, and a crash then would lose an alert Slack was told
was received. So such an entry is first appended to a local file, one JSON line each, fsync'd, before the
event is acknowledged; at start-up the journal is replayed into the outbox, and once the store has every
journaled entry the file is removed. Appends that arrive while one is being written share its fsync.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from bot.store import OutboxEntry

log = logging.getLogger(__name__)
Key = tuple[str, str]


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="oncall-journal")  # one writer, in order
        self._unstored: set[Key] = set()  # journaled, not in the store yet
        self._batch: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.appended = 0  # entries journaled since start

    def holds(self, key: Key) -> bool:
        return key in self._unstored

    async def append(self, entry: OutboxEntry) -> None:
        """Returns once the entry is on disk (raises OSError when it cannot be written)."""
        key = (entry.channel, entry.alert_ts)
        if key in self._unstored:
            return
        self._unstored.add(key)
        line = json.dumps(asdict(entry)).encode() + b"\n"  # ASCII: a lone surrogate is escaped too
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append((line, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        try:
            await written
        except OSError:
            self._unstored.discard(key)
            raise
        self.appended += 1

    async def _write_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while self._batch:
            batch, self._batch = self._batch, []
            try:
                await loop.run_in_executor(self._pool, self._write, b"".join(line for line, _ in batch))
            except OSError as exc:
                for _, written in batch:
                    written.set_exception(exc)
            else:
                for _, written in batch:
                    written.set_result(None)

    def _write(self, data: bytes) -> None:
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # alert text: owner only
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the file's name must survive a power cut too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    async def stored(self, key: Key) -> None:
        """The store has this entry now; once it has every journaled one, the journal goes."""
        if key not in self._unstored:
            return
        self._unstored.discard(key)
        if not self._unstored:  # after any write already queued, before any queued later
            await asyncio.get_running_loop().run_in_executor(self._pool, self._remove)

    def _remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def replay(self) -> list[OutboxEntry]:
        """The entries a previous life journaled and the store may not have (each counts as unstored
        until the store takes it again). A line cut short by a crash is skipped."""
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        entries: dict[Key, OutboxEntry] = {}
        for number, line in enumerate(lines, 1):
            try:
                entry = OutboxEntry(**json.loads(line))
            except (ValueError, TypeError) as exc:
                log.warning("outbox journal %s:%d unreadable, skipped: %s", self.path, number, exc)
                continue
            entries[(entry.channel, entry.alert_ts)] = entry
        self._unstored.update(entries)
        return list(entries.values())

    def close(self) -> None:
        self._pool.shutdown(wait=True)
