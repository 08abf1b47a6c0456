"""Grafana's Slack contact point.

Grafana Alerting (8+) renders Alertmanager's title (``[FIRING:1] HighCPU Infra (web-1 critical)``) and a
text listing each alert (``Value: A=97``, ``Labels:`` / ``Annotations:`` as `` - name = value``,
``Source:``/``Silence:``/``Dashboard:`` links) with a ``Grafana v10...`` footer. Legacy dashboard alerts
(Grafana 7 and earlier) post ``[Alerting] High CPU``, ``[OK] High CPU``, ``[No Data] ...`` with the rule
message as text and the metric values as fields.
"""

from __future__ import annotations

import re
from typing import Any

from .alert import Alert, make_alert
from .alertmanager import TITLE, described, group_key
from .fields import catalog_service, parse_labels, remove_line, service_from
from .slack_text import Flat

SOURCE = "grafana"
_LEGACY = re.compile(
    r"^\s*(?::[\w+-]+:\s*)*\[(?P<state>Alerting|OK|No Data|Pending|Keeping state)\]\s*(?P<rule>.+)$",
    re.IGNORECASE | re.MULTILINE,
)


def detect(message: dict[str, Any], flat: Flat) -> bool:
    if _LEGACY.search(flat.head):
        return True
    # Alertmanager posts the same title: tell them apart by Grafana's footer, folder label and links.
    return bool(TITLE.search(flat.head)) and (
        "grafana" in flat.sender
        or "grafana_folder" in flat.text
        or any("/alerting/" in url for url in flat.urls)
    )


def parse(message: dict[str, Any], flat: Flat) -> Alert:
    lines = flat.text.split("\n")
    legacy = _LEGACY.search(flat.head)
    match = TITLE.search(flat.head)
    if match:
        title_line, group = match.group(0).strip(), match.group("group")
        resolved = match.group("status").lower() == "resolved"
        identity = group_key(group)
    elif legacy:
        title_line, group = legacy.group(0).strip(), legacy.group("rule")
        resolved = legacy.group("state").lower() == "ok"
        identity = group_key(group)
    else:  # detected by the sender with a custom title
        title_line = group = lines[0]
        resolved = "good" in flat.colors or bool(re.search(r"\bresolved\b", flat.head, re.IGNORECASE))
        identity = group_key(title_line)
    rest = remove_line(lines, title_line)
    labels = parse_labels(rest)
    description, hint = described(rest, labels, group)
    links = [u for u in flat.urls if "/alerting/" in u or "/d/" in u]
    return make_alert(
        SOURCE,
        status="resolved" if resolved else "firing",
        title=title_line,
        description=description,
        service=service_from(labels) or catalog_service(group),
        fingerprint=f"{SOURCE}:{identity}",
        source_severity=hint,
        url=(links or flat.urls or [None])[0],
    )
