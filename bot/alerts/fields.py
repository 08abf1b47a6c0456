"""Key/value lines shared by the alerting sources: labels, annotations, attachment fields.

Sources print labels in many styles (``- instance = web-1``, ``• *service:* `payments```,
``Service: payments``, ``env:prod``); the engine reads them best as ``key=value``.
"""

from __future__ import annotations

import re

from engine.services import SERVICES

# A key of up to three words, then ``=`` or ``:``; a value that is not the rest of a URL (``https://``).
_LINE = re.compile(
    r"^[\s\-•*·>]*(?P<key>[A-Za-z_][\w.\-/]{0,40}(?: [A-Za-z][\w.\-/]{0,20}){0,2})"
    r"\s*[=:]\s*(?!//)(?P<value>\S.{0,500})$"
)
_QUOTES = "\"'"
SERVICE_KEYS = ("service", "service_name", "app", "application", "app_kubernetes_io_name", "container", "job")
_LAST_RESORT_KEYS = ("namespace", "kubernetes_namespace")
_WORD = re.compile(r"[a-z][a-z0-9-]{1,40}")


def label_key(key: str) -> str:
    """``Alarm Name`` -> ``alarm_name``, ``app.kubernetes.io/name`` -> ``app_kubernetes_io_name``."""
    return re.sub(r"[^a-z0-9_]+", "_", key.strip().lower()).strip("_")


def parse_line(line: str) -> tuple[str, str] | None:
    """A ``(key, value)`` when the line is a label/field line, else None."""
    match = _LINE.match(line[:600])
    if not match:
        return None
    value = match.group("value").strip().strip(_QUOTES).strip()
    return (label_key(match.group("key")), value) if value else None


def parse_labels(lines: list[str]) -> dict[str, str]:
    """Every label-like line, first value wins (the first alert of a group speaks for it)."""
    labels: dict[str, str] = {}
    for line in lines:
        pair = parse_line(line)
        if pair and pair[0] not in labels:
            labels[pair[0]] = pair[1]
    return labels


def as_description(lines: list[str]) -> str:
    """The lines joined, label lines rewritten ``key=value`` (the form the models were trained on)."""
    out = []
    for line in lines:
        pair = parse_line(line)
        out.append(f"{pair[0]}={pair[1]}" if pair else line)
    return "\n".join(out)


def service_from(labels: dict[str, str]) -> str | None:
    """The service a label set names: service/app/container/job first, the namespace last."""
    for key in (*SERVICE_KEYS, *_LAST_RESORT_KEYS):
        value = labels.get(key)
        if value and len(value) <= 100 and " " not in value:
            return value
    return None


def catalog_service(text: str) -> str | None:
    """The first word of ``text`` that is a service in the engine's catalog (for messages without labels)."""
    for word in _WORD.findall(text[:2_000].lower()):
        if word in SERVICES:
            return word
    return None


def remove_line(lines: list[str], line: str) -> list[str]:
    """``lines`` without the first occurrence of ``line`` (the title, which is not description)."""
    if line in lines:
        index = lines.index(line)
        return lines[:index] + lines[index + 1 :]
    return lines
