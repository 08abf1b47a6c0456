"""The composer's alert templates: one realistic alert per source, as that source posts it to an incoming
webhook (the same bodies the storm benchmark sends). People edit them before posting."""

from __future__ import annotations

from typing import Any

from bot.local.emulator.storm import webhook_body

# (source, how Slack shows its name, what broke, the service, the metric's reading in percent)
_EXAMPLES: tuple[tuple[str, str, str, str, int], ...] = (
    (
        "alertmanager",
        "Alertmanager",
        "HighErrorRate: checkout returning 5xx since the 14:05 deploy",
        "checkout",
        35,
    ),
    ("grafana", "Grafana", "PaymentsLatencyHigh: p99 latency above 2s on the payments API", "payments", 92),
    ("datadog", "Datadog", "Disk usage above 95% on db-main-01", "orders", 96),
    ("sentry", "Sentry", "connection refused by redis-cache:6379", "cart", 60),
    ("cloudwatch", "CloudWatch", "CPUUtilization above 90% on the search cluster", "search", 97),
    ("pagerduty", "PagerDuty", "auth returning 503 for 40% of logins", "auth", 40),
)
SOURCE_NAMES = {source: name for source, name, *_ in _EXAMPLES}


def templates() -> list[dict[str, Any]]:
    return [
        {"source": source, "name": name, "body": webhook_body(source, what, service, value)}
        for source, name, what, service, value in _EXAMPLES
    ]
