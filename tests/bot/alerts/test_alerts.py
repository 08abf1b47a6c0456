"""Slack messages -> Alert: every source's real shapes, firing and resolved, skips, and hostile input."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.alerts import SOURCES, classify, flatten, normalise_severity, parse_message
from bot.alerts.alert import MAX_TITLE
from bot.alerts.slack_text import MAX_TEXT, decode

TEXT_BOUND = MAX_TITLE + MAX_TEXT + 200  # title, description, "service:..." and separators


def bot(**fields: Any) -> dict[str, Any]:
    """A top-level app message as the Events API delivers it."""
    return {"type": "message", "channel": "C0INC", "ts": "1732600000.000100", "bot_id": "B0APP", **fields}


def att(**fields: Any) -> dict[str, Any]:
    return bot(text="", attachments=[fields])


def parsed(event: dict[str, Any]) -> Any:
    alert = parse_message(event)
    assert alert is not None
    return alert


# --- slack_text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("a &amp; b &lt;tag&gt;", "a & b <tag>"),
        ("see <https://grafana.example.com/d/abc|the dashboard>", "see the dashboard"),
        ("see <https://status.example.com>", "see https://status.example.com"),
        ("ping <@U024BE7LH> and <@U024BE7LH|alice>", "ping @U024BE7LH and @alice"),
        ("in <#C024BE7LR|incidents> and <#C024BE7LR>", "in #incidents and #C024BE7LR"),
        ("<!here> <!channel> <!everyone>", "@here @channel @everyone"),
        ("<!subteam^S0614TZR7|@sre-oncall> look", "@sre-oncall look"),
        ("at <!date^1392734382^{date_short}|Feb 18, 2014>", "at Feb 18, 2014"),
        ("mail <mailto:sre@example.com|sre@example.com>", "mail sre@example.com"),
        (
            "*bold* and **grafana bold** and `code` and ```block```",
            "bold and grafana bold and code and block",
        ),
    ],
)
def test_decode_entities(raw: str, plain: str) -> None:
    assert decode(raw) == plain


def test_flatten_reads_attachments_blocks_and_rich_text_but_not_buttons() -> None:
    event = bot(
        text="notification only",  # with blocks, Slack shows the blocks
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "Header here"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "shown text"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "shown text"}},  # repeated: read once
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Service:* payments"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "ctx <https://x.example/a|link>"}]},
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Resolve"}}],
            },
            {
                "type": "rich_text",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [
                            {"type": "text", "text": "db is "},
                            {"type": "text", "text": "down", "style": {"bold": True}},
                            {"type": "user", "user_id": "U1"},
                            {"type": "link", "url": "https://runbook.example/db", "text": "runbook"},
                        ],
                    },
                    {
                        "type": "rich_text_list",
                        "elements": [
                            {"type": "rich_text_section", "elements": [{"type": "emoji", "name": "fire"}]}
                        ],
                    },
                ],
            },
        ],
        attachments=[
            {
                "color": "danger",
                "pretext": "pre",
                "title": "Att title",
                "title_link": "https://t.example/1",
                "text": "att text",
                "fields": [{"title": "Level", "value": "error"}, {"title": "Env", "value": "error"}],
                "fallback": "not read: the attachment has a title",
                "footer": "Foot 1.0",
            }
        ],
    )
    flat = flatten(event)
    lines = flat.text.split("\n")
    assert lines[:5] == [
        "Header here",
        "shown text",
        "Service: payments",
        "ctx link",
        "db is down@U1runbook",
    ]
    assert ":fire:" in lines
    assert lines[-6:] == ["pre", "Att title", "att text", "Level: error", "Env: error", "Foot 1.0"]
    assert "Resolve" not in flat.text and "not read" not in flat.text and "notification" not in flat.text
    assert flat.urls == ["https://x.example/a", "https://runbook.example/db", "https://t.example/1"]
    assert flat.colors == ["danger"]
    assert "foot 1.0" in flat.sender


def test_flatten_reads_text_when_blocks_show_nothing() -> None:
    buttons_only = [
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Ack"}}]}
    ]
    assert flatten(bot(text="[FIRING:1] X", blocks=buttons_only)).text == "[FIRING:1] X"


def test_flatten_uses_fallback_when_an_attachment_has_nothing_else() -> None:
    assert flatten(att(fallback="[FIRING:1] DiskFull", color="danger")).text == "[FIRING:1] DiskFull"


@pytest.mark.parametrize(
    "event",
    [
        None,
        "text",
        [],
        {"text": None, "attachments": "nope", "blocks": {"a": 1}},
        {"text": 42, "attachments": [None, 1, "x", {"fields": [None, {"title": 3, "value": ["v"]}]}]},
        {"blocks": [{"type": "rich_text", "elements": [[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]}]},
        {"blocks": [{"type": "section", "text": {"text": {"text": "nested wrong"}}, "fields": "x"}]},
    ],
)
def test_flatten_never_raises_on_malformed_input(event: Any) -> None:
    assert isinstance(flatten(event).text, str)
    assert parse_message(event) is None or parse_message(event).source in SOURCES


# --- severity -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("P1", "critical"),
        ("critical", "critical"),
        ("fatal", "critical"),
        ("SEV-1", "critical"),
        ("P2", "high"),
        ("error", "high"),
        ("high", "high"),
        ("P3", "medium"),
        ("warning", "medium"),
        ("Warn", "medium"),
        ("P4", "low"),
        ("P5", "low"),
        ("info", "low"),
        ("low", "low"),
        ("page", None),
        ("none", None),
        ("", None),
        (None, None),
        ("banana", None),
    ],
)
def test_normalise_severity(hint: str | None, expected: str | None) -> None:
    assert normalise_severity(hint) == expected


def check(event: dict[str, Any], source: str, status: str, **expected: Any) -> Any:
    """Parse and compare the fields a test names (title_has: a substring of the title)."""
    alert, reason = classify(event)
    assert alert is not None, reason
    assert (alert.source, alert.status, reason) == (source, status, source)
    for key, value in expected.items():
        if key == "title_has":
            assert value in alert.incident.title
        elif key in ("service", "severity"):
            assert getattr(alert.incident, key) == value, key
        else:
            assert getattr(alert, key) == value, key
    assert alert.incident.title in alert.incident.text
    if alert.source_severity:  # the hint is a feature: the models must see it
        assert alert.source_severity.lower() in alert.incident.text.lower()
    return alert


def same_alert(firing: Any, resolved: Any) -> None:
    assert firing.status == "firing" and resolved.status == "resolved"
    assert firing.fingerprint and firing.fingerprint == resolved.fingerprint


# --- Alertmanager -------------------------------------------------------------------------------------

AM_LINK = "http://alertmanager.monitoring:9093/#/alerts?receiver=slack-incidents"


def am_default(status: str) -> dict[str, Any]:
    """Alertmanager's default slack_config: title and link only (the default text is empty)."""
    title = (
        "[FIRING:2] HighErrorRate (payments critical)"
        if status == "firing"
        else ("[RESOLVED] HighErrorRate (payments critical)")
    )
    color = "danger" if status == "firing" else "good"
    return bot(
        subtype="bot_message",
        username="alertmanager",
        text="",
        attachments=[
            {
                "title": title,
                "title_link": AM_LINK,
                "text": "",
                "fallback": f"{title} | {AM_LINK}",
                "color": color,
                "mrkdwn_in": ["fallback", "pretext", "text"],
            }
        ],
    )


def am_custom(status: str) -> dict[str, Any]:
    """The popular custom template: summary, description and every label in the text."""
    head = "[FIRING:1] KubePodCrashLooping" if status == "firing" else "[RESOLVED] KubePodCrashLooping"
    text = (
        "*Alert:* Pod orders/orders-7d9f crash looping - `warning`\n"
        "*Description:* Pod orders/orders-7d9f (api) is restarting 2.3 times / 10 minutes.\n"
        "*Details:*\n"
        " • *alertname:* `KubePodCrashLooping`\n • *container:* `api`\n • *namespace:* `orders`\n"
        " • *pod:* `orders-7d9f`\n • *severity:* `warning`\n"
    )
    return att(title=head, title_link=AM_LINK, text=text, color="danger" if status == "firing" else "good")


def test_alertmanager_default_template_firing_and_resolved() -> None:
    firing = check(
        am_default("firing"),
        "alertmanager",
        "firing",
        service="payments",
        severity="critical",
        source_severity="critical",
        url=AM_LINK,
        title_has="HighErrorRate",
    )
    resolved = check(am_default("resolved"), "alertmanager", "resolved", service="payments")
    same_alert(firing, resolved)
    assert firing.incident.title == "[FIRING:2] HighErrorRate (payments critical)"


def test_alertmanager_custom_template_reads_labels() -> None:
    firing = check(am_custom("firing"), "alertmanager", "firing", service="api", severity="medium")
    assert (
        "namespace=orders" in firing.incident.description and "pod=orders-7d9f" in firing.incident.description
    )
    same_alert(firing, check(am_custom("resolved"), "alertmanager", "resolved"))


def test_alertmanager_text_only_and_blocks_variants() -> None:
    text_only = bot(
        subtype="bot_message",
        text="[FIRING:1] DiskWillFillIn4Hours (db-prod-3 node-exporter)\nsummary: disk /data 97% full\n"
        "service=payments-db\nseverity=critical",
    )
    alert = check(text_only, "alertmanager", "firing", service="payments-db", severity="critical")
    blocks = bot(
        text="[RESOLVED] DiskWillFillIn4Hours (db-prod-3 node-exporter)",
        blocks=[
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*[RESOLVED] DiskWillFillIn4Hours (db-prod-3 node-exporter)*\n"
                    "service=payments-db",
                },
            }
        ],
    )
    same_alert(alert, check(blocks, "alertmanager", "resolved", service="payments-db"))


# --- Grafana ------------------------------------------------------------------------------------------


def grafana_unified(status: str) -> dict[str, Any]:
    word = "Firing" if status == "firing" else "Resolved"
    title = (
        "[FIRING:1] HighCPU Infra (web-1 critical checkout)"
        if status == "firing"
        else ("[RESOLVED] HighCPU Infra (web-1 critical checkout)")
    )
    text = (
        f"**{word}**\n\nValue: B=97.31\nLabels:\n - alertname = HighCPU\n - grafana_folder = Infra\n"
        " - instance = web-1\n - service = checkout\n - severity = critical\nAnnotations:\n"
        " - summary = CPU above 90% for 5m on web-1\n"
        "Source: https://grafana.example.com/alerting/grafana/bdq1x/view?orgId=1\n"
        "Silence: https://grafana.example.com/alerting/silence/new?alertmanager=grafana\n"
        "Dashboard: https://grafana.example.com/d/node/node-exporter?orgId=1\n"
    )
    return bot(
        username="grafana",
        text="",
        attachments=[
            {
                "title": title,
                "title_link": "https://grafana.example.com/alerting/list",
                "text": text,
                "fallback": title,
                "color": "#D63232" if status == "firing" else "#36a64f",
                "footer": "Grafana v10.4.1",
                "footer_icon": "https://grafana.com/static/assets/img/fav32.png",
                "ts": 1732600000,
            }
        ],
    )


def test_grafana_unified_firing_and_resolved() -> None:
    firing = check(
        grafana_unified("firing"),
        "grafana",
        "firing",
        service="checkout",
        severity="critical",
        url="https://grafana.example.com/alerting/list",
        title_has="HighCPU Infra",
    )
    assert (
        "instance=web-1" in firing.incident.description
        and "summary=CPU above 90%" in firing.incident.description
    )
    same_alert(firing, check(grafana_unified("resolved"), "grafana", "resolved", service="checkout"))


def test_grafana_unified_text_only_without_footer_is_still_grafana() -> None:
    text = (
        "[FIRING:1] QueueLag Kafka\nLabels:\n - alertname = QueueLag\n - grafana_folder = Kafka\n"
        " - app = orders"
    )
    check(bot(text=text), "grafana", "firing", service="orders")


def test_grafana_legacy_alerting_and_ok() -> None:
    def legacy(state: str, color: str) -> dict[str, Any]:
        return att(
            title=f"[{state}] Checkout latency alert",
            title_link="https://grafana.example.com/d/abc/checkout?tab=alert&viewPanel=4&orgId=1",
            text="p99 latency above 2s",
            fields=[{"title": "p99", "value": "2.73", "short": True}],
            footer="Grafana v7.5.17",
            color=color,
        )

    firing = check(legacy("Alerting", "#D63232"), "grafana", "firing", service="checkout", severity=None)
    same_alert(firing, check(legacy("OK", "#36a64f"), "grafana", "resolved"))
    check(legacy("No Data", "#888888"), "grafana", "firing")


# --- Datadog ------------------------------------------------------------------------------------------

DD_MONITOR = "https://app.datadoghq.com/monitors/98765432?group=service%3Acheckout&from_ts=1732599700000"


def datadog(title: str, text: str, color: str, link: str = DD_MONITOR) -> dict[str, Any]:
    return bot(
        username="Datadog",
        text="",
        attachments=[{"title": title, "title_link": link, "text": text, "color": color, "fallback": title}],
    )


DD_TEXT = (
    "Error rate on checkout is above 5% for the last 5 minutes. @slack-incidents @pagerduty-Checkout\n"
    "```avg(last_5m):sum:trace.http.request.errors{service:checkout,env:prod} / "
    "sum:trace.http.request.hits{service:checkout,env:prod} > 0.05```\n"
    "The monitor was last triggered at Tue Nov 26 2024 05:48:10 UTC."
)


def test_datadog_triggered_and_recovered_with_priority() -> None:
    firing = check(
        datadog("Triggered: [P1] High error rate on checkout", DD_TEXT, "#d12e2e"),
        "datadog",
        "firing",
        service="checkout",
        severity="critical",
        source_severity="P1",
        fingerprint="datadog:98765432",
        url=DD_MONITOR,
    )
    assert "@pagerduty-Checkout" in firing.incident.description  # mentioned, but not a PagerDuty message
    resolved = check(
        datadog("Recovered: [P1] High error rate on checkout", DD_TEXT, "#2eb67d"), "datadog", "resolved"
    )
    same_alert(firing, resolved)


def test_datadog_multi_alert_scope_and_warn() -> None:
    title = "[Triggered on {service:search,env:prod}] Elasticsearch heap above 85%"
    firing = check(datadog(title, "heap 91% on es-data-2", "danger"), "datadog", "firing", service="search")
    recovered = datadog(title.replace("Triggered", "Recovered"), "heap 60% on es-data-2", "good")
    same_alert(firing, check(recovered, "datadog", "resolved", service="search"))
    other = datadog(title.replace("service:search", "service:orders"), "heap 91%", "danger")
    assert parsed(other).fingerprint != firing.fingerprint  # one monitor, another group: another alert
    warn = check(
        datadog("[Warn] Disk usage above 80% on db-prod-3", "disk 83%", "warning"),
        "datadog",
        "firing",
        severity="medium",
        source_severity="Warn",
    )
    assert warn.fingerprint == "datadog:98765432"


def test_datadog_blocks_and_text_only_without_link() -> None:
    blocks = bot(
        bot_profile={"name": "Datadog"},
        text="Triggered: [P2] Payments p99 latency above 2s",
        blocks=[
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*<https://app.datadoghq.eu/monitors/4242|"
                    "Triggered: [P2] Payments p99 latency above 2s>*\n"
                    "p99 2.7s service:payments env:prod",
                },
            }
        ],
    )
    check(blocks, "datadog", "firing", service="payments", severity="high", fingerprint="datadog:4242")
    relay = bot(text="Recovered: [P2] Payments p99 latency above 2s\np99 0.4s")
    alert = check(relay, "datadog", "resolved", severity="high")
    assert alert.fingerprint == "datadog:payments p99 latency above 2s"


# --- Sentry -------------------------------------------------------------------------------------------

SENTRY_ISSUE = "https://acme.sentry.io/issues/4509871234/?referrer=slack&alert_rule_id=77&alert_type=issue"


def sentry_issue(extra_text: str = "", color: str = "#E03E2F") -> dict[str, Any]:
    return bot(
        text="",
        attachments=[
            {
                "title": "ZeroDivisionError: division by zero",
                "title_link": SENTRY_ISSUE,
                "text": "app/services/cart.py in compute_discount" + extra_text,
                "fields": [
                    {"title": "environment", "value": "production", "short": True},
                    {"title": "level", "value": "error", "short": True},
                    {"title": "release", "value": "backend@2024.11.26", "short": True},
                ],
                "footer": "<https://acme.sentry.io/issues/4509871234/?referrer=slack|BACKEND-4Z> via "
                "<https://acme.sentry.io/alerts/rules/backend/77/details/|Errors in checkout>",
                "footer_icon": "https://sentry-brand.storage.googleapis.com/sentry-logo-black.png",
                "fallback": "[backend] ZeroDivisionError: division by zero",
                "color": color,
                "actions": [{"name": "status", "text": "Resolve", "type": "button", "value": "resolved"}],
            }
        ],
    )


def test_sentry_issue_alert_and_resolution() -> None:
    firing = check(
        sentry_issue(),
        "sentry",
        "firing",
        service="backend",
        severity="high",
        source_severity="error",
        fingerprint="sentry:issue:4509871234",
        url=SENTRY_ISSUE,
        title_has="ZeroDivisionError",
    )
    assert "environment=production" in firing.incident.description
    resolved = check(sentry_issue("\nResolved by alice", "#2C6E0F"), "sentry", "resolved")
    same_alert(firing, resolved)


def test_sentry_blocks_format() -> None:
    def blocks(state: str) -> dict[str, Any]:
        return bot(
            bot_profile={"name": "Sentry"},
            text="[checkout] TimeoutError: upstream timed out",
            blocks=[
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": ":red_circle: <https://acme.sentry.io/issues/55501/?referrer=issue_alert-slack|"
                        "*TimeoutError: upstream timed out*>",
                    },
                },
                {"type": "section", "text": {"type": "mrkdwn", "text": "```payments/client.py in charge```"}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": f"State: *{state}*   First Seen: *2h ago*"}],
                },
                {
                    "type": "actions",
                    "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Resolve"}}],
                },
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": "CHECKOUT-1K | production | Alert: p1 rule"}],
                },
            ],
        )

    firing = check(blocks("New"), "sentry", "firing", fingerprint="sentry:issue:55501")
    assert firing.incident.title == "TimeoutError: upstream timed out"  # blocks shown, text only notifies
    assert firing.incident.service == "checkout"
    same_alert(firing, check(blocks("Resolved"), "sentry", "resolved"))


def test_sentry_metric_alert_critical_and_resolved() -> None:
    def metric(state: str) -> dict[str, Any]:
        return att(
            title=f"{state}: Checkout error rate",
            text="12 events in the last 5 minutes",
            title_link="https://acme.sentry.io/organizations/acme/alerts/rules/details/311/?alert=9001",
            footer="Sentry Incident",
            color="#E03E2F",
        )

    firing = check(
        metric("Critical"),
        "sentry",
        "firing",
        severity="critical",
        service="checkout",
        fingerprint="sentry:rule:311",
    )
    same_alert(firing, check(metric("Resolved"), "sentry", "resolved"))


# --- CloudWatch ---------------------------------------------------------------------------------------


def test_cloudwatch_sns_relay_subject() -> None:
    def relay(state: str) -> dict[str, Any]:
        return bot(
            text=f'{state}: "payments-api-HighCPU" in US East (N. Virginia)\n'
            "Threshold Crossed: 1 out of the last 1 datapoints [93.2] was greater than the threshold (80.0)\n"
            "Dimensions: ServiceName = payments-api, ClusterName = prod"
        )

    firing = check(
        relay("ALARM"),
        "cloudwatch",
        "firing",
        service="payments-api",
        severity=None,
        source_severity=None,
        fingerprint="cloudwatch:payments-api-highcpu|us-east-1",
    )
    same_alert(firing, check(relay("OK"), "cloudwatch", "resolved"))
    check(relay("INSUFFICIENT_DATA"), "cloudwatch", "firing")


def chatbot(state_ok: bool) -> dict[str, Any]:
    reason = "was not greater than" if state_ok else "was greater than"
    return bot(
        bot_profile={"name": "AWS Chatbot"},
        text="",
        attachments=[
            {
                "color": "good" if state_ok else "danger",
                "title": "CloudWatch Alarm | orders-db-FreeStorageLow | us-east-1 | Account: 123456789012",
                "title_link": "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/orders-db-FreeStorageLow",
                "text": "Free storage under 10%\n"
                f"Threshold Crossed: 1 datapoint [4.2 (26/11/24 05:40:00)] {reason} the "
                "threshold (10.0).\nDBInstanceIdentifier: orders-db",
                "footer": "Amazon CloudWatch",
            }
        ],
    )


def test_cloudwatch_aws_chatbot() -> None:
    firing = check(
        chatbot(False),
        "cloudwatch",
        "firing",
        service="orders-db",
        fingerprint="cloudwatch:orders-db-freestoragelow|us-east-1",
    )
    assert "state=ALARM" in firing.incident.description
    assert firing.url and firing.url.startswith("https://console.aws.amazon.com/cloudwatch")
    same_alert(firing, check(chatbot(True), "cloudwatch", "resolved"))


def test_cloudwatch_dimensions_value_first_and_most_specific() -> None:
    """AWS writes a dimension value-first too; of several, the resource itself (the instance, not its
    cluster) is the service."""

    def raw(dimensions: str) -> dict[str, Any]:
        return bot(
            text='{"AlarmName":"orders-db-cpu","NewStateValue":"ALARM","Region":"US East (N. Virginia)",'
            f'"Trigger":{{"MetricName":"CPUUtilization","Dimensions":[{dimensions}],"Period":60}}}}'
        )

    value_first = parsed(raw('{"value":"orders-db-1","name":"DBInstanceIdentifier"}'))
    assert value_first.incident.service == "orders-db-1"
    both = parsed(
        raw(
            '{"value":"orders","name":"DBClusterIdentifier"},{"name":"DBInstanceIdentifier","value":"orders-db-2"}'
        )
    )
    assert both.incident.service == "orders-db-2"
    assert parsed(raw("")).incident.service == "orders-db-cpu"  # no dimension: the alarm names it


def test_cloudwatch_subject_and_chatbot_of_one_alarm_share_a_fingerprint() -> None:
    sns = parsed(bot(text='ALARM: "orders-db-FreeStorageLow" in US East (N. Virginia)'))
    assert sns.fingerprint == parsed(chatbot(False)).fingerprint


def test_cloudwatch_raw_json_and_relay_fields() -> None:
    def raw(state: str) -> dict[str, Any]:
        return bot(
            text='{"AlarmName":"checkout-5xx","AlarmDescription":"5xx above 1%",'
            '"AWSAccountId":"123456789012",'
            f'"NewStateValue":"{state}","NewStateReason":"Threshold Crossed","Region":"EU (Ireland)",'
            '"OldStateValue":"OK","Trigger":{"MetricName":"HTTPCode_Target_5XX_Count",'
            '"Dimensions":[{"name":"LoadBalancer","value":"app/checkout-alb/50dc6c495c0c9188"}]}}'
        )

    firing = check(raw("ALARM"), "cloudwatch", "firing", fingerprint="cloudwatch:checkout-5xx|eu-west-1")
    assert firing.incident.service == "app/checkout-alb/50dc6c495c0c9188"
    same_alert(firing, check(raw("OK"), "cloudwatch", "resolved"))

    def fields(old: str, new: str) -> dict[str, Any]:  # terraform-aws-notify-slack style
        return att(
            color="danger",
            fallback="A CloudWatch Alarm has changed state",
            fields=[
                {"title": "Alarm Name", "value": "search-latency", "short": True},
                {"title": "Alarm Description", "value": "p99 above 1s", "short": False},
                {"title": "Old State", "value": old, "short": True},
                {"title": "Current State", "value": new, "short": True},
                {
                    "title": "Link to Alarm",
                    "value": "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarm:alarmFilter=ANY;name=search-latency",
                },
            ],
        )

    firing = check(fields("OK", "ALARM"), "cloudwatch", "firing", service="search-latency")
    same_alert(firing, check(fields("ALARM", "OK"), "cloudwatch", "resolved"))


# --- PagerDuty ----------------------------------------------------------------------------------------

PD_URL = "https://acme.pagerduty.com/incidents/Q2W3E4R5T6Y7U8"


def pagerduty_blocks(state: str, emoji: str) -> dict[str, Any]:
    return bot(
        bot_profile={"name": "PagerDuty"},
        text=f"{state}: #4821 Payments API p99 latency above 2s",
        blocks=[
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{emoji} *{state}* <{PD_URL}|#4821: Payments API p99 latency above 2s>",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Service:* payments-api"},
                    {"type": "mrkdwn", "text": "*Urgency:* High"},
                    {"type": "mrkdwn", "text": "*Priority:* P1"},
                    {"type": "mrkdwn", "text": "*Assigned:* <@U0ALICE>"},
                ],
            },
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Resolve"}}],
            },
        ],
    )


def test_pagerduty_triggered_acknowledged_resolved() -> None:
    firing = check(
        pagerduty_blocks("Triggered", ":red_circle:"),
        "pagerduty",
        "firing",
        service="payments-api",
        severity="critical",
        source_severity="P1",
        fingerprint="pagerduty:#4821",
        url=PD_URL,
        title_has="Payments API p99 latency",
    )
    ack = check(pagerduty_blocks("Acknowledged", ":large_yellow_circle:"), "pagerduty", "firing")
    assert ack.fingerprint == firing.fingerprint
    same_alert(firing, check(pagerduty_blocks("Resolved", ":large_green_circle:"), "pagerduty", "resolved"))


def test_pagerduty_attachment_and_plain_relay() -> None:
    legacy = att(
        color="#a30200",
        fallback="Triggered #912 Orders queue backlog",
        title="#912: Orders queue backlog",
        title_link="https://acme.pagerduty.com/incidents/PABC123",
        text="Triggered by Datadog",
        fields=[{"title": "Service", "value": "orders"}, {"title": "Urgency", "value": "low"}],
    )
    firing = check(
        legacy, "pagerduty", "firing", service="orders", severity="low", fingerprint="pagerduty:#912"
    )
    relay = bot(text="Resolved #912: Orders queue backlog\nService: orders")
    same_alert(firing, check(relay, "pagerduty", "resolved", service="orders"))


# --- people -------------------------------------------------------------------------------------------


def test_human_messages() -> None:
    alert = check(
        bot(user="U0BOB", text="checkout is throwing 500s for everyone", bot_id=None),
        "human",
        "firing",
        service="checkout",
        severity=None,
        fingerprint=None,
        url=None,
    )
    assert alert.incident.title == "checkout is throwing 500s for everyone"
    assert alert.incident.text == "checkout is throwing 500s for everyone  service:checkout"

    typed = {
        "type": "message",
        "user": "U0BOB",
        "ts": "1.2",
        "text": "<!here> SEV2: login is slow\nsince 14:05 deploy",
        "blocks": [
            {
                "type": "rich_text",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [
                            {"type": "broadcast", "range": "here"},
                            {"type": "text", "text": " SEV2: login is slow\nsince 14:05 deploy"},
                        ],
                    }
                ],
            }
        ],
    }
    alert = check(typed, "human", "firing", service="login", severity="high", source_severity="SEV2")
    assert alert.incident.title == "SEV2: login is slow"
    assert alert.incident.description == "since 14:05 deploy"  # the rich_text copy is not read twice

    long_line = "the nightly export is failing again " * 30
    alert = parsed(bot(user="U0BOB", text=long_line))
    assert len(alert.incident.title) <= MAX_TITLE and long_line.strip() in alert.incident.description


# --- skipped messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {"type": "message", "subtype": "message_changed", "message": {"text": "[FIRING:1] X"}, "ts": "2"},
            "edit",
        ),
        ({"type": "message", "subtype": "message_deleted", "deleted_ts": "1", "ts": "2"}, "delete"),
        (
            {
                "type": "message",
                "subtype": "channel_join",
                "user": "U1",
                "text": "<@U1> has joined",
                "ts": "2",
            },
            "join",
        ),
        (
            {
                "type": "message",
                "subtype": "channel_leave",
                "user": "U1",
                "text": "<@U1> has left",
                "ts": "2",
            },
            "leave",
        ),
        (
            {"type": "message", "subtype": "channel_topic", "text": "set the topic", "ts": "2"},
            "channel event",
        ),
        ({"type": "message", "user": "U1", "text": "on it", "ts": "2.5", "thread_ts": "1.0"}, "thread reply"),
        (
            {
                "type": "message",
                "subtype": "thread_broadcast",
                "text": "fixed",
                "ts": "2.5",
                "thread_ts": "1.0",
            },
            "thread reply",
        ),
        ({"type": "message", "user": "UBOT", "text": "Severity: high", "ts": "2"}, "own message"),
        ({"type": "message", "bot_id": "BOURS", "text": "Severity: high", "ts": "2"}, "own message"),
        ({"type": "message", "user": "U1", "text": "  ", "ts": "2"}, "empty"),
        ({"type": "message", "user": "U1", "text": "<!date^1392734382^{date}>", "ts": "2"}, "empty"),
        ({"type": "message", "bot_id": "B1", "attachments": [{"color": "danger"}], "ts": "2"}, "empty"),
        ({"type": "reaction_added", "reaction": "eyes"}, "not a message"),
        ("not even a dict", "not a message"),
    ],
)
def test_skipped_messages_and_why(event: Any, reason: str) -> None:
    assert classify(event, bot_user_id="UBOT", bot_id="BOURS") == (None, reason)
    assert parse_message(event, bot_user_id="UBOT", bot_id="BOURS") is None


def test_thread_parent_and_app_messages_are_candidates() -> None:
    parent = {"type": "message", "user": "U1", "text": "db down", "ts": "1.0", "thread_ts": "1.0"}
    assert parse_message(parent) is not None
    for malformed in ([], "", 5, {"ts": "0.5"}):  # not a timestamp string: not taken for a reply
        assert parse_message({**parent, "thread_ts": malformed}) is not None
    modern_app = {"type": "message", "bot_id": "B9", "app_id": "A9", "text": "[FIRING:1] X", "ts": "1"}
    assert parsed(modern_app).source == "alertmanager"
    assert parse_message(modern_app, bot_id="B9") is None
    # Through the app's own incoming webhook: its bot_id, but a bot_message without a user: an alert.
    own_webhook = {**modern_app, "subtype": "bot_message"}
    assert parse_message(own_webhook, bot_user_id="U9", bot_id="B9") is not None
    assert parse_message({**own_webhook, "user": "U9"}, bot_user_id="U9", bot_id="B9") is None


# --- hostile input ------------------------------------------------------------------------------------

_SLACKISH = st.sampled_from(
    [
        "text",
        "title",
        "fields",
        "value",
        "elements",
        "type",
        "blocks",
        "attachments",
        "fallback",
        "footer",
        "section",
        "rich_text",
        "rich_text_section",
        "context",
        "header",
        "color",
        "title_link",
        "url",
        "user_id",
    ]
)
_TEXTS = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "[FIRING:3] X (a b)",
            "[RESOLVED] X",
            "Triggered: [P1] y",
            "Recovered: z",
            "[OK] q",
            'ALARM: "n" in US East (N. Virginia)',
            "CloudWatch Alarm | a | b |",
            "Resolved #12: x",
            "<https://app.datadoghq.com/monitors/1|m>",
            "<https://x.sentry.io/issues/2/|s>",
            "<@U1|",
            "<!subteam^S1>",
            "&amp;&lt;",
            "*" * 50,
            "<" * 50,
            '{"AlarmName": 1}',
        ]
    ),
)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | _TEXTS,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(_SLACKISH | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=60,
)


# Keys that route a message (an edit, a reply, a hidden or own message): tests above cover them, and an
# arbitrary value under one of them makes a skip, not an alert, so the random extras leave them out.
_ROUTING = {"type", "subtype", "hidden", "user", "bot_id", "thread_ts", "ts", "text", "attachments", "blocks"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_JSONISH,
    attachments=_JSONISH,
    blocks=_JSONISH,
    extra=st.dictionaries(st.text(max_size=10).filter(lambda k: k not in _ROUTING), _JSONISH),
)
@pytest.mark.slow
def test_random_structures_never_raise_and_stay_bounded(
    text: Any, attachments: Any, blocks: Any, extra: Any
) -> None:
    event = {
        **extra,
        "type": "message",
        "ts": "1",
        "text": text,
        "attachments": attachments,
        "blocks": blocks,
    }
    alert, reason = classify(event)
    if alert is None:
        assert reason == "empty"
        return
    assert alert.source == reason and alert.source in SOURCES and alert.status in ("firing", "resolved")
    assert alert.incident.severity in (None, "critical", "high", "medium", "low")
    assert len(alert.incident.title) <= MAX_TITLE and len(alert.incident.text) <= TEXT_BOUND


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_random_unicode_text_never_raises(text: str) -> None:
    alert = parse_message({"type": "message", "user": "U1", "ts": "1", "text": text})
    assert alert is None or len(alert.incident.text) <= TEXT_BOUND


def timed(event: dict[str, Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    alert = parse_message(event)
    return alert, time.perf_counter() - start


def test_a_40000_character_message_is_quick_and_truncated() -> None:
    lines = (f"pod-{i} error rate {i % 97}% on <https://x.example/{i}|pod> &amp; more" for i in range(800))
    body = "[FIRING:1] HighErrorRate (payments critical)\n" + "\n".join(lines)
    assert len(body) > 40_000
    alert, seconds = timed(bot(text=body[:40_000]))
    assert alert is not None and alert.source == "alertmanager"
    assert seconds < 0.5
    assert len(alert.incident.text) <= TEXT_BOUND and "[truncated]" in alert.incident.description
    assert len(alert.incident.text) > MAX_TEXT - 1_000  # cut at the cap, not before


def test_a_megabyte_of_garbage_attachments_is_quick() -> None:
    junk = [
        {
            "title": "x" * 1_000,
            "text": "<" * 500 + "*" * 500,
            "fields": [{"title": "k", "value": "v" * 100}] * 5,
            "blocks": [{"type": "rich_text", "elements": [[[{"type": "text", "text": "y" * 200}]]]}],
        }
        for _ in range(600)
    ]
    one_string = [{"text": "z" * 1_000_000}]
    for attachments in (junk, one_string):
        alert, seconds = timed(bot(text="", attachments=attachments))
        assert alert is not None and len(alert.incident.text) <= TEXT_BOUND
        assert "[truncated]" in alert.incident.text  # read up to the budget, and said so
        assert seconds < 0.5
