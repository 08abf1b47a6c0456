"""Every sample payload in ``bot/alerts/samples/<source>/`` parses as its source, with the fields a person
reading the alert would check: its name, firing or resolved, the severity hint, the service."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.alerts import SAMPLES, SOURCES, classify, sample
from bot.local.emulator.storm import webhook_body

# (source, sample) -> (status, in the title, service, normalised severity, the source's own hint)
EXPECTED: dict[tuple[str, str], tuple[str, str, str | None, str | None, str | None]] = {
    ("alertmanager", "firing"): ("firing", "HighErrorRate", "checkout", "critical", "critical"),
    ("alertmanager", "resolved"): ("resolved", "HighErrorRate", "checkout", "critical", "critical"),
    ("alertmanager", "default_template"): ("firing", "KubePodCrashLooping", "orders", "medium", "warning"),
    ("grafana", "firing"): ("firing", "PaymentsLatencyHigh", "payments", None, None),
    ("grafana", "resolved"): ("resolved", "PaymentsLatencyHigh", "payments", None, None),
    ("grafana", "legacy_alerting"): ("firing", "Checkout latency alert", "checkout", None, None),
    ("datadog", "firing"): ("firing", "Disk usage above 95%", "orders", "critical", "P1"),
    ("datadog", "resolved"): ("resolved", "Disk usage above 95%", "orders", "critical", "P1"),
    ("datadog", "warn_multi_alert"): ("firing", "Elasticsearch heap", "search", "medium", "Warn"),
    ("sentry", "firing"): ("firing", "ConnectionError", "cart", None, None),
    ("sentry", "resolved"): ("resolved", "ConnectionError", "cart", None, None),
    ("sentry", "metric_critical"): ("firing", "Checkout error rate", "checkout", "critical", "critical"),
    ("cloudwatch", "firing"): ("firing", "search-CPUUtilization", "search-CPUUtilization", None, None),
    ("cloudwatch", "resolved"): ("resolved", "search-CPUUtilization", "search-CPUUtilization", None, None),
    ("cloudwatch", "sns_message"): (
        "firing",
        "checkout-5xx",
        "app/checkout-alb/50dc6c495c0c9188",
        None,
        None,
    ),
    ("pagerduty", "firing"): ("firing", "#4146: auth returning 503", "auth", "high", "High"),
    ("pagerduty", "acknowledged"): ("firing", "#4146: auth returning 503", "auth", "high", "High"),
    ("pagerduty", "resolved"): ("resolved", "#4146: auth returning 503", "auth", "high", "High"),
    ("human", "plain"): ("firing", "checkout is throwing 500s", "checkout", None, None),
    ("human", "sev_mention"): ("firing", "SEV2: login is slow", "auth", "high", "SEV2"),
}
# Notifications of one alert: they must thread together (the same fingerprint).
SAME_ALERT = {
    "alertmanager": ("firing", "resolved"),
    "grafana": ("firing", "resolved"),
    "datadog": ("firing", "resolved"),
    "sentry": ("firing", "resolved"),
    "cloudwatch": ("firing", "resolved"),
    "pagerduty": ("firing", "acknowledged", "resolved"),
}
WEBHOOK_SOURCES = tuple(s for s in SOURCES if s != "human")


def event(source: str, name: str) -> dict[str, Any]:
    """The ``message`` event Slack delivers for the sample: a person's message, else a webhook's post."""
    body = sample(source, name)
    delivered = {"type": "message", "channel": "C0INC", "ts": "1732600000.000100", **body}
    if source != "human":
        delivered |= {"subtype": "bot_message", "bot_id": "B0HOOK"}
    return delivered


def test_every_source_has_samples_and_every_sample_is_checked() -> None:
    on_disk = {(p.parent.name, p.stem) for p in SAMPLES.glob("*/*.json")}
    assert on_disk == set(EXPECTED)
    assert {source for source, _ in on_disk} == set(SOURCES)
    assert all((source, "firing") in on_disk for source in WEBHOOK_SOURCES)


@pytest.mark.parametrize(("source", "name"), sorted(EXPECTED))
def test_a_sample_parses_as_its_source(source: str, name: str) -> None:
    status, title_has, service, severity, hint = EXPECTED[source, name]
    alert, reason = classify(event(source, name))
    assert alert is not None, reason
    assert (reason, alert.source, alert.status) == (source, source, status)
    assert title_has in alert.incident.title
    assert alert.incident.service == service
    assert (alert.incident.severity, alert.source_severity) == (severity, hint)
    assert alert.incident.title in alert.incident.text
    if hint:  # the hint is a feature the models must see
        assert hint.lower() in alert.incident.text.lower()


@pytest.mark.parametrize("source", sorted(SAME_ALERT))
def test_one_alerts_notifications_share_a_fingerprint(source: str) -> None:
    alerts = [classify(event(source, name))[0] for name in SAME_ALERT[source]]
    fingerprints = {a.fingerprint for a in alerts if a is not None}
    assert len(alerts) == len(SAME_ALERT[source]) and len(fingerprints) == 1 and None not in fingerprints


def skeleton(value: Any) -> Any:
    """The shape of a JSON value: its keys and nesting, every leaf replaced by its type."""
    if isinstance(value, dict):
        return {key: skeleton(item) for key, item in value.items()}
    if isinstance(value, list):
        return [skeleton(item) for item in value]
    return type(value).__name__


@pytest.mark.parametrize("source", WEBHOOK_SOURCES)
def test_the_storm_benchmark_sends_each_sources_firing_shape(source: str) -> None:
    generated = webhook_body(source, "HighErrorRate: checkout returning 5xx", "checkout", 35)
    assert skeleton(generated) == skeleton(sample(source, "firing"))


def test_samples_are_pretty_printed_json_objects() -> None:
    for path in SAMPLES.glob("*/*.json"):
        text = path.read_text(encoding="utf-8")
        body = json.loads(text)
        assert isinstance(body, dict) and text == json.dumps(body, indent=2, ensure_ascii=False) + "\n", path
