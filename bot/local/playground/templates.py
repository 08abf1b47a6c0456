"""The composer's alert templates: one realistic alert per source, as that source posts it to an incoming
webhook. Each is the source's firing sample beside its parser (``bot/alerts/samples/<source>/firing.json``),
the shape the storm benchmark's ``webhook_body`` writes. People edit them before posting."""

from __future__ import annotations

from typing import Any

from bot.alerts import sample

# source -> how Slack shows its name (the incoming webhook's name)
SOURCE_NAMES = {
    "alertmanager": "Alertmanager",
    "grafana": "Grafana",
    "datadog": "Datadog",
    "sentry": "Sentry",
    "cloudwatch": "CloudWatch",
    "pagerduty": "PagerDuty",
}


def templates() -> list[dict[str, Any]]:
    return [
        {"source": source, "name": name, "body": sample(source, "firing")}
        for source, name in SOURCE_NAMES.items()
    ]
