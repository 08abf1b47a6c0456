"""AIDecisionEngine: turns an incident into a decision; every prediction comes from MLService."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.features import readable_reasons
from engine.incident import IncidentCreate
from engine.ml_service import MLService, Prediction
from engine.settings import EngineSettings


# Not frozen: a frozen dataclass takes five times as long to build, and batches build millions.
@dataclass(slots=True)
class ActionScore:
    action: str
    confidence: float


@dataclass(slots=True)
class Decision:
    severity: str
    severity_confidence: float
    category: str
    category_confidence: float
    actions: list[ActionScore]
    # Per field, so the reply marks the field in doubt, not a confident one beside it.
    severity_uncertain: bool
    category_uncertain: bool
    model_version: str
    explanation: list[str] = field(default_factory=list)
    fallback: bool = False

    @property
    def uncertain(self) -> bool:
        """Either field is uncertain: the one flag that records, metrics and older readers know."""
        return self.severity_uncertain or self.category_uncertain

    def to_dict(self) -> dict[str, Any]:
        """As shown to people: confidences rounded to 4 places, and ``uncertain`` (either field)."""
        out = asdict(self)
        out["uncertain"] = self.uncertain
        for key in ("severity_confidence", "category_confidence"):
            out[key] = round(out[key], 4)
        for action in out["actions"]:
            action["confidence"] = round(action["confidence"], 4)
        return out


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch builds its (acyclic) result objects: otherwise it
    runs every few hundred allocations and rescans the loaded models, over half of a batch's Python time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class AIDecisionEngine:
    """Severity, category, the top actions, an honesty flag and the reason, for one incident."""

    def __init__(
        self,
        ml_service: MLService | None = None,
        *,
        uncertain_below: float | None = None,
        top_actions: int = 3,
        explain_terms: int = 5,
    ) -> None:
        """``ml_service``: the MLService to predict with; by default its own ``MLService()`` (the model
        directory of $ML_MODEL_PATH, else ``models``), as the Model Integration Guide's engine makes."""
        self.ml = ml_service if ml_service is not None else MLService()
        if uncertain_below is None:
            uncertain_below = EngineSettings.from_env().uncertain_below
        self.uncertain_below = uncertain_below
        self.top_actions = top_actions
        self.explain_terms = explain_terms

    async def start(self) -> None:
        if not self.ml.initialized:
            await self.ml.initialize()

    # The guide's coroutines. The bot decides with analyze() / analyze_many(), synchronously: one feature
    # pass gives every field of a decision, and the event loop never waits on a thread for it.
    async def predict_incident_category(self, incident: IncidentCreate) -> tuple[str, float]:
        return await self.ml.predict_incident_category(incident.text)

    async def _recommend_action_types(self, incident: IncidentCreate) -> list[str]:
        """The names of the ``top_actions`` best actions, best first."""
        return [action for action, _ in await self.ml.recommend_actions(incident.text, self.top_actions)]

    def analyze(self, incident: IncidentCreate, candidate: bool = False) -> Decision:
        """One feature pass, three models, one version: the decision the bot posts (``candidate``: the
        trial's candidate version decides)."""
        prediction = self.ml.predict(incident.text, candidate)
        terms = self.ml.explain(prediction, 3 * self.explain_terms)  # room for those said once or not at all
        return self._decide(prediction, readable_reasons(incident.text, terms, self.explain_terms))

    def analyze_many(self, incidents: Sequence[IncidentCreate]) -> list[Decision]:
        """Batch decisions (no explanations: they need the per-alert feature row).

        The decisions are built inline from the batch's columns, not through ``_decision``: a function
        call and an intermediate pair per action would take a fifth of the Python time per alert."""
        texts = [i.text for i in incidents]
        below = self.uncertain_below
        decisions: list[Decision] = []
        with _collector_paused():
            for b in self.ml.predict_chunks(texts, self.top_actions):
                names, version, fallback = b.action_names, b.model_version, b.fallback
                severity_uncertain = uncertain(b.severity_confidence, below, fallback)
                category_uncertain = uncertain(b.category_confidence, below, fallback)
                decisions += [
                    Decision(
                        sev,
                        sc,
                        cat,
                        cc,
                        [ActionScore(names[j], c) for j, c in zip(order, conf, strict=True)],
                        su,
                        cu,
                        version,
                        [],
                        fallback,
                    )
                    for sev, sc, cat, cc, order, conf, su, cu in zip(
                        b.severity,
                        b.severity_confidence,
                        b.category,
                        b.category_confidence,
                        b.action_order,
                        b.action_confidence,
                        severity_uncertain,
                        category_uncertain,
                        strict=True,
                    )
                ]
        return decisions

    def _decide(self, p: Prediction, explanation: list[str]) -> Decision:
        return _decision(
            p.severity,
            p.severity_confidence,
            p.category,
            p.category_confidence,
            p.actions[: self.top_actions],
            p.model_version,
            p.fallback,
            self.uncertain_below,
            explanation,
        )


def uncertain(confidences: Iterable[float], below: float, fallback: bool) -> list[bool]:
    """The uncertain rule, for a column of confidences at once: a field is uncertain when its confidence
    is under ``below``, and every field of the rule-based fallback is."""
    return [fallback or c < below for c in confidences]


def _decision(
    severity: str,
    severity_confidence: float,
    category: str,
    category_confidence: float,
    actions: list[tuple[str, float]],
    model_version: str,
    fallback: bool,
    uncertain_below: float,
    explanation: list[str] | None = None,
) -> Decision:
    severity_uncertain, category_uncertain = uncertain(
        (severity_confidence, category_confidence), uncertain_below, fallback
    )
    return Decision(
        severity,
        severity_confidence,
        category,
        category_confidence,
        [ActionScore(a, c) for a, c in actions],
        severity_uncertain,
        category_uncertain,
        model_version,
        explanation or [],
        fallback,
    )
