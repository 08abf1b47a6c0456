"""Datadog monitor notifications from Datadog's Slack integration.

The title carries the transition and, when set, the monitor's priority: ``Triggered: [P1] High error rate
on checkout``, ``[P2] Recovered: ...``, ``[Warn] Disk almost full``, and for multi-alert monitors the
group in braces, ``[Triggered on {service:checkout,env:prod}] High error rate``. The title links to the
monitor (``app.datadoghq.com/monitors/123456``); the text is the monitor's message, often with
``@slack-...`` / ``@pagerduty-...`` handles and ``service:`` tags.
"""

from __future__ import annotations

import re
from typing import Any

from .alert import Alert, make_alert
from .fields import as_description, catalog_service, parse_labels, remove_line, service_from
from .slack_text import Flat

SOURCE = "datadog"
_STATE = (
    r"(?P<state>Re-?Triggered|Triggered|Warn(?:ing)?(?: Recovered)?|Recovered|No Data(?: Recovered)?"
    r"|Re-?notif(?:y|ication)|Alert Recovered|Alert)"
)
TITLE = re.compile(
    r"^\s*(?::[\w+-]+:\s*)*(?:\[(?P<p1>P[1-5])\]\s*)?\[?" + _STATE + r"\b"
    r"(?: on \{(?P<scope>[^}\n]{0,300})\})?\]?\s*:?\s*(?:\[(?P<p2>P[1-5])\]\s*)?(?P<title>\S.*)$",
    re.IGNORECASE | re.MULTILINE,
)
# Without a Datadog link or sender, only a title no person would type counts.
_STRICT = re.compile(r"^\s*(?:\[P[1-5]\]\s*)?\[\w[\w -]* on \{|^\s*\w[\w -]*: \[P[1-5]\]", re.MULTILINE)
_MONITOR = re.compile(r"/monitors/(\d+)|\bmonitor(?: id)?[:# ]+(\d{3,})", re.IGNORECASE)
_SERVICE_TAG = re.compile(r"\bservice:([\w.\-/]{1,100})")


def _is_datadog_url(url: str) -> bool:
    return "datadoghq." in url or "ddog-gov.com" in url


def detect(message: dict[str, Any], flat: Flat) -> bool:
    if "datadog" in flat.sender or any(_is_datadog_url(u) for u in flat.urls):
        return bool(TITLE.search(flat.head)) or "datadog" in flat.sender
    return bool(_STRICT.search(flat.head))


def parse(message: dict[str, Any], flat: Flat) -> Alert:
    lines = flat.text.split("\n")
    match = TITLE.search(flat.head)
    title_line = match.group(0).strip() if match else lines[0]
    state = (match.group("state") if match else "").lower()
    priority = (match.group("p1") or match.group("p2")) if match else None
    scope = (match.group("scope") or "") if match else ""
    rest = remove_line(lines, title_line)
    labels = parse_labels(rest)
    urls = [u for u in flat.urls if _is_datadog_url(u)] or flat.urls
    monitor = next((m.group(1) or m.group(2) for m in map(_MONITOR.search, [*urls, flat.text]) if m), None)
    name = match.group("title") if match else title_line
    identity = monitor or " ".join(re.sub(r"\[P[1-5]\]", "", name).lower().split())[:200]
    warned = state.startswith("warn") and "recovered" not in state
    hint = priority or (match.group("state") if match and warned else None)  # as written: "Warn"
    tagged = _SERVICE_TAG.search(scope) or _SERVICE_TAG.search(flat.text[:5_000])
    description = as_description(rest)
    if scope:
        description = f"{scope.replace(',', ' ')}\n{description}"
    return make_alert(
        SOURCE,
        status="resolved" if "recovered" in state else "firing",
        title=title_line,
        description=description,
        service=(tagged.group(1) if tagged else None) or service_from(labels) or catalog_service(name),
        fingerprint=f"{SOURCE}:{identity}" + (f"|{scope.strip().lower()}" if scope.strip() else ""),
        source_severity=hint,
        url=urls[0] if urls else None,
    )
