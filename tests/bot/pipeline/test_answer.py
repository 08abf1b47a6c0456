"""Answering an alert (bot/pipeline/answer.py): the canary's share and the resolved note's title."""

from __future__ import annotations

import pytest


def test_a_canary_takes_a_stable_share_of_the_alerts() -> None:
    from bot.pipeline.answer import canary_hit

    alerts = [("C1", f"1732600000.{i:06d}") for i in range(4000)]
    hits = [canary_hit(c, ts, 0.1) for c, ts in alerts]
    assert 0.08 < sum(hits) / len(hits) < 0.12
    assert hits == [canary_hit(c, ts, 0.1) for c, ts in alerts], "the same alert, the same answer"
    assert all(canary_hit(c, ts, 0.2) for (c, ts), hit in zip(alerts, hits, strict=True) if hit)
    assert not any(canary_hit(c, ts, 0.0) for c, ts in alerts) and all(
        canary_hit(c, ts, 1.0) for c, ts in alerts
    )


@pytest.mark.parametrize(
    ("title", "shown"),
    [  # the resolved titles of tests/bot/alerts/test_alerts.py's sources, as parsed
        ("[RESOLVED] HighErrorRate (payments critical)", "HighErrorRate (payments critical)"),
        ("[RESOLVED:2] KubePodCrashLooping", "KubePodCrashLooping"),
        (":large_green_circle: Resolved #4821: Payments API p99 latency", "#4821: Payments API p99 latency"),
        ("Resolved: Checkout error rate", "Checkout error rate"),
        ("Recovered: [P1] High error rate on checkout", "[P1] High error rate on checkout"),
        ("[Recovered on {service:search,env:prod}] Elasticsearch heap", "Elasticsearch heap"),
        ("[OK] Checkout latency alert", "Checkout latency alert"),
        ('OK: "payments-api-HighCPU" in US East', '"payments-api-HighCPU" in US East'),
        ("Okta login failures", "Okta login failures"),
        ("Resolver pool exhausted", "Resolver pool exhausted"),
        ("RESOLVED", "RESOLVED"),
    ],
)
def test_the_resolved_note_drops_the_source_s_own_resolved_marker(title: str, shown: str) -> None:
    from bot.pipeline.answer import without_resolved_marker

    assert without_resolved_marker(title) == shown
