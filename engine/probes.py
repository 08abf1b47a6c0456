"""Fixed probe texts: the smoke prediction at load and the fused-scorer check run on these."""

from __future__ import annotations

from engine.incident import incident_text

PROBE_TEXTS: tuple[str, ...] = (
    incident_text(
        "[FIRING:3] HighErrorRate payments (critical)",
        "error rate 34.5% for 12m on payments-7f9c",
        "payments",
    ),
    incident_text(
        "[P2] Triggered: p99 latency above 2s on checkout", "avg:trace.http.request.duration 2.4s", "checkout"
    ),
    incident_text(
        'ALARM: "disk-usage-high" in us-east-1', "DiskSpaceUtilization 97% on ip-10-0-3-17", "backup-job"
    ),
    incident_text(
        "checkout is throwing 500s for everyone", "started right after the 14:05 deploy", "checkout"
    ),
    incident_text(
        "TypeError: Cannot read properties of undefined", "level: error, 1,204 events, 312 users", None
    ),
    incident_text("Certificate for api.example.com expires in 3 days", "", "api-gateway"),
    incident_text("Replication lag 45s on orders-db replica 2/3", "primary healthy", "orders-db"),
    incident_text(
        "Stripe API returning 503", "upstream provider incident, 18% of charges failing", "payments"
    ),
    incident_text("", "", None),
    incident_text("ünïcödé 🚨 ALERT", "\t\n", "ünknown-svc"),
)
