"""The feedback store in one SQLite file (WAL), behind a single worker thread: the event loop never waits
on the disk, and one connection per process serialises its writes. Other processes on the same file wait
for the write lock (busy_timeout), then give up with StoreUnavailable: the caller retries later rather than
stall everything queued behind the lock.

An open connection keeps writing into its file even after the file is moved away or replaced (``mv
oncall.db* elsewhere``): everything written then would be gone at the next start. So before each statement
the file at the path must still be the one opened (same device and inode, one stat: a few microseconds);
otherwise the store is unavailable, and says why in ``problem``, until that file is back (or the bot is
restarted on the new one). Writes wait meanwhile, in order, as for a lock."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bot.store.base import Store, StoreUnavailable
from bot.store.migrations import MIGRATIONS, SCHEMA_MIGRATIONS

T = TypeVar("T")
log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 2000  # wait this long for another process's write lock


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="oncall-store")
        self._db: sqlite3.Connection | None = None
        self._opened: tuple[int, int] | None = None  # (st_dev, st_ino) of the file the connection holds

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _open(self) -> None:
        await self._run(self._connect)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    async def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._run(self._unavailable_on_error, lambda: self.db.execute(sql, params).rowcount)

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._run(self._unavailable_on_error, lambda: self.db.execute(sql, params).fetchall())

    def _unavailable_on_error(self, statement: Callable[[], T]) -> T:
        """Locked, busy, the disk failing, or the file gone: a state that passes, not a bug in the
        statement."""
        self._check_file()
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite {self.path}: {exc}") from exc

    def _check_file(self) -> None:
        """StoreUnavailable unless the path still names the file the connection writes into."""
        try:
            st = os.stat(self.path)
            now = (st.st_dev, st.st_ino)
        except OSError:
            now = None
        if now == self._opened:
            if self.problem is not None:
                log.info("the SQLite file %s is back: writing to it again", self.path)
                self.problem = None
            return
        problem = (
            f"the SQLite file {self.path} was {'removed' if now is None else 'replaced'} while open: "
            "writes wait until that file is back, or restart the bot to use the file at the path"
        )
        if self.problem is None:
            log.error("%s", problem)
        self.problem = problem
        raise StoreUnavailable(problem)

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)  # autocommit
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            _switch_to_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
            db.execute("PRAGMA foreign_keys=ON")
            _migrate(db)
            st = os.stat(self.path)
        except BaseException:
            db.close()
            raise
        self._db = db
        self._opened = (st.st_dev, st.st_ino)


def _switch_to_wal(db: sqlite3.Connection) -> None:
    """Two replicas opening a new file at the same moment can each hold the lock the other needs to
    switch it to WAL; SQLite then answers one of them "database is locked" at once, without the busy
    wait. That one tries again, within the busy timeout, until the other has switched."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _migrate(db: sqlite3.Connection) -> None:
    """Apply the missing migrations in one transaction; BEGIN IMMEDIATE takes the write lock first, so a
    second process opening the same file waits, then finds them applied."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(SCHEMA_MIGRATIONS)
        applied = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        now = time.time()
        if applied == 0:  # a file from before schema_migrations counted its version in user_version
            applied = db.execute("PRAGMA user_version").fetchone()[0]
            db.executemany(
                "INSERT INTO schema_migrations VALUES (?, ?)", [(v, now) for v in range(1, applied + 1)]
            )
        for version, statements in enumerate(MIGRATIONS[applied:], start=applied + 1):
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, now))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
