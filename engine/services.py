"""The service catalog: tiers (how much an outage hurts) and dependencies.

Serving needs the tiers (a numeric feature), the synthetic generator needs all of it, so it lives here.
Tier 1 is customer-facing money and identity, tier 3 is background work nobody waits on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    tier: int  # 1 = business critical, 2 = important, 3 = background
    kind: str  # api, web, worker, batch, datastore, queue, edge, platform
    depends_on: tuple[str, ...] = ()


_CATALOG: tuple[Service, ...] = (
    Service("payments", 1, "api", ("payments-db", "kafka", "auth", "fraud-detection")),
    Service("checkout", 1, "api", ("payments", "cart", "inventory", "auth")),
    Service("auth", 1, "api", ("users-db", "redis-sessions")),
    Service("api-gateway", 1, "edge", ("auth",)),
    Service("login", 1, "web", ("auth",)),
    Service("billing", 1, "api", ("payments", "billing-db")),
    Service("payments-db", 1, "datastore"),
    Service("users-db", 1, "datastore"),
    Service("cdn", 1, "edge"),
    Service("dns", 1, "platform"),
    Service("cart", 2, "api", ("redis-sessions", "inventory")),
    Service("inventory", 2, "api", ("inventory-db",)),
    Service("search", 2, "api", ("elasticsearch",)),
    Service("orders", 2, "api", ("orders-db", "kafka")),
    Service("notifications", 2, "worker", ("kafka", "email-provider")),
    Service("frontend", 2, "web", ("api-gateway",)),
    Service("mobile-api", 2, "api", ("api-gateway",)),
    Service("fraud-detection", 2, "api", ("kafka",)),
    Service("kafka", 2, "queue"),
    Service("redis-sessions", 2, "datastore"),
    Service("elasticsearch", 2, "datastore"),
    Service("orders-db", 2, "datastore"),
    Service("inventory-db", 2, "datastore"),
    Service("billing-db", 2, "datastore"),
    Service("email-provider", 2, "worker"),
    Service("recommendations", 3, "api", ("feature-store",)),
    Service("feature-store", 3, "datastore"),
    Service("analytics-etl", 3, "batch", ("data-warehouse",)),
    Service("data-warehouse", 3, "datastore"),
    Service("report-generator", 3, "batch", ("data-warehouse",)),
    Service("image-resizer", 3, "worker"),
    Service("log-shipper", 3, "platform"),
    Service("backup-job", 3, "batch"),
    Service("ci-runners", 3, "platform"),
    Service("internal-wiki", 3, "web"),
    Service("metrics-pipeline", 3, "platform"),
)

SERVICES: dict[str, Service] = {s.name: s for s in _CATALOG}
DEFAULT_TIER = 2

# Words that mark a service as important even when it is not in the catalog (a team's own names).
_TIER1_HINTS = re.compile(r"pay|checkout|auth|login|billing|gateway|dns|cdn|sso|identity")
_TIER3_HINTS = re.compile(r"batch|etl|cron|report|backup|wiki|ci|internal|analytics|nightly")


def service_tier(name: str | None) -> int:
    """Tier of a service name: the catalog's, else a guess from the name, else the default."""
    if not name:
        return DEFAULT_TIER
    key = name.strip().lower()
    if key in SERVICES:
        return SERVICES[key].tier
    if _TIER1_HINTS.search(key):
        return 1
    if _TIER3_HINTS.search(key):
        return 3
    return DEFAULT_TIER
