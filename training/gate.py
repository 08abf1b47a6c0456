"""The promotion gate: a new version becomes active only if it is not worse than the active one.

Both versions are scored, as they will serve, on one fixed validation set: 2,000 synthetic incidents from
a seed no training run uses (label noise off), plus any labeled files given (a team's own held-out
history). The candidate may trail the active version by at most the margins below, about two standard
errors of macro-F1 on a set that size (two small models differing only in their seed land up to 0.025
apart): differences inside them are noise, differences beyond them are a regression people would notice.
`oncall models promote VERSION --force` overrides the gate and the version's metadata records that it did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.ml_service import ModelLoadError, load_model_set
from engine.registry import ModelVersion, RegistryError
from training.dataset import LabeledIncident
from training.evaluate import score_rows
from training.synthetic import generate_incidents

log = logging.getLogger(__name__)

GATE_SEED = 20_261_126
GATE_SYNTHETIC_ROWS = 2000
# How far the candidate may trail the active version, per measure.
MARGINS = {"severity macro-F1": 0.03, "category macro-F1": 0.03, "action top-3": 0.03}
# Rejected labels (a :-1: without a correction) the version predicts again: lower is better.
REPEATED = "rejected labels repeated"
REPEAT_MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    rows: int  # the size of the validation set
    candidate: dict[str, float]
    active: dict[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "candidate": self.candidate,
            "active": self.active,
            "reasons": list(self.reasons),
            "margins": MARGINS,
        }


def gate_rows(extra: Sequence[LabeledIncident] = ()) -> list[LabeledIncident]:
    return [*generate_incidents(GATE_SYNTHETIC_ROWS, seed=GATE_SEED, label_noise=0.0), *extra]


def measures(
    version: ModelVersion, rows: Sequence[LabeledIncident], rejected: Sequence[tuple[str, str, str]] = ()
) -> dict[str, float]:
    scorer = load_model_set(version).scorer
    metrics = score_rows(scorer, rows)
    out = {}
    if rejected:
        scores = scorer.score_many([text for text, _, _ in rejected])
        repeated = 0
        for (_, field, value), s in zip(rejected, scores, strict=True):
            probs, classes = (
                (s.severity, scorer.severity_classes)
                if field == "severity"
                else (s.category, scorer.category_classes)
            )
            repeated += probs is not None and classes[int(probs.argmax())] == value
        out[REPEATED] = round(repeated / len(rejected), 4)
    for label in ("severity", "category"):
        if metrics.get(label, {}).get("n"):
            out[f"{label} macro-F1"] = round(float(metrics[label]["macro_f1"]), 4)
    if metrics.get("actions", {}).get("n"):
        out["action top-3"] = round(float(metrics["actions"]["top3"]), 4)
    return out


def check(
    candidate: ModelVersion,
    active: ModelVersion | None,
    extra: Sequence[LabeledIncident] = (),
    rejected: Sequence[tuple[str, str, str]] = (),
) -> GateResult:
    """Compare the candidate with the active version (passes when there is none, it is the same, or it does
    not load: a broken version sets no bar)."""
    rows = gate_rows(extra)
    mine = measures(candidate, rows, rejected)
    if active is None or active.id == candidate.id:
        return GateResult(True, len(rows), mine)
    try:
        theirs = measures(active, rows, rejected)
    except (RegistryError, ModelLoadError) as exc:
        log.warning("the active version %s does not load, nothing to compare with: %s", active.id, exc)
        return GateResult(True, len(rows), mine)
    repeats = (
        (f"{REPEATED}: {mine[REPEATED]:.3f} against the active {active.id}'s {theirs[REPEATED]:.3f}",)
        if REPEATED in mine and mine[REPEATED] > theirs[REPEATED] + REPEAT_MARGIN
        else ()
    )
    reasons = repeats + tuple(
        f"{name} {mine.get(name, 0.0):.3f} trails the active {active.id}'s {theirs[name]:.3f} by more "
        f"than {margin:.2f}"
        for name, margin in MARGINS.items()
        if name in theirs and mine.get(name, 0.0) < theirs[name] - margin
    )
    return GateResult(not reasons, len(rows), mine, theirs, reasons)
