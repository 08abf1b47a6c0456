"""AIDecisionEngine: turns an incident into a decision; every prediction comes from MLService."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.incident import IncidentCreate
from engine.ml_service import MLService, Prediction

DEFAULT_UNCERTAIN_BELOW = 0.5


@dataclass(frozen=True, slots=True)
class ActionScore:
    action: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Decision:
    severity: str
    severity_confidence: float
    category: str
    category_confidence: float
    actions: list[ActionScore]
    uncertain: bool
    model_version: str
    explanation: list[str] = field(default_factory=list)
    fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AIDecisionEngine:
    """Severity, category, the top actions, an honesty flag and the reason, for one incident."""

    def __init__(
        self,
        ml_service: MLService,
        *,
        uncertain_below: float | None = None,
        top_actions: int = 3,
        explain_terms: int = 5,
    ) -> None:
        self.ml = ml_service
        if uncertain_below is None:
            uncertain_below = float(os.environ.get("ONCALL_UNCERTAIN_BELOW") or DEFAULT_UNCERTAIN_BELOW)
        self.uncertain_below = uncertain_below
        self.top_actions = top_actions
        self.explain_terms = explain_terms

    async def start(self) -> None:
        if not self.ml.initialized:
            await self.ml.initialize()

    def predict_incident_category(self, incident: IncidentCreate) -> tuple[str, float]:
        return self.ml.predict_incident_category(incident.text)

    def _recommend_action_types(self, incident: IncidentCreate) -> list[tuple[str, float]]:
        return self.ml.recommend_actions(incident.text, k=self.top_actions)

    def analyze(self, incident: IncidentCreate) -> Decision:
        """One feature pass, three models, one version: the decision the bot posts."""
        prediction = self.ml.predict(incident.text)
        return self._decide(prediction, self.ml.explain(prediction, self.explain_terms))

    def analyze_many(self, incidents: Sequence[IncidentCreate]) -> list[Decision]:
        """Batch decisions (no explanations: they need the per-alert feature row)."""
        predictions = self.ml.predict_many([i.text for i in incidents], top_actions=self.top_actions)
        return [self._decide(p, []) for p in predictions]

    def _decide(self, p: Prediction, explanation: list[tuple[str, float]]) -> Decision:
        uncertain = p.fallback or min(p.severity_confidence, p.category_confidence) < self.uncertain_below
        return Decision(
            severity=p.severity,
            severity_confidence=round(p.severity_confidence, 4),
            category=p.category,
            category_confidence=round(p.category_confidence, 4),
            actions=[ActionScore(a, round(c, 4)) for a, c in p.actions[: self.top_actions]],
            uncertain=uncertain,
            model_version=p.model_version,
            explanation=[term for term, _ in explanation],
            fallback=p.fallback,
        )
