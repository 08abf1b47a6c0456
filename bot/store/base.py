"""What the feedback store keeps and its async API, written once over two primitives that each backend
(SQLite, PostgreSQL) supplies: run one statement, or fetch the rows of one query.

Statements use ``?`` placeholders and SQL both dialects share (upserts are ``INSERT ... ON CONFLICT``).
Every write is one statement, so each is atomic on its own and safe to retry after a lost connection.
"""

from __future__ import annotations

import json
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from engine.labels import Vote

# Reactions that rate a decision: a verdict on the whole decision, or which of the three actions was right.
VERDICTS = {"+1": "confirm", "thumbsup": "confirm", "-1": "reject", "thumbsdown": "reject"}
ACTION_PICKS = {"one": 1, "two": 2, "three": 3}
EVENT_MEMORY_SECONDS = 24 * 3600  # Slack re-delivers within minutes; a day is ample
PRUNE_EVERY = 512  # claims between two sweeps of forgotten event ids


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
class PastIncident:
    """An incident from a team's history (``oncall history import``), with its final labels."""

    id: str
    title: str
    incident_text: str
    severity: str | None
    category: str | None
    actions: tuple[str, ...]
    link: str | None = None
    source: str = "import"
    created_at: float = 0.0


_INCIDENT_COLUMNS = tuple(f.name for f in fields(PastIncident))
_INCIDENT_LIST = ", ".join(_INCIDENT_COLUMNS)


@dataclass(frozen=True, slots=True)
class TrialPrediction:
    """What a trial's candidate said about one alert, beside what the active version said."""

    channel: str
    alert_ts: str
    version: str
    mode: str
    answered: bool  # a canary hit: the candidate's decision was the one posted
    severity: str
    category: str
    action: str
    active_version: str
    active_severity: str
    active_category: str
    active_action: str
    latency_ms: float


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


DECISION_COLUMNS = tuple(f.name for f in fields(DecisionRecord))
_DECISION_LIST = ", ".join(DECISION_COLUMNS)
_UPSERT_DECISION = (
    f"INSERT INTO decisions ({_DECISION_LIST}) VALUES ({', '.join('?' * len(DECISION_COLUMNS))}) "
    "ON CONFLICT (channel, reply_ts) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in DECISION_COLUMNS[2:])
)
# The first claim inserts the row; a repeat of the *same* claim (same token: a retry whose first attempt
# committed before the connection dropped) touches it and so still counts one row; any other claim none.
CLAIM = (
    "INSERT INTO handled_events (event_id, handled_at, claim) VALUES (?, ?, ?) "
    "ON CONFLICT (event_id) DO UPDATE SET handled_at = handled_events.handled_at "
    "WHERE handled_events.claim = excluded.claim"
)


class StoreUnavailable(Exception):
    """The database cannot be reached or is locked right now; the operation may be retried as it is."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An alert acknowledged to Slack and not yet answered: enough to answer it in another process."""

    channel: str
    alert_ts: str
    event: dict[str, Any]
    bot_user_id: str | None
    bot_id: str | None
    received_at: float


class Store(ABC):
    """The feedback store: decisions, ratings, open alert threads, handled Slack events. Open it with
    ``await open_store(db_url)``; every method is a coroutine and safe to call concurrently."""

    def __init__(self) -> None:
        self._claims = 0
        self.problem: str | None = None  # why the store is unusable until someone acts (not a mere outage)

    async def open(self) -> Store:
        """Connect and apply the migrations this database lacks (one process at a time)."""
        await self._open()
        return self

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction; the number of rows it changed. Raises
        StoreUnavailable when the database cannot be reached or stays locked."""

    @abstractmethod
    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one query (StoreUnavailable as above)."""

    async def schema_version(self) -> int:
        rows = await self._fetch("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    # -- exactly once ---------------------------------------------------------------------------------
    async def claim_event(self, event_id: str, token: str | None = None) -> bool:
        """True the first time an event id is seen, in this process or any other sharing the database:
        only the claimant handles it. Retrying with the same ``token`` counts as the same claim."""
        now = time.time()
        claimed = await self._execute(CLAIM, (event_id, now, token or secrets.token_hex(8))) == 1
        self._claims += 1
        if self._claims % PRUNE_EVERY == 0:  # now and then, forget what Slack will not resend
            await self._execute(
                "DELETE FROM handled_events WHERE handled_at < ?", (now - EVENT_MEMORY_SECONDS,)
            )
        return claimed

    # -- the outbox -----------------------------------------------------------------------------------
    async def outbox_put(self, entry: OutboxEntry, owner: str, lease_until: float) -> None:
        await self._execute(
            "INSERT INTO outbox (channel, alert_ts, event, bot_user_id, bot_id, owner, lease_until, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, alert_ts) DO NOTHING",
            (
                entry.channel, entry.alert_ts, json.dumps(entry.event), entry.bot_user_id, entry.bot_id,
                owner, lease_until, entry.received_at,
            ),
        )  # fmt: skip

    async def outbox_done(self, channel: str, alert_ts: str) -> None:
        await self._execute("DELETE FROM outbox WHERE channel = ? AND alert_ts = ?", (channel, alert_ts))

    async def outbox_renew(self, owner: str, lease_until: float) -> None:
        """Keep this owner's entries: nobody else takes them over while it is alive."""
        await self._execute("UPDATE outbox SET lease_until = ? WHERE owner = ?", (lease_until, owner))

    async def outbox_take(self, owner: str, lease_until: float, mine: bool = False) -> list[OutboxEntry]:
        """Entries whose lease ran out (their replica died), and with ``mine`` those this owner left
        behind (its previous life, before a crash or restart): each is leased to ``owner`` one by one,
        so two replicas never take the same entry."""
        now = time.time()
        rows = await self._fetch(
            "SELECT channel, alert_ts, event, bot_user_id, bot_id, received_at, owner FROM outbox "
            "WHERE lease_until < ? OR owner = ? ORDER BY received_at LIMIT 500",
            (now, owner if mine else ""),
        )
        taken = []
        for channel, alert_ts, event, bot_user_id, bot_id, received_at, was in rows:
            won = await self._execute(
                "UPDATE outbox SET owner = ?, lease_until = ? WHERE channel = ? AND alert_ts = ? "
                "AND owner = ? AND (lease_until < ? OR owner = ?)",
                (owner, lease_until, channel, alert_ts, was, now, owner if mine else ""),
            )
            if won:
                entry = OutboxEntry(
                    channel, alert_ts, json.loads(event), bot_user_id, bot_id, float(received_at)
                )
                taken.append(entry)
        return taken

    # -- alert groups ---------------------------------------------------------------------------------
    async def save_group(self, group_id: str, channel: str, thread_ts: str, state: dict[str, Any],
                         last_seen: float, closed_at: float | None) -> None:  # fmt: skip
        await self._execute(
            "INSERT INTO alert_groups (id, channel, thread_ts, state, last_seen, closed_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
            "last_seen = excluded.last_seen, closed_at = excluded.closed_at",
            (group_id, channel, thread_ts, json.dumps(state), last_seen, closed_at),
        )

    async def open_groups(self, since: float) -> list[tuple[str, str, str, dict[str, Any], float]]:
        """(id, channel, thread_ts, state, last_seen) of the groups still open and seen since ``since``."""
        rows = await self._fetch(
            "SELECT id, channel, thread_ts, state, last_seen FROM alert_groups "
            "WHERE closed_at IS NULL AND last_seen >= ?",
            (since,),
        )
        return [(i, c, t, json.loads(state), float(seen)) for i, c, t, state, seen in rows]

    async def add_member(self, channel: str, alert_ts: str, group_id: str, fingerprint: str | None,
                         title: str, severity: str) -> None:  # fmt: skip
        await self._execute(
            "INSERT INTO group_members (channel, alert_ts, group_id, fingerprint, title, severity, added_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, alert_ts) DO NOTHING",
            (channel, alert_ts, group_id, fingerprint, title, severity, time.time()),
        )

    async def members(self, group_id: str) -> list[tuple[str, str, str | None, str]]:
        """(channel, alert_ts, fingerprint, title) of a group's alerts, in the order they joined."""
        rows = await self._fetch(
            "SELECT channel, alert_ts, fingerprint, title FROM group_members WHERE group_id = ? "
            "ORDER BY added_at, alert_ts",
            (group_id,),
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    # -- decisions ------------------------------------------------------------------------------------
    async def record_decision(self, r: DecisionRecord) -> None:
        values = {c: getattr(r, c) for c in DECISION_COLUMNS}
        values |= {"actions": json.dumps(r.actions), "created_at": r.created_at or time.time()}
        await self._execute(_UPSERT_DECISION, list(values.values()))

    async def decision(self, channel: str, reply_ts: str) -> DecisionRecord | None:
        rows = await self._fetch(
            f"SELECT {_DECISION_LIST} FROM decisions WHERE channel = ? AND reply_ts = ?", (channel, reply_ts)
        )
        if not rows:
            return None
        record = dict(zip(DECISION_COLUMNS, rows[0], strict=True))
        record["actions"] = [tuple(a) for a in json.loads(record["actions"])]
        return DecisionRecord(**record)

    async def feedback(self) -> list[tuple[DecisionRecord, list[tuple[str, str, str, str, float]]]]:
        """Every decision that people rated or corrected, with its votes (user, kind, reaction or control,
        value, time), oldest decision first: what `oncall train --with-feedback` learns from."""
        rows = await self._fetch(
            f"SELECT {_DECISION_LIST} FROM decisions d WHERE EXISTS (SELECT 1 FROM ratings r "
            "WHERE r.channel = d.channel AND r.reply_ts = d.reply_ts) ORDER BY created_at, channel, reply_ts"
        )
        votes = await self._fetch(
            'SELECT channel, reply_ts, "user", kind, reaction, value, created_at FROM ratings'
        )
        by_decision: dict[tuple[str, str], list[tuple[str, str, str, str, float]]] = {}
        for channel, reply_ts, user, kind, reaction, value, at in votes:
            by_decision.setdefault((channel, reply_ts), []).append((user, kind, reaction, value, float(at)))
        out = []
        for row in rows:
            record = dict(zip(DECISION_COLUMNS, row, strict=True))
            record["actions"] = [tuple(a) for a in json.loads(record["actions"])]
            decision = DecisionRecord(**record)
            out.append((decision, sorted(by_decision.get((decision.channel, decision.reply_ts), []))))
        return out

    # -- what the similar-incident memory is built from ---------------------------------------------
    async def import_incident(self, p: PastIncident) -> None:
        """Insert a past incident, or replace the one with its id (a re-import updates it)."""
        values = [getattr(p, c) for c in _INCIDENT_COLUMNS]
        values[_INCIDENT_COLUMNS.index("actions")] = json.dumps(list(p.actions))
        values[-1] = p.created_at or time.time()
        await self._execute(
            f"INSERT INTO incidents ({_INCIDENT_LIST}) VALUES ({', '.join('?' * len(values))}) "
            "ON CONFLICT (id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _INCIDENT_COLUMNS[1:]),
            values,
        )

    async def past_incidents(self, since: float = 0.0) -> list[PastIncident]:
        """Imported incidents written after ``since`` (created_at, which a re-import renews), oldest first."""
        rows = await self._fetch(
            f"SELECT {_INCIDENT_LIST} FROM incidents WHERE created_at > ? ORDER BY created_at, id", (since,)
        )
        out = []
        for row in rows:
            record = dict(zip(_INCIDENT_COLUMNS, row, strict=True))
            record["actions"] = tuple(json.loads(record["actions"]))
            out.append(PastIncident(**record))
        return out

    async def decisions_since(self, since: float = 0.0) -> list[DecisionRecord]:
        """Decisions recorded after ``since``, oldest first."""
        rows = await self._fetch(
            f"SELECT {_DECISION_LIST} FROM decisions WHERE created_at > ? "
            "ORDER BY created_at, channel, reply_ts",
            (since,),
        )
        out = []
        for row in rows:
            record = dict(zip(DECISION_COLUMNS, row, strict=True))
            record["actions"] = [tuple(a) for a in json.loads(record["actions"])]
            out.append(DecisionRecord(**record))
        return out

    async def rated_decisions(self) -> set[tuple[str, str]]:
        """(channel, reply_ts) of every decision somebody rated or corrected."""
        return {(c, ts) for c, ts in await self._fetch("SELECT DISTINCT channel, reply_ts FROM ratings")}

    async def votes(self, channel: str, reply_ts: str) -> list[Vote]:
        """(user, kind, reaction or control, value, time) of a decision's current votes."""
        rows = await self._fetch(
            'SELECT "user", kind, reaction, value, created_at FROM ratings '
            "WHERE channel = ? AND reply_ts = ?",
            (channel, reply_ts),
        )
        return sorted((u, k, r, v, float(at)) for u, k, r, v, at in rows)

    # -- trials -------------------------------------------------------------------------------------
    async def record_trial(self, t: TrialPrediction) -> None:
        await self._execute(
            "INSERT INTO trial_predictions (channel, alert_ts, version, mode, answered, severity, "
            "category, action, active_version, active_severity, active_category, active_action, "
            "latency_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (channel, alert_ts, version) DO NOTHING",
            (
                t.channel, t.alert_ts, t.version, t.mode, int(t.answered), t.severity, t.category, t.action,
                t.active_version, t.active_severity, t.active_category, t.active_action, t.latency_ms,
                time.time(),
            ),
        )  # fmt: skip

    async def trial_stats(self, version: str, against: str | None = None) -> dict[str, float]:
        """How a candidate did beside the active version (or ``against`` one): alerts seen, answered,
        agreement on severity, category and top action, and its latency (p50, p99 ms)."""
        sql = (
            "SELECT answered, severity = active_severity, category = active_category, "
            "action = active_action, latency_ms FROM trial_predictions WHERE version = ?"
        )
        params: list[Any] = [version]
        if against is not None:
            sql += " AND active_version = ?"
            params.append(against)
        rows = await self._fetch(sql, params)
        n = len(rows)
        latencies = sorted(float(r[4]) for r in rows)

        def share(i: int) -> float:
            return round(sum(bool(r[i]) for r in rows) / n, 4) if n else 0.0

        return {
            "alerts": n,
            "answered": sum(bool(r[0]) for r in rows),
            "severity_agreement": share(1),
            "category_agreement": share(2),
            "action_agreement": share(3),
            "latency_p50_ms": latencies[n // 2] if n else 0.0,
            "latency_p99_ms": latencies[min(n - 1, int(0.99 * n))] if n else 0.0,
        }

    async def alert_thread(self, channel: str, fingerprint: str) -> str | None:
        """The ts of the latest alert with this fingerprint in the channel: where its resolution goes."""
        rows = await self._fetch(
            "SELECT alert_ts FROM decisions WHERE channel = ? AND fingerprint = ? "
            "ORDER BY created_at DESC LIMIT 1",
            (channel, fingerprint),
        )
        return rows[0][0] if rows else None

    # -- ratings --------------------------------------------------------------------------------------
    async def rate(self, channel: str, reply_ts: str, user: str, reaction: str, rating: Rating) -> None:
        """One vote per user, message and kind: the latest wins."""
        await self._execute(
            'INSERT INTO ratings (channel, reply_ts, "user", kind, reaction, value, created_at) '
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            'ON CONFLICT (channel, reply_ts, "user", kind) DO UPDATE SET '
            "reaction = excluded.reaction, value = excluded.value, created_at = excluded.created_at",
            (channel, reply_ts, user, rating.kind, reaction, rating.value, time.time()),
        )

    async def withdraw(self, channel: str, reply_ts: str, user: str, reaction: str) -> bool:
        """Removing a reaction withdraws the vote it cast (not a later vote cast with another one)."""
        removed = await self._execute(
            'DELETE FROM ratings WHERE channel = ? AND reply_ts = ? AND "user" = ? AND reaction = ?',
            (channel, reply_ts, user, reaction),
        )
        return removed > 0

    async def ratings(self, channel: str, reply_ts: str) -> list[tuple[str, str, str, str]]:
        """(user, kind, reaction, value) of a decision's current votes, by user and kind."""
        rows = await self._fetch(
            'SELECT "user", kind, reaction, value FROM ratings WHERE channel = ? AND reply_ts = ?',
            (channel, reply_ts),
        )
        # Sorted here, not by ORDER BY: PostgreSQL would sort by the database's collation, SQLite by bytes.
        return sorted(tuple(row) for row in rows)

    async def rating_counts(self, model_version: str) -> dict[str, int]:
        """Decisions made by a version and the votes on them: decisions, confirm, reject, action (an
        action confirmed, by reaction or button), corrected (a severity or category corrected)."""
        decisions = await self._fetch(
            "SELECT COUNT(*) FROM decisions WHERE model_version = ?", (model_version,)
        )
        rows = await self._fetch(
            "SELECT r.kind, r.value, COUNT(*) FROM ratings r JOIN decisions d "
            "ON d.channel = r.channel AND d.reply_ts = r.reply_ts WHERE d.model_version = ? "
            "GROUP BY r.kind, r.value",
            (model_version,),
        )
        counts = {"decisions": int(decisions[0][0]), "confirm": 0, "reject": 0, "action": 0, "corrected": 0}
        for kind, value, n in rows:
            counts[value if kind == "verdict" else "action" if kind == "action" else "corrected"] += int(n)
        return counts
