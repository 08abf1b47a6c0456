"""The incident as the engine sees it, and the one text form every model is trained and served on."""

from __future__ import annotations

from dataclasses import dataclass, field


def incident_text(title: str, description: str = "", service: str | None = None) -> str:
    """The model input: ``f"{title} {description} service:{service}"`` (training and serving alike)."""
    return f"{title} {description} service:{service or 'unknown'}"


@dataclass(slots=True)
class IncidentCreate:
    """An incident to decide on. ``severity`` is the reporter's own hint (a feature, never the answer)."""

    title: str
    description: str = ""
    service: str | None = None
    severity: str | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return incident_text(self.title, self.description, self.service)
