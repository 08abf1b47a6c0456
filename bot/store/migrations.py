"""The schema, as versioned migrations that serve both SQLite and PostgreSQL: one list, one schema.

Only SQL the two dialects read alike: TEXT, DOUBLE PRECISION (REAL in PostgreSQL is 4 bytes), and the
column ``"user"`` quoted (a reserved word in PostgreSQL). A migration is a tuple of statements, applied in
one transaction with its row in ``schema_migrations``; a released migration is never edited, only followed.
"""

from __future__ import annotations

SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: decisions, their ratings, handled Slack events
        """CREATE TABLE decisions (
            channel TEXT NOT NULL,
            reply_ts TEXT NOT NULL,
            alert_ts TEXT NOT NULL,
            source TEXT NOT NULL,
            fingerprint TEXT,
            incident_text TEXT NOT NULL,
            severity TEXT NOT NULL,
            severity_confidence DOUBLE PRECISION NOT NULL,
            category TEXT NOT NULL,
            category_confidence DOUBLE PRECISION NOT NULL,
            actions TEXT NOT NULL,
            model_version TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (channel, reply_ts)
        )""",
        "CREATE INDEX decisions_by_alert ON decisions (channel, fingerprint, created_at)",
        "CREATE INDEX decisions_by_version ON decisions (model_version)",
        """CREATE TABLE ratings (
            channel TEXT NOT NULL,
            reply_ts TEXT NOT NULL,
            "user" TEXT NOT NULL,
            kind TEXT NOT NULL,
            reaction TEXT NOT NULL,
            value TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (channel, reply_ts, "user", kind),
            FOREIGN KEY (channel, reply_ts) REFERENCES decisions (channel, reply_ts)
        )""",
        "CREATE TABLE handled_events (event_id TEXT PRIMARY KEY, handled_at DOUBLE PRECISION NOT NULL)",
    ),
    (  # 2: who claimed an event, so a claim retried after a lost connection recognises its own row
        "ALTER TABLE handled_events ADD COLUMN claim TEXT",
        "CREATE INDEX handled_events_by_time ON handled_events (handled_at)",
    ),
    (  # 3: a trial candidate's prediction on each alert, beside the active version's
        """CREATE TABLE trial_predictions (
            channel TEXT NOT NULL,
            alert_ts TEXT NOT NULL,
            version TEXT NOT NULL,
            mode TEXT NOT NULL,
            answered INTEGER NOT NULL,
            severity TEXT NOT NULL,
            category TEXT NOT NULL,
            action TEXT NOT NULL,
            active_version TEXT NOT NULL,
            active_severity TEXT NOT NULL,
            active_category TEXT NOT NULL,
            active_action TEXT NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (channel, alert_ts, version)
        )""",
        "CREATE INDEX trial_predictions_by_version ON trial_predictions (version)",
    ),
    (  # 4: the durable outbox: alerts acknowledged but not yet answered, leased by the replica answering
        """CREATE TABLE outbox (
            channel TEXT NOT NULL,
            alert_ts TEXT NOT NULL,
            event TEXT NOT NULL,
            bot_user_id TEXT,
            bot_id TEXT,
            owner TEXT NOT NULL,
            lease_until DOUBLE PRECISION NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (channel, alert_ts)
        )""",
        "CREATE INDEX outbox_by_lease ON outbox (lease_until)",
    ),
    (  # 5: alert groups: related alerts answered in one thread, and which alert joined which group
        """CREATE TABLE alert_groups (
            id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            thread_ts TEXT NOT NULL,
            state TEXT NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL,
            closed_at DOUBLE PRECISION
        )""",
        "CREATE INDEX alert_groups_open ON alert_groups (closed_at, last_seen)",
        """CREATE TABLE group_members (
            channel TEXT NOT NULL,
            alert_ts TEXT NOT NULL,
            group_id TEXT NOT NULL,
            fingerprint TEXT,
            title TEXT NOT NULL,
            severity TEXT NOT NULL,
            added_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (channel, alert_ts)
        )""",
        "CREATE INDEX group_members_by_group ON group_members (group_id)",
    ),
    (  # 6: past incidents imported from a team's history (`oncall history import`): similar incidents
        """CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            title TEXT NOT NULL,
            incident_text TEXT NOT NULL,
            severity TEXT,
            category TEXT,
            actions TEXT NOT NULL,
            link TEXT,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX incidents_by_time ON incidents (created_at)",
        "CREATE INDEX decisions_by_time ON decisions (created_at)",
    ),
)
