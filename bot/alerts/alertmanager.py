"""Prometheus Alertmanager's Slack notifications.

The default template posts one attachment titled ``[FIRING:2] HighErrorRate (payments critical)``: the
status, how many alerts fire, the group labels' values and, in parentheses, the other common labels'
values; the title links to the Alertmanager UI. Custom templates usually keep that title and list each
alert's labels and annotations in the text (``*Alert:* ...``, ``• *severity:* `critical```).
"""

from __future__ import annotations

import re
from typing import Any

from .alert import Alert, make_alert, normalise_severity
from .fields import as_description, catalog_service, parse_labels, remove_line, service_from
from .slack_text import Flat

SOURCE = "alertmanager"
# Optional emoji first; ``[FIRING:1, RESOLVED:1]`` (some templates) is firing.
TITLE = re.compile(
    r"^\s*(?::[\w+-]+:\s*)*\[(?P<status>FIRING|RESOLVED)(?:\s*:\s*(?P<count>\d+))?[^\]\n]{0,40}\]\s*(?P<group>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_SEVERITY_KEYS = ("severity", "priority", "level")
_IDENTITY_KEYS = ("alertname", "service", "app", "job", "instance", "namespace", "cluster")


def group_key(group: str) -> str:
    """The group part of the title, normalised: it is the same on the firing and the resolved message."""
    return " ".join(group.lower().split())[:200]


def severity_hint(labels: dict[str, str], group: str) -> str | None:
    """The severity label, else a severity word among the title's label values (``(payments critical)``)."""
    for key in _SEVERITY_KEYS:
        if labels.get(key):
            return labels[key]
    for word in re.findall(r"[\w-]+", group[:300]):
        if normalise_severity(word) and not word.lower().startswith("p"):  # "p2" in a title is too vague
            return word
    return None


def described(rest: list[str], labels: dict[str, str], group: str) -> tuple[str, str | None]:
    """The description of a notification's body and its severity hint, kept in the text as a feature
    (a hint read from the title is added as a ``severity=`` line when no label carries it)."""
    hint = severity_hint(labels, group)
    description = as_description(rest)
    if hint and "severity" not in labels:
        description += f"\nseverity={hint}"
    return description, hint


def detect(message: dict[str, Any], flat: Flat) -> bool:
    return bool(TITLE.search(flat.head)) or "alertmanager" in flat.sender


def parse(message: dict[str, Any], flat: Flat) -> Alert:
    lines = flat.text.split("\n")
    match = TITLE.search(flat.head)
    title_line = match.group(0).strip() if match else lines[0]
    group = match.group("group") if match else title_line
    rest = remove_line(lines, title_line)
    labels = parse_labels(rest)
    if match:
        resolved = match.group("status").lower() == "resolved"
        fingerprint = f"{SOURCE}:{group_key(group)}"
    else:  # a custom title: the status is in the words, the identity in the labels
        resolved = bool(re.search(r"\bresolved\b", flat.head, re.IGNORECASE)) or "good" in flat.colors
        identity = ",".join(f"{k}={labels[k]}" for k in _IDENTITY_KEYS if k in labels)
        fingerprint = f"{SOURCE}:{identity or group_key(title_line)}"
    description, hint = described(rest, labels, group)
    return make_alert(
        SOURCE,
        status="resolved" if resolved else "firing",
        title=title_line,
        description=description,
        service=service_from(labels) or catalog_service(group),
        fingerprint=fingerprint,
        source_severity=hint,
        url=next((u for u in flat.urls if "/#/alerts" in u), flat.urls[0] if flat.urls else None),
    )
