"""The feedback store, the same tests on SQLite and on a real PostgreSQL server (``db_url`` in conftest):
migrations, exactly-once event claims across replicas, decisions, ratings and alert threads."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.settings import ConfigError, sqlite_path
from bot.store import DecisionRecord, OutboxEntry, Rating, base, open_store, rating_for
from bot.store.migrations import MIGRATIONS
from bot.store.write_behind import WriteBehind
from tests.conftest import fresh_postgres_database

pytestmark = pytest.mark.asyncio
ACTIONS = [("replace_hardware", 0.5), ("failover", 0.2), ("monitor", 0.1)]


def raw_rows(db_url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows read past the store, straight from the database."""
    if db_url.startswith("sqlite:"):
        with sqlite3.connect(sqlite_path(db_url)) as db:
            return db.execute(query).fetchall()
    with psycopg.connect(db_url) as db:
        return db.execute(query).fetchall()


def decision(reply_ts: str, **kw: Any) -> DecisionRecord:
    fields: dict[str, Any] = {
        "channel": "C1",
        "reply_ts": reply_ts,
        "alert_ts": "1.0",
        "source": "human",
        "fingerprint": None,
        "incident_text": "disk full",
        "severity": "high",
        "severity_confidence": 0.123456789012,
        "category": "hardware",
        "category_confidence": 0.6,
        "actions": ACTIONS,
        "model_version": "v1",
    }
    return DecisionRecord(**(fields | kw))


async def test_migrations_apply_once_even_when_replicas_open_together(db_url: str) -> None:
    first, second = await asyncio.gather(open_store(db_url), open_store(db_url))
    third = await open_store(db_url)  # reopening migrates nothing twice
    for store in (first, second, third):
        assert await store.schema_version() == len(MIGRATIONS)
        await store.close()
    versions = raw_rows(db_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(v,) for v in range(1, len(MIGRATIONS) + 1)]


@pytest.mark.slow
async def test_replicas_creating_one_sqlite_file_together_never_find_it_locked(tmp_path: Path) -> None:
    """Both switch a new file to WAL at once: SQLite may answer one "database is locked" without waiting
    (it did about once in 60 tries before the retry)."""
    for i in range(150):
        url = f"sqlite:///{tmp_path}/{i}/oncall.db"
        stores = await asyncio.gather(open_store(url), open_store(url))
        for store in stores:
            assert await store.schema_version() == len(MIGRATIONS)
            await store.close()


async def test_a_claim_is_made_once_and_survives_a_reopen(db_url: str) -> None:
    store = await open_store(db_url)
    assert await store.claim_event("Ev1") and not await store.claim_event("Ev1")
    assert await store.claim_event("Ev2")
    await store.close()
    again = await open_store(db_url)
    assert not await again.claim_event("Ev1")
    await again.close()


async def test_a_claim_retried_after_a_lost_connection_is_still_its_claimants(db_url: str) -> None:
    """A retry repeats the claim statement with the same token: if the first attempt committed before the
    connection dropped, the retry must still win, and nobody else's claim may."""
    store = await open_store(db_url)
    assert await store._execute(base.CLAIM, ("Ev1", 1.0, "token-a")) == 1
    assert await store._execute(base.CLAIM, ("Ev1", 2.0, "token-a")) == 1, "the retry of that claim"
    assert await store._execute(base.CLAIM, ("Ev1", 3.0, "token-b")) == 0, "another claim"
    assert not await store.claim_event("Ev1")
    await store.close()


async def test_two_replicas_racing_for_the_same_events_claim_each_exactly_once(db_url: str) -> None:
    replicas = [await open_store(db_url), await open_store(db_url)]  # two connections, like two processes
    ids = [f"Ev{i:04d}" for i in range(200)]
    # All 400 claims in flight at once, each id asked for by both replicas, first one then the other.
    claims = [(i, replicas[(n + k) % 2]) for k in (0, 1) for n, i in enumerate(ids)]
    try:
        wins = await asyncio.gather(*(replica.claim_event(i) for i, replica in claims))
    finally:
        for replica in replicas:
            await replica.close()
    winners: dict[str, int] = dict.fromkeys(ids, 0)
    for (event_id, _), won in zip(claims, wins, strict=True):
        winners[event_id] += won
    assert winners == dict.fromkeys(ids, 1)
    assert raw_rows(db_url, "SELECT COUNT(*) FROM handled_events") == [(len(ids),)]


async def test_decisions_round_trip_and_are_replaced_without_losing_their_ratings(db_url: str) -> None:
    store = await open_store(db_url)
    record = decision("2.0")
    await store.record_decision(record)
    stored = await store.decision("C1", "2.0")
    assert stored is not None and stored.actions == ACTIONS and stored.created_at > 0
    assert stored.severity_confidence == 0.123456789012, "doubles, not 4-byte floats"
    assert await store.decision("C1", "9.9") is None and await store.decision("C2", "2.0") is None
    await store.rate("C1", "2.0", "U1", "+1", rating_for("+1", ACTIONS))
    await store.record_decision(decision("2.0", severity="critical"))
    assert (await store.decision("C1", "2.0")).severity == "critical"
    assert await store.ratings("C1", "2.0") == [("U1", "verdict", "+1", "confirm")]
    await store.close()


async def test_one_vote_per_user_and_kind_the_latest_wins_and_removal_withdraws_it(db_url: str) -> None:
    store = await open_store(db_url)
    await store.record_decision(decision("2.0"))
    for user, reaction in [("U2", "thumbsup"), ("U1", "+1"), ("U1", "-1::skin-tone-2"), ("U1", "three")]:
        await store.rate("C1", "2.0", user, reaction, rating_for(reaction, ACTIONS))
    assert await store.ratings("C1", "2.0") == [
        ("U1", "action", "three", "monitor"),
        ("U1", "verdict", "-1::skin-tone-2", "reject"),
        ("U2", "verdict", "thumbsup", "confirm"),
    ]
    assert not await store.withdraw("C1", "2.0", "U1", "+1"), "+1 is no longer U1's vote"
    assert await store.withdraw("C1", "2.0", "U1", "three")
    assert not await store.withdraw("C1", "2.0", "U1", "three")
    assert await store.ratings("C1", "2.0") == [
        ("U1", "verdict", "-1::skin-tone-2", "reject"),
        ("U2", "verdict", "thumbsup", "confirm"),
    ]
    assert rating_for("tada", ACTIONS) is None and rating_for("three", ACTIONS[:2]) is None
    await store.close()


async def test_rating_counts_are_per_model_version(db_url: str) -> None:
    store = await open_store(db_url)
    nothing = {"decisions": 0, "confirm": 0, "reject": 0, "action": 0, "corrected": 0}
    assert await store.rating_counts("v1") == nothing
    for ts, version in [("2.0", "v1"), ("3.0", "v1"), ("4.0", "v2"), ("5.0", "v1")]:
        await store.record_decision(decision(ts, model_version=version))
    votes = [("2.0", "U1", "+1"), ("2.0", "U2", "-1"), ("2.0", "U1", "one"), ("3.0", "U1", "+1")]
    votes += [("3.0", "U2", "two"), ("4.0", "U1", "+1"), ("4.0", "U1", "three")]
    for ts, user, reaction in votes:
        await store.rate("C1", ts, user, reaction, rating_for(reaction, ACTIONS))
    await store.rate("C1", "5.0", "U3", "correct_severity", Rating("severity", "critical"))
    assert await store.rating_counts("v1") == {
        **nothing,
        "decisions": 3,
        "confirm": 2,
        "reject": 1,
        "action": 2,
        "corrected": 1,
    }
    assert await store.rating_counts("v2") == {**nothing, "decisions": 1, "confirm": 1, "action": 1}
    assert await store.rating_counts("v3") == nothing
    await store.close()


async def test_alert_thread_is_the_latest_alert_with_that_fingerprint_in_the_channel(db_url: str) -> None:
    store = await open_store(db_url)
    await store.record_decision(decision("2.0", alert_ts="1.0", fingerprint="fp", created_at=100.0))
    await store.record_decision(decision("4.0", alert_ts="3.0", fingerprint="fp", created_at=200.0))
    await store.record_decision(decision("6.0", alert_ts="5.0", fingerprint="other", created_at=300.0))
    await store.record_decision(
        decision("8.0", channel="C2", alert_ts="7.0", fingerprint="fp", created_at=400.0)
    )
    assert await store.alert_thread("C1", "fp") == "3.0"
    assert await store.alert_thread("C2", "fp") == "7.0"
    assert await store.alert_thread("C1", "unknown") is None and await store.alert_thread("C3", "fp") is None
    await store.close()


async def test_an_unknown_store_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ONCALL_DB_URL"):
        await open_store("mysql://oncall@db/oncall")


async def test_sqlite_is_wal_and_an_older_file_keeps_its_data_and_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # a file from before schema_migrations: its version in user_version
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO handled_events VALUES ('Ev1', 1.0)")
        db.execute("PRAGMA user_version = 1")
    db_url = f"sqlite:///{path}"
    store = await open_store(db_url)
    assert await store.schema_version() == len(MIGRATIONS)
    assert not await store.claim_event("Ev1") and await store.claim_event("Ev2")
    await store.close()
    assert raw_rows(db_url, "PRAGMA journal_mode") == [("wal",)]
    assert raw_rows(db_url, "SELECT version FROM schema_migrations") == [
        (v,) for v in range(1, len(MIGRATIONS) + 1)
    ]


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.mark.postgres
async def test_postgres_operations_survive_lost_connections(postgres_server: str, postgres_url: str) -> None:
    db_url = postgres_url
    store = await open_store(db_url)
    await store.record_decision(decision("2.0"))
    with psycopg.connect(postgres_server, autocommit=True) as admin:  # as a server restart would
        database = db_url.rsplit("/", 1)[1]
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,)
        )
    assert await store.claim_event("Ev1"), "retried on a new connection"
    assert (await store.decision("C1", "2.0")).severity == "high"
    await store.close()


async def test_outbox_entries_are_leased_taken_over_when_stale_and_taken_back_by_their_owner(
    db_url: str,
) -> None:
    a, b = await open_store(db_url), await open_store(db_url)
    try:
        entry = OutboxEntry("C1", "5.0", {"text": "disk full", "ts": "5.0"}, "U0BOT", "B0BOT", 1.0)
        await a.outbox_put(entry, "host:3000", lease_until=time.time() + 30)
        assert await b.outbox_take("host:3001", time.time() + 30) == []  # leased, its owner alive
        assert await a.outbox_take("host:3000", time.time() + 30, mine=True) == [entry]  # a restart
        await a.outbox_renew("host:3000", 0.0)  # released (a stop), or the lease ran out (a crash)
        assert await b.outbox_take("host:3001", time.time() + 30) == [entry]
        assert await a.outbox_take("host:3002", time.time() + 30) == []  # nobody takes it twice
        await b.outbox_done("C1", "5.0")
        assert raw_rows(db_url, "SELECT COUNT(*) FROM outbox") == [(0,)]
    finally:
        await a.close()
        await b.close()


async def test_writes_wait_out_a_locked_sqlite_file_in_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'oncall.db'}"
    store = await open_store(url)
    writes = WriteBehind()
    await store.record_decision(decision("9.0"))
    locker = sqlite3.connect(sqlite_path(url), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        vote = Rating("verdict", "confirm")
        assert not await writes.run("rate", lambda: store.rate("C1", "9.0", "U1", "+1", vote))
        assert not await writes.run("withdraw", lambda: store.withdraw("C1", "9.0", "U1", "+1"))
        assert not await writes.run("rate", lambda: store.rate("C1", "9.0", "U2", "-1", vote))
        assert writes.pending == 3
    finally:
        locker.execute("COMMIT")
    assert await writes.flush(timeout=15)
    assert await store.ratings("C1", "9.0") == [("U2", "verdict", "-1", "confirm")]  # in order, none lost
    assert await writes.run("rate", lambda: store.rate("C1", "9.0", "U3", "+1", vote))  # back to direct
    await writes.stop()
    await store.close()
