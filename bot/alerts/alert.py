"""What a parsed Slack message becomes: an ``Alert`` wrapping the engine's ``IncidentCreate``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.incident import IncidentCreate

from .slack_text import MAX_TEXT, TRUNCATED

MAX_TITLE = 300
MAX_SERVICE = 100
MAX_FINGERPRINT = 300

# Only hints whose meaning is unambiguous: "page" or "none" (Alertmanager) say nothing about impact.
_NORMALISED = {
    **dict.fromkeys(("p0", "p1", "sev0", "sev1", "critical", "crit", "fatal", "emergency"), "critical"),
    **dict.fromkeys(("p2", "sev2", "error", "err", "high", "major"), "high"),
    **dict.fromkeys(("p3", "sev3", "warning", "warn", "medium", "moderate"), "medium"),
    **dict.fromkeys(("p4", "p5", "sev4", "sev5", "info", "informational", "low", "minor", "debug"), "low"),
}
_HINT_NOISE = re.compile(r"[\s\-_\[\]()`*:]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(slots=True)
class Alert:
    """A candidate alert: the incident the engine decides on, and what the bot needs to thread replies."""

    incident: IncidentCreate
    source: str  # alertmanager, grafana, datadog, sentry, cloudwatch, pagerduty, human
    status: str  # firing or resolved
    fingerprint: str | None  # the same for an alert's firing and resolved notifications
    source_severity: str | None  # the source's own severity words, as it wrote them
    url: str | None  # link back to the source


def normalise_severity(hint: str | None) -> str | None:
    """``P1`` / ``critical`` / ``Sev-2`` / ``warning`` ... -> critical/high/medium/low, else None."""
    if not hint:
        return None
    return _NORMALISED.get(_HINT_NOISE.sub("", hint[:40]).lower())


def _cap(text: str, limit: int) -> str:
    """At most ``limit`` characters, storable: NUL (PostgreSQL's text refuses it) and lone surrogates (a
    payload that was not UTF-8; no encoder takes them) become U+FFFD."""
    text = _UNSTORABLE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def make_alert(
    source: str,
    *,
    status: str,
    title: str,
    description: str = "",
    service: str | None = None,
    fingerprint: str | None = None,
    source_severity: str | None = None,
    url: str | None = None,
) -> Alert:
    """An ``Alert`` with every string bounded and the severity hint normalised (never invented)."""
    title = _cap(" ".join(title.split()), MAX_TITLE) or "(untitled alert)"
    service = _cap(service.strip(), MAX_SERVICE) if service and service.strip() else None
    hint = _cap(source_severity.strip(), 40) if source_severity and source_severity.strip() else None
    incident = IncidentCreate(
        title=title,
        description=_cap(description.strip(), MAX_TEXT),
        service=service,
        severity=normalise_severity(hint),
        tags=[f"source:{source}", f"status:{status}"],
    )
    return Alert(
        incident=incident,
        source=source,
        status=status,
        fingerprint=_cap(fingerprint, MAX_FINGERPRINT) if fingerprint else None,
        source_severity=hint,
        url=_cap(url, 2_000) if url else None,
    )
