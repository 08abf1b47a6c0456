"""An alert storm to replay: a few root causes, each breaking its own services, every alert written the way
one of the alert sources writes it (Alertmanager, Grafana, Datadog, Sentry, CloudWatch through AWS
Chatbot, PagerDuty, or a person), as the incoming-webhook bodies those sources post. Each alert carries
its root cause, so a grouping can be scored against the truth."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Any

# (what broke, how each source's alert names it)
CAUSES: tuple[tuple[str, str], ...] = (
    ("db-main connection pool exhausted", "PostgresTooManyConnections: db-main refused new connections"),
    ("release v2.14.0", "HTTP 5xx spike since release v2.14.0 rollout"),
    ("dns resolver", "DNS lookups failing with SERVFAIL from resolver 10.0.0.2"),
    ("shared log volume full", "Disk full on the shared log volume /var/log"),
    ("stripe api", "Stripe API timeouts on card authorization calls"),
)
SERVICES = (
    "orders",
    "payments",
    "cart",
    "checkout",
    "search",
    "catalog",
    "pricing",
    "inventory",
    "shipping",
    "billing",
    "accounts",
    "auth",
    "sessions",
    "profile",
    "reviews",
    "ratings",
    "wishlist",
    "coupons",
    "loyalty",
    "gifts",
    "invoices",
    "refunds",
    "ledger",
    "tax",
    "fraud",
    "risk",
    "kyc",
    "notifications",
    "email",
    "sms",
    "push",
    "webhooks",
    "exports",
    "imports",
    "reports",
    "analytics",
    "metrics",
    "tracking",
    "recommendations",
    "ads",
    "banners",
    "media",
    "images",
    "thumbnails",
    "uploads",
    "storage",
    "archive",
    "backup",
    "scheduler",
    "gateway",
)
SOURCES = ("alertmanager", "grafana", "datadog", "sentry", "cloudwatch", "pagerduty", "human")


@dataclass(frozen=True, slots=True)
class StormAlert:
    cause: int
    service: str
    source: str
    body: dict[str, Any]  # what the source posts to the incoming webhook


def storm(alerts: int = 1000, causes: int = 5, services: int = 50, seed: int = 7) -> list[StormAlert]:
    """``alerts`` alerts from ``causes`` root causes, each owning ``services // causes`` services; many
    are re-fires of the same alert (as Alertmanager repeats a firing group)."""
    rng = random.Random(seed)
    owned = [SERVICES[c * (services // causes) : (c + 1) * (services // causes)] for c in range(causes)]
    out = []
    for _ in range(alerts):
        cause = rng.randrange(causes)
        service = rng.choice(owned[cause])
        source = rng.choice(SOURCES)
        body = webhook_body(source, CAUSES[cause][1], service, rng.randint(50, 99))
        out.append(StormAlert(cause, service, source, body))
    return out


def webhook_body(source: str, what: str, service: str, value: int) -> dict[str, Any]:
    """What ``source`` posts to an incoming webhook when ``what`` breaks ``service`` (``value``: the
    metric's reading, in percent); "human" is a person typing it."""
    if source == "alertmanager":
        title = f"[FIRING:1] {what.split(':')[0].replace(' ', '')} ({service} critical)"
        text = f"*Alert:* {what} - `critical`\n*Description:* {what} on {service} ({value}%)\n*Details:*\n"
        text += f" • *service:* `{service}`\n • *severity:* `critical`"
        return {
            "username": "alertmanager",
            "attachments": [{"title": title, "text": text, "color": "danger"}],
        }
    if source == "grafana":
        title = f"[FIRING:1] {what.split(':')[0]} ({service})"
        text = f"**Firing**\n\nValue: B={value}\nLabels:\n - alertname = {what.split(':')[0]}\n"
        text += f" - service = {service}\nAnnotations:\n - summary = {what} on {service}\n"
        return {
            "username": "grafana",
            "attachments": [{"title": title, "text": text, "footer": "Grafana v10.4.1", "color": "#D63232"}],
        }
    if source == "datadog":
        monitor = 90000000 + zlib.crc32(f"{what}|{service}".encode()) % 1000000
        link = f"https://app.datadoghq.com/monitors/{monitor}?group=service%3A{service}"
        title = f"Triggered: [P1] {what} on {service}"
        text = f"{what} on {service} for the last 5 minutes. @slack-incidents\n"
        return {"username": "Datadog", "attachments": [{"title": title, "title_link": link, "text": text}]}
    if source == "sentry":
        issue = 4500000000 + zlib.crc32(f"{what}|{service}".encode()) % 1000000
        link = f"https://acme.sentry.io/issues/{issue}/?referrer=slack"
        return {
            "attachments": [
                {
                    "title": f"ConnectionError: {what}",
                    "title_link": link,
                    "text": f"app/{service}/client.py in call",
                    "fields": [{"title": "environment", "value": "production", "short": True}],
                    "footer": f"<{link}|{service.upper()}-1> via <https://acme.sentry.io/alerts/rules/|{service}>",
                    "color": "#E03E2F",
                }
            ]
        }
    if source == "cloudwatch":
        alarm = f"{service}-{what.split(':')[0].split()[0]}"
        return {
            "username": "AWS Chatbot",
            "attachments": [
                {
                    "color": "danger",
                    "title": f"CloudWatch Alarm | {alarm} | us-east-1 | Account: 123456789012",
                    "text": f"{what} on {service}\nThreshold Crossed: 1 datapoint [{value}] was greater than "
                    "the threshold (50.0).",
                    "footer": "Amazon CloudWatch",
                }
            ],
        }
    if source == "pagerduty":
        number = 4000 + zlib.crc32(f"{what}|{service}".encode()) % 1000
        url = f"https://acme.pagerduty.com/incidents/Q{number}"
        return {
            "username": "PagerDuty",
            "text": f"Triggered: #{number} {what} on {service}",
            "blocks": [
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f":red_circle: *Triggered* <{url}|#{number}: {what} on {service}>",
                    },
                },
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": f"*Service:* {service}"},
                        {"type": "mrkdwn", "text": "*Urgency:* High"},
                    ],
                },
            ],
        }
    return {"text": f"{service} is broken: {what}, {value}% of requests failing"}


def bcubed(truth: list[int], groups: list[str]) -> tuple[float, float]:
    """BCubed precision and recall of a clustering (``groups``: each alert's group) against the truth:
    for each alert, the share of its group that has its cause, and the share of its cause in its group."""
    n = len(truth)
    by_group: dict[str, list[int]] = {}
    by_cause: dict[int, list[int]] = {}
    for i in range(n):
        by_group.setdefault(groups[i], []).append(i)
        by_cause.setdefault(truth[i], []).append(i)
    precision = sum(
        sum(truth[j] == truth[i] for j in by_group[groups[i]]) / len(by_group[groups[i]]) for i in range(n)
    )
    recall = sum(
        sum(groups[j] == groups[i] for j in by_cause[truth[i]]) / len(by_cause[truth[i]]) for i in range(n)
    )
    return precision / n, recall / n
