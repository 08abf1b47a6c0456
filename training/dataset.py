"""Labeled incidents: the record, and the JSONL reader for docs/labeled-data.md.

A bad line is reported with its file and line number and skipped; it never stops the other lines.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.incident import incident_text
from engine.taxonomy import ACTIONS, CATEGORIES, SEVERITIES


@dataclass(frozen=True, slots=True)
class LabeledIncident:
    """One incident with whatever labels are known (``None`` / empty means unknown)."""

    title: str
    description: str = ""
    service: str | None = None
    severity: str | None = None
    category: str | None = None
    actions: tuple[str, ...] | None = None
    source: str = "unknown"
    provider: str | None = None
    id: str | None = None
    tags: tuple[str, ...] = field(default=())
    link: str | None = None  # where the incident is written up (``link`` or ``url``; http(s) only)

    @property
    def text(self) -> str:
        return incident_text(self.title, self.description, self.service)


@dataclass(frozen=True, slots=True)
class BadLine:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(slots=True)
class LoadedFile:
    path: str
    sha256: str
    rows: list[LabeledIncident]
    bad_lines: list[BadLine]


def _label(value: object, allowed: Iterable[str], what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {what} {value!r}")
    return value


def _link(obj: dict[str, object]) -> str | None:
    """An http(s) URL from ``link`` or ``url``; anything else is ignored (it is never a label)."""
    for key in ("link", "url"):
        value = obj.get(key)
        if isinstance(value, str) and value.startswith(("https://", "http://")) and value.isprintable():
            return value.strip()
    return None


def parse_record(obj: object, default_source: str) -> LabeledIncident:
    """One JSON object to a LabeledIncident; raises ValueError saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    title = obj.get("title") or ""
    description = obj.get("description") or ""
    if not isinstance(title, str) or not isinstance(description, str):
        raise ValueError("title and description must be strings")
    if not title.strip() and not description.strip():
        raise ValueError("has neither title nor description")
    service = obj.get("service")
    if service is not None and not isinstance(service, str):
        raise ValueError("service must be a string or null")
    actions = obj.get("actions")
    if actions is not None:
        if not isinstance(actions, list):
            raise ValueError("actions must be a list or null")
        actions = tuple(_label(a, ACTIONS, "action") for a in actions) or None
    tags = obj.get("tags") or ()
    return LabeledIncident(
        title=title.strip(),
        description=description.strip(),
        service=service or None,
        severity=_label(obj.get("severity"), SEVERITIES, "severity"),
        category=_label(obj.get("category"), CATEGORIES, "category"),
        actions=actions,  # type: ignore[arg-type]
        source=str(obj.get("source") or default_source),
        provider=obj.get("provider") if isinstance(obj.get("provider"), str) else None,
        id=str(obj["id"]) if obj.get("id") is not None else None,
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        link=_link(obj),
    )


def json_reason(exc: json.JSONDecodeError) -> str:
    """The whole reason json gives, with the column (1-based, in characters) its message points at:
    "not valid JSON: Invalid control character at column 13", "... Expecting value at column 1"."""
    where = f"column {exc.colno}" if exc.msg.endswith(" at") else f"at column {exc.colno}"
    return f"not valid JSON: {exc.msg} {where}"


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, LabeledIncident | BadLine]]:
    """Yield (line number, record or BadLine) for every non-blank line of a JSONL file."""
    path = Path(path)
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.rstrip(b"\r\n").decode("utf-8"))  # an unclosed object ends here
                yield lineno, parse_record(obj, default_source=path.stem)
            except UnicodeDecodeError as exc:
                yield lineno, BadLine(str(path), lineno, f"not valid UTF-8 at byte {exc.start + 1}")
            except json.JSONDecodeError as exc:
                yield lineno, BadLine(str(path), lineno, json_reason(exc))
            except ValueError as exc:
                yield lineno, BadLine(str(path), lineno, str(exc))


def load_jsonl(path: str | Path) -> LoadedFile:
    """Read a labeled-data file: the good rows, the bad lines, and the file's sha256."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rows: list[LabeledIncident] = []
    bad: list[BadLine] = []
    for _, item in iter_jsonl(path):
        (bad if isinstance(item, BadLine) else rows).append(item)  # type: ignore[arg-type]
    return LoadedFile(str(path), digest, rows, bad)
