"""Scoring predictions against labels: the same numbers for validation before saving and `oncall evaluate`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def expected_calibration_error(correct: np.ndarray, confidence: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins."""
    if len(correct) == 0:
        return 0.0
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def calibration_curve(
    correct: np.ndarray, confidence: np.ndarray, n_bins: int = 10
) -> list[dict[str, float]]:
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    curve = []
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            curve.append(
                {
                    "bin": b,
                    "n": int(mask.sum()),
                    "confidence": float(confidence[mask].mean()),
                    "accuracy": float(correct[mask].mean()),
                }
            )
    return curve


def classification_report(
    y_true: Sequence[str], y_pred: Sequence[str], confidence: Sequence[float], labels: Sequence[str]
) -> dict[str, Any]:
    """n, accuracy, macro-F1, per class, confusion matrix, ECE and the calibration curve.

    ``macro_f1`` averages over the classes that occur in the labels scored (a data set without security
    incidents is not scored on a security class; a wrong guess of one still costs its true class recall);
    ``macro_f1_union`` also averages the classes only predicted, as scikit-learn's default does.
    """
    if len(y_true) == 0:
        return {"n": 0}
    y_true_a = np.asarray(y_true, dtype=object)
    y_pred_a = np.asarray(y_pred, dtype=object)
    conf = np.asarray(confidence, dtype=np.float64)
    in_truth = [c for c in labels if c in set(y_true)]
    present = [c for c in labels if c in set(y_true) | set(y_pred)]
    p, r, f, s = precision_recall_fscore_support(y_true_a, y_pred_a, labels=present, zero_division=0)
    correct = (y_true_a == y_pred_a).astype(np.float64)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true_a, y_pred_a)),
        "macro_f1": float(f1_score(y_true_a, y_pred_a, labels=in_truth, average="macro", zero_division=0)),
        "macro_f1_union": float(
            f1_score(y_true_a, y_pred_a, labels=present, average="macro", zero_division=0)
        ),
        "ece": expected_calibration_error(correct, conf),
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(present)
        },
        "confusion": {
            "labels": list(labels),
            "matrix": confusion_matrix(y_true_a, y_pred_a, labels=list(labels)).tolist(),
        },
        "calibration": calibration_curve(correct, conf),
    }


def action_report(truth: Sequence[Sequence[str]], ranked: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Top-1 / top-3 hit rate: a hit is a recommended action among the actions actually taken."""
    if len(truth) == 0:
        return {"n": 0}
    top1 = np.mean([bool(set(r[:1]) & set(t)) for t, r in zip(truth, ranked, strict=True)])
    top3 = np.mean([bool(set(r[:3]) & set(t)) for t, r in zip(truth, ranked, strict=True)])
    return {"n": len(truth), "top1": float(top1), "top3": float(top3)}


def majority_macro_f1(y_true: Sequence[str], labels: Sequence[str]) -> float:
    """Macro-F1 of always answering the most frequent class: the floor any model must clear."""
    if not y_true:
        return 0.0
    values, counts = np.unique(np.asarray(y_true, dtype=object), return_counts=True)
    majority = values[int(np.argmax(counts))]
    present = [c for c in labels if c in set(y_true)]
    return float(
        f1_score(list(y_true), [majority] * len(y_true), labels=present, average="macro", zero_division=0)
    )
