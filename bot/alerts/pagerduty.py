"""PagerDuty's Slack app.

An incident notification names the transition, the incident number and title, linking to the incident
(``Triggered #1234: Payments API latency high`` -> ``acme.pagerduty.com/incidents/Q2W3E4R5T6``), then
fields: ``Service``, ``Urgency`` (high/low), ``Priority`` (P1..), ``Assigned to``. Later transitions
(``Acknowledged``, ``Escalated``, ``Resolved``) repeat the number and title.
"""

from __future__ import annotations

import re
from typing import Any

from .alert import Alert, make_alert
from .fields import as_description, catalog_service, parse_labels, remove_line, service_from
from .slack_text import Flat

SOURCE = "pagerduty"
_STATE = re.compile(
    r"\b(Re-?triggered|Triggered|Acknowledged|Unacknowledged|Escalated|Reassigned|Resolved)\b", re.IGNORECASE
)
_HEADLINE = re.compile(
    r"^\W{0,10}(?:Re-?triggered|Triggered|Acknowledged|Unacknowledged|Escalated|Reassigned|Resolved)\b"
    r"[^\n]{0,60}#\d{1,10}",
    re.IGNORECASE | re.MULTILINE,
)
_NUMBER = re.compile(r"#(\d{1,10})\b")
_INCIDENT_URL = re.compile(r"pagerduty\.com/incidents/([A-Z0-9]{5,20})")


def detect(message: dict[str, Any], flat: Flat) -> bool:
    return (
        "pagerduty" in flat.sender
        or any(_INCIDENT_URL.search(u) for u in flat.urls)
        or bool(_HEADLINE.search(flat.head))
    )


def parse(message: dict[str, Any], flat: Flat) -> Alert:
    lines = flat.text.split("\n")
    title_line = next((line for line in lines[:10] if _NUMBER.search(line)), lines[0])
    rest = remove_line(lines, title_line)
    labels = parse_labels(rest)
    state = _STATE.search(title_line) or _STATE.search(flat.head)
    number = _NUMBER.search(title_line)
    incident = next((m.group(1) for m in map(_INCIDENT_URL.search, flat.urls) if m), None)
    # The number is printed on every transition; the link may be missing from a plain-text relay.
    identity = f"#{number.group(1)}" if number else incident
    if identity is None:
        identity = " ".join(_STATE.sub("", title_line).lower().split())[:200]
    name = title_line[number.end() :].lstrip(" :-)") if number else title_line
    hint = labels.get("priority") or labels.get("urgency") or labels.get("severity")
    return make_alert(
        SOURCE,
        status="resolved" if state and state.group(1).lower() == "resolved" else "firing",
        title=title_line,
        description=as_description(rest),
        service=labels.get("service")
        or labels.get("impacted_service")
        or service_from(labels)
        or catalog_service(name),
        fingerprint=f"{SOURCE}:{identity}",
        source_severity=hint,
        url=next((u for u in flat.urls if "pagerduty.com" in u), None),
    )
