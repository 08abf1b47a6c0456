"""Sentry's Slack app.

Issue alerts: an attachment (or, in newer versions, blocks) titled with the issue (``ZeroDivisionError:
division by zero``) linking to ``.../issues/4509/?referrer=...``, the culprit as text, tags as fields
(``level``, ``environment``, ``project``...), and a footer with the short id (``BACKEND-4Z via Alert
rule``). Resolution shows as ``Resolved`` state / ``Resolved by`` / an activity notification on the same
issue. Metric alerts title ``Critical: ...`` / ``Warning: ...`` / ``Resolved: ...``.
"""

from __future__ import annotations

import re
from typing import Any

from .alert import Alert, make_alert
from .fields import as_description, catalog_service, parse_labels, remove_line, service_from
from .slack_text import Flat

SOURCE = "sentry"
_ISSUE = re.compile(r"/issues/(\d+)")
_METRIC_RULE = re.compile(r"/alerts/rules/details/(\d+)|/alerts/(\d+)")
_SHORT_ID = re.compile(r"\b([A-Z][A-Z0-9_]*(?:-[A-Z0-9_]+)*-[A-Z0-9]{1,10})\b")
_METRIC_TITLE = re.compile(r"^\s*(?P<state>Critical|Warning|Resolved)\s*:\s*(?P<rule>\S.*)$", re.IGNORECASE)
_RESOLVED = re.compile(
    r"(?:^|\n)\s*(?:state|status)\s*[:=]\s*resolved\b|\bresolved by\b|\bmarked (?:\w+ )?as resolved\b"
    r"|^\W*resolved\b",
    re.IGNORECASE,
)
_PROJECT_PREFIX = re.compile(r"^\s*\[([\w.\-]{1,100})\]\s*")
_EMOJI = re.compile(r"^\s*(?::[\w+-]+:\s*)+")


def _is_sentry_url(url: str) -> bool:
    return "sentry.io" in url or ("sentry" in url and ("/issues/" in url or "/alerts/" in url))


def detect(message: dict[str, Any], flat: Flat) -> bool:
    return "sentry" in flat.sender or any(_is_sentry_url(u) for u in flat.urls)


def parse(message: dict[str, Any], flat: Flat) -> Alert:
    lines = flat.text.split("\n")
    title_line = lines[0]
    name = _EMOJI.sub("", title_line)
    rest = remove_line(lines, title_line)
    labels = parse_labels(rest)
    urls = [u for u in flat.urls if _is_sentry_url(u)] or flat.urls
    joined = " ".join(urls)
    issue = _ISSUE.search(joined)
    rule = _METRIC_RULE.search(joined)
    footer = "\n".join(line for line in rest if " via " in line or " | " in line)  # where the short id is
    short = _SHORT_ID.search(footer or flat.text[-500:])
    metric = _METRIC_TITLE.match(name)
    state = metric.group("state").lower() if metric else ""
    if issue:
        identity = f"issue:{issue.group(1)}"
    elif rule:
        identity = f"rule:{rule.group(1) or rule.group(2)}"
    elif short:
        identity = f"issue:{short.group(1)}"
    else:
        identity = " ".join((metric.group("rule") if metric else name).lower().split())[:200]
    project = _PROJECT_PREFIX.match(name)
    service = (
        labels.get("project")
        or (project.group(1) if project else None)
        or service_from(labels)
        or (short.group(1).rsplit("-", 1)[0].lower() if short else None)
        or catalog_service(name)
    )
    hint = labels.get("level") or (state if state in ("critical", "warning") else None)
    resolved = state == "resolved" or bool(_RESOLVED.search(flat.text[:5_000]))
    return make_alert(
        SOURCE,
        status="resolved" if resolved else "firing",
        title=name,
        description=as_description(rest),
        service=service,
        fingerprint=f"{SOURCE}:{identity}",
        source_severity=hint,
        url=urls[0] if urls else None,
    )
