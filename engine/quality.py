"""Which rows a version's recorded quality numbers were measured on.

Numbers measured on synthetic rows say how well a model learned the generator, not how it does on real
alerts (a category macro-F1 of 0.94 on synthetic rows came with 0.18 on real post-mortems). Every report
(`oncall train`, `oncall models status`, Slack, the playground) reads the sets from here: real labeled
rows first, each set with its row count and its sources, and synthetic-only numbers labeled as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SYNTHETIC_PREFIX = "synthetic/"
REAL = "real"
SYNTHETIC = "synthetic"
MIXED = "mixed"  # saved before the two were scored apart, from real and synthetic rows together
# Each kind of set: its name, the caveat that goes with its numbers wherever they are shown, and the
# caveat cut short for one-line listings.
KINDS = {
    REAL: (
        "real labeled rows",
        "held-out rows of the training sources, a shuffled split within each source, not unseen sources",
        "held out from the training sources",
    ),
    SYNTHETIC: ("synthetic rows", "not evidence of quality on real alerts", "not evidence of real quality"),
    MIXED: (
        "real and synthetic rows pooled",
        "saved before they were scored apart: not evidence of quality on real alerts alone",
        "not evidence of real quality",
    ),
}


def is_synthetic(source: str) -> bool:
    """A row made by the generator (training.synthetic), not one a person labeled."""
    return source.startswith(SYNTHETIC_PREFIX)


@dataclass(frozen=True, slots=True)
class Measured:
    """One set of held-out rows and the scores on it (``metrics``: severity, category, actions)."""

    kind: str
    rows: int
    sources: dict[str, int]
    metrics: dict[str, Any]

    @property
    def label(self) -> str:
        """'synthetic rows: not evidence of quality on real alerts', and the like."""
        noun, note, _ = KINDS[self.kind]
        return f"{noun}: {note}"

    def describe(self) -> str:
        """'real labeled rows, n=12 from history 12 (held-out rows of ...)': the kind, how many, whence
        (the generator's styles are not worth listing), and the caveat."""
        noun, note, _ = KINDS[self.kind]
        where = ", ".join(f"{source} {n}" for source, n in self.sources.items())
        whence = f" from {where}" if where and self.kind == REAL else ""
        return f"{noun}, n={self.rows}{whence} ({note})"

    def brief(self) -> str:
        """'synthetic rows: not evidence of real quality': what the set was, for one line."""
        noun, _, short = KINDS[self.kind]
        return f"{noun}: {short}"

    def numbers(self) -> list[tuple[str, float, int]]:
        """(name, value, rows scored) of the headline numbers measured on some rows of this set."""
        out = []
        for name, label, key in (
            ("severity macro-F1", "severity", "macro_f1"),
            ("category macro-F1", "category", "macro_f1"),
            ("action top-3", "actions", "top3"),
        ):
            part = self.metrics.get(label) or {}
            if part.get("n"):
                out.append((name, float(part[key]), int(part["n"])))
        return out

    def to_dict(self) -> dict[str, Any]:
        """What the set is, for JSON answers (the numbers are added by each report as it needs them)."""
        return {
            "kind": self.kind,
            "brief": self.brief(),
            "label": self.label,
            "description": self.describe(),
            "rows": self.rows,
            "sources": self.sources,
        }


def measured(metadata: dict[str, Any]) -> list[Measured]:
    """The version's held-out sets, real rows first. A version saved before real and synthetic rows were
    scored apart has one pooled set: synthetic when every training source was, else mixed."""
    metrics = metadata.get("metrics") or {}
    if REAL in metrics or SYNTHETIC in metrics:
        return [
            Measured(kind, int(part.get("rows", 0)), dict(part.get("sources") or {}), part)
            for kind in (REAL, SYNTHETIC)
            if (part := metrics.get(kind))
        ]
    rows = int(metrics.get("validation_rows") or 0)
    if not rows:
        return []
    by_source = (metadata.get("data") or {}).get("by_source") or {}
    synthetic_only = bool(by_source) and all(is_synthetic(s) for s in by_source)
    return [Measured(SYNTHETIC if synthetic_only else MIXED, rows, {}, metrics)]


def headline(metadata: dict[str, Any]) -> str:
    """One line for a list of versions: the first set's numbers (real rows when there are any), and
    what they were measured on."""
    sets = measured(metadata)
    if not sets:
        return "no held-out rows: quality not measured"
    numbers = ", ".join(f"{name} {value:.3f} (n={n})" for name, value, n in sets[0].numbers())
    return f"{numbers or 'no labels to score'} on {sets[0].brief()}"


def summary_lines(metadata: dict[str, Any]) -> list[str]:
    """One line per set: what it was measured on, then its headline numbers."""
    lines = []
    for m in measured(metadata):
        numbers = ", ".join(f"{name} {value:.3f} (n={n})" for name, value, n in m.numbers())
        lines.append(f"{m.describe()}: {numbers or 'no labels to score'}")
    return lines or ["no held-out rows: quality not measured"]
