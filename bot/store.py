"""The feedback store: the bot's decisions, people's ratings of them, which alert threads are open, and
which Slack events were already handled (so a re-delivery never answers twice).

SQLite (one file, WAL) behind a single worker thread: the event loop never waits on the disk, and one
connection serialises writes without locking games. The schema is versioned; migrations run on open.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Reactions that rate a decision: a verdict on the whole decision, or which of the three actions was right.
VERDICTS = {"+1": "confirm", "thumbsup": "confirm", "-1": "reject", "thumbsdown": "reject"}
ACTION_PICKS = {"one": 1, "two": 2, "three": 3}
EVENT_MEMORY_SECONDS = 24 * 3600  # Slack re-delivers within minutes; a day is ample

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE decisions (
        channel TEXT NOT NULL,
        reply_ts TEXT NOT NULL,
        alert_ts TEXT NOT NULL,
        source TEXT NOT NULL,
        fingerprint TEXT,
        incident_text TEXT NOT NULL,
        severity TEXT NOT NULL,
        severity_confidence REAL NOT NULL,
        category TEXT NOT NULL,
        category_confidence REAL NOT NULL,
        actions TEXT NOT NULL,
        model_version TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (channel, reply_ts)
    );
    CREATE INDEX decisions_by_alert ON decisions (channel, fingerprint, created_at);
    CREATE INDEX decisions_by_version ON decisions (model_version);
    CREATE TABLE ratings (
        channel TEXT NOT NULL,
        reply_ts TEXT NOT NULL,
        user TEXT NOT NULL,
        kind TEXT NOT NULL,
        reaction TEXT NOT NULL,
        value TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (channel, reply_ts, user, kind),
        FOREIGN KEY (channel, reply_ts) REFERENCES decisions (channel, reply_ts)
    );
    CREATE TABLE handled_events (
        event_id TEXT PRIMARY KEY,
        handled_at REAL NOT NULL
    );
    """,
)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    channel: str
    reply_ts: str
    alert_ts: str
    source: str
    fingerprint: str | None
    incident_text: str
    severity: str
    severity_confidence: float
    category: str
    category_confidence: float
    actions: list[tuple[str, float]]
    model_version: str
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Rating:
    kind: str  # "verdict" or "action"
    value: str  # confirm / reject, or the action that was right


def rating_for(reaction: str, actions: list[tuple[str, float]]) -> Rating | None:
    """What a reaction on a decision says, or None for reactions that rate nothing."""
    name = reaction.split("::", 1)[0]  # skin tones: +1::skin-tone-3
    if name in VERDICTS:
        return Rating("verdict", VERDICTS[name])
    if name in ACTION_PICKS and ACTION_PICKS[name] <= len(actions):
        return Rating("action", actions[ACTION_PICKS[name] - 1][0])
    return None


class Store:
    """Async facade over one SQLite connection owned by one worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="oncall-store")
        self._db: sqlite3.Connection | None = None
        self._claims = 0

    async def open(self) -> Store:
        await self._run(self._open)
        return self

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _open(self) -> None:
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            db.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        self._db = db

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    async def schema_version(self) -> int:
        return await self._run(lambda: self.db.execute("PRAGMA user_version").fetchone()[0])

    # -- exactly once ---------------------------------------------------------------------------------
    async def claim_event(self, event_id: str) -> bool:
        """True the first time an event id is seen: only the claimant handles it."""
        return await self._run(self._claim_event, event_id)

    def _claim_event(self, event_id: str) -> bool:
        now = time.time()
        cur = self.db.execute(
            "INSERT OR IGNORE INTO handled_events (event_id, handled_at) VALUES (?, ?)", (event_id, now)
        )
        self._claims += 1
        if self._claims % 512 == 0:  # now and then, forget what Slack will not resend
            self.db.execute("DELETE FROM handled_events WHERE handled_at < ?", (now - EVENT_MEMORY_SECONDS,))
        return cur.rowcount == 1

    # -- decisions ------------------------------------------------------------------------------------
    async def record_decision(self, record: DecisionRecord) -> None:
        await self._run(self._record_decision, record)

    def _record_decision(self, r: DecisionRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                r.channel,
                r.reply_ts,
                r.alert_ts,
                r.source,
                r.fingerprint,
                r.incident_text,
                r.severity,
                r.severity_confidence,
                r.category,
                r.category_confidence,
                json.dumps(r.actions),
                r.model_version,
                r.created_at or time.time(),
            ),
        )

    async def decision(self, channel: str, reply_ts: str) -> DecisionRecord | None:
        return await self._run(self._decision, channel, reply_ts)

    def _decision(self, channel: str, reply_ts: str) -> DecisionRecord | None:
        row = self.db.execute(
            "SELECT * FROM decisions WHERE channel = ? AND reply_ts = ?", (channel, reply_ts)
        ).fetchone()
        if row is None:
            return None
        fields = list(row)
        fields[10] = [tuple(a) for a in json.loads(fields[10])]
        return DecisionRecord(*fields)

    async def alert_thread(self, channel: str, fingerprint: str) -> str | None:
        """The ts of the latest alert with this fingerprint in the channel: where its resolution goes."""
        return await self._run(
            lambda: (
                row[0]
                if (
                    row := self.db.execute(
                        "SELECT alert_ts FROM decisions WHERE channel = ? AND fingerprint = ? "
                        "ORDER BY created_at DESC LIMIT 1",
                        (channel, fingerprint),
                    ).fetchone()
                )
                else None
            )
        )

    # -- ratings --------------------------------------------------------------------------------------
    async def rate(self, channel: str, reply_ts: str, user: str, reaction: str, rating: Rating) -> None:
        """One vote per user, message and kind: the latest wins."""
        await self._run(
            lambda: self.db.execute(
                "INSERT OR REPLACE INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?)",
                (channel, reply_ts, user, rating.kind, reaction, rating.value, time.time()),
            )
        )

    async def withdraw(self, channel: str, reply_ts: str, user: str, reaction: str) -> bool:
        """Removing a reaction withdraws the vote it cast (not a later vote cast with another one)."""
        return await self._run(
            lambda: (
                self.db.execute(
                    "DELETE FROM ratings WHERE channel = ? AND reply_ts = ? AND user = ? AND reaction = ?",
                    (channel, reply_ts, user, reaction),
                ).rowcount
                > 0
            )
        )

    async def ratings(self, channel: str, reply_ts: str) -> list[tuple[str, str, str, str]]:
        """(user, kind, reaction, value) of a decision's current votes."""
        return await self._run(
            lambda: self.db.execute(
                "SELECT user, kind, reaction, value FROM ratings WHERE channel = ? AND reply_ts = ? "
                "ORDER BY user, kind",
                (channel, reply_ts),
            ).fetchall()
        )

    async def rating_counts(self, model_version: str) -> dict[str, int]:
        """Decisions made by a version and the votes on them: decisions, confirm, reject, action."""

        def count() -> dict[str, int]:
            decisions = self.db.execute(
                "SELECT COUNT(*) FROM decisions WHERE model_version = ?", (model_version,)
            ).fetchone()[0]
            rows = self.db.execute(
                "SELECT r.kind, r.value, COUNT(*) FROM ratings r JOIN decisions d "
                "ON d.channel = r.channel AND d.reply_ts = r.reply_ts WHERE d.model_version = ? "
                "GROUP BY r.kind, r.value",
                (model_version,),
            ).fetchall()
            counts = {"decisions": decisions, "confirm": 0, "reject": 0, "action": 0}
            for kind, value, n in rows:
                counts["action" if kind == "action" else value] += n
            return counts

        return await self._run(count)
