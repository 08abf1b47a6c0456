"""Scoring a model on labeled incidents: validation before saving and `oncall evaluate` share this code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.quality import REAL, SYNTHETIC, is_synthetic
from engine.taxonomy import CATEGORIES, SEVERITIES
from training.dataset import BadLine, LabeledIncident, load_jsonl
from training.metrics import action_report, classification_report, majority_macro_f1


def score_rows(
    scorer: Any, rows: Sequence[LabeledIncident], scores: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Severity, category and action metrics of a scorer on labeled rows (each label where it is known).

    ``scores``: the scorer's scores of ``rows`` when the caller computed them already.
    """
    if scores is None:
        scores = scorer.score_many([r.text for r in rows]) if rows else []
    out: dict[str, Any] = {}
    for label, classes_attr, all_classes in (
        ("severity", "severity_classes", SEVERITIES),
        ("category", "category_classes", CATEGORIES),
    ):
        classes = getattr(scorer, classes_attr)
        pairs = [(getattr(r, label), s) for r, s in zip(rows, scores, strict=True) if getattr(r, label)]
        probs = [getattr(s, label) for _, s in pairs]
        if not classes or not pairs or probs[0] is None:
            out[label] = {"n": 0}
            continue
        truth = [t for t, _ in pairs]
        pred = [classes[int(np.argmax(p))] for p in probs]
        conf = [float(np.max(p)) for p in probs]
        out[label] = classification_report(truth, pred, conf, all_classes)
        out[label]["majority_macro_f1"] = majority_macro_f1(truth, all_classes)
    ranked_pairs = [
        (r.actions, [scorer.action_classes[j] for j in np.argsort(-s.actions, kind="stable")])
        for r, s in zip(rows, scores, strict=True)
        if r.actions
    ]
    out["actions"] = action_report([t for t, _ in ranked_pairs], [r for _, r in ranked_pairs])
    return out


def evaluate(
    scorer: Any, rows: Sequence[LabeledIncident], scores: Sequence[Any] | None = None
) -> dict[str, Any]:
    """``score_rows`` plus the same severity and category numbers per provider (else per source)."""
    if scores is None:
        scores = scorer.score_many([r.text for r in rows]) if rows else []
    report = score_rows(scorer, rows, scores)
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.provider or row.source, []).append(i)
    for label in ("severity", "category"):
        if report[label].get("n", 0) == 0:
            continue
        by_provider = {}
        for name in sorted(groups):
            picked = [i for i in groups[name] if getattr(rows[i], label)]
            sub = score_rows(scorer, [rows[i] for i in picked], [scores[i] for i in picked])[label]
            if sub.get("n", 0):
                by_provider[name] = {k: sub[k] for k in ("n", "accuracy", "macro_f1", "ece")}
        report[label]["by_provider"] = by_provider
    return report


def validation_report(scorer: Any, held_rows: Sequence[LabeledIncident]) -> dict[str, Any]:
    """The held-out numbers a version records: pooled (what the promotion floor checks), and apart for
    real rows (per provider too) and synthetic ones, so no report passes the generator's rows off as
    real quality. Each part says how many rows it scored and from which sources (engine.quality reads it).
    """
    if not held_rows:
        return {}
    scores = scorer.score_many([r.text for r in held_rows])
    report = score_rows(scorer, held_rows, scores)
    for kind, synthetic in ((REAL, False), (SYNTHETIC, True)):
        picked = [i for i, r in enumerate(held_rows) if is_synthetic(r.source) == synthetic]
        if not picked:
            continue
        rows = [held_rows[i] for i in picked]
        part = (score_rows if synthetic else evaluate)(scorer, rows, [scores[i] for i in picked])
        part["rows"] = len(rows)
        part["sources"] = dict(sorted(Counter(r.source for r in rows).items()))
        report[kind] = part
    return report


def evaluate_files(scorer: Any, paths: Sequence[str | Path]) -> tuple[dict[str, Any], list[BadLine]]:
    """Evaluate on every row of every file; bad lines are returned for reporting, not fatal."""
    rows: list[LabeledIncident] = []
    bad: list[BadLine] = []
    for path in paths:
        loaded = load_jsonl(path)
        rows.extend(loaded.rows)
        bad.extend(loaded.bad_lines)
    report = evaluate(scorer, rows)
    report["rows"] = len(rows)
    report["bad_lines"] = [str(b) for b in bad]
    return report, bad
