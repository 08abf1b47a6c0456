"""The feedback store: the bot's decisions, people's ratings of them, which alert threads are open, and
which Slack events were already handled (so a re-delivery never answers twice, whichever replica gets it).

SQLite by default (one file, WAL); PostgreSQL for several replicas. Same schema, same migrations (applied
on open), same behaviour: ``store = await open_store(settings.db_url)``.
"""

from __future__ import annotations

from bot.settings import db_backend, sqlite_path
from bot.store.base import (
    ACTION_PICKS,
    EVENT_MEMORY_SECONDS,
    VERDICTS,
    DecisionRecord,
    OutboxEntry,
    PastIncident,
    Rating,
    Store,
    StoreUnavailable,
    TrialPrediction,
    rating_for,
)
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore

__all__ = [
    "ACTION_PICKS",
    "EVENT_MEMORY_SECONDS",
    "VERDICTS",
    "DecisionRecord",
    "OutboxEntry",
    "PastIncident",
    "Rating",
    "Store",
    "StoreUnavailable",
    "TrialPrediction",
    "open_store",
    "rating_for",
]


async def open_store(db_url: str) -> Store:
    """The store at ``sqlite:///path`` or ``postgresql://user:pass@host:port/db``, open and migrated."""
    if db_backend(db_url) == "postgresql":
        return await PostgresStore(db_url).open()
    return await SqliteStore(sqlite_path(db_url)).open()
