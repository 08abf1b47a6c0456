"""Severity as an ordered scale: a multinomial model blended with cumulative "worse than" models.

Lives in ``engine`` because a saved severity model is one of these: serving unpickles it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone

_FLOOR = 1e-6  # the least probability a level gets: cumulative models that cross would otherwise give 0


def level_probabilities(above: np.ndarray) -> np.ndarray:
    """P(level) for levels 0..K-1 from ``above[:, k]`` = P(worse than level k), k = 0..K-2.

    Independently fitted cumulative models can cross (P(worse than high) > P(worse than medium)); they are
    made non-increasing first, so every difference is a probability, then floored and renormalised.
    """
    above = np.minimum.accumulate(above, axis=1)
    p = np.hstack([1.0 - above[:, :1], above[:, :-1] - above[:, 1:], above[:, -1:]])
    p = np.clip(p, _FLOOR, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def blend(z: np.ndarray, above: np.ndarray, level_of_class: np.ndarray, mix: float) -> np.ndarray:
    """``(1 - mix) * log softmax(z) + mix * log P(level)``: the blend's logits, from the multinomial
    model's scores ``z`` and the cumulative models' probabilities ``above``. Training and the fused scorer
    both call this (scipy's logsumexp costs 50 µs a row: most of an alert's budget)."""
    shifted = z - z.max(axis=1, keepdims=True)
    log_multinomial = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_ordinal = np.log(level_probabilities(above)[:, level_of_class])
    return (1.0 - mix) * log_multinomial + mix * log_ordinal


class OrdinalBlendClassifier(ClassifierMixin, BaseEstimator):
    """A multinomial linear model blended with Frank and Hall's cumulative binary models.

    ``levels`` lists the labels from least to most severe. Each of the K - 1 cumulative models learns
    "worse than level k" from every row, so a rare level (critical) borrows strength from the rows next to
    it, which a multinomial model, where each class has its own weights, cannot do; the multinomial
    model keeps what sets each level apart. ``decision_function`` is
    ``(1 - mix) * log softmax(multinomial) + mix * log P(level)``, which temperature calibration then
    scales. Every part is linear in the same features, so the fused scorer serves the blend.
    """

    def __init__(self, estimator: Any, levels: Sequence[str], mix: float = 0.3) -> None:
        self.estimator = estimator
        self.levels = levels
        self.mix = mix

    def fit(
        self, X: Any, y: Sequence[Any], sample_weight: np.ndarray | None = None
    ) -> OrdinalBlendClassifier:
        y_a = np.asarray(y)
        decode = self._decoder(y_a)
        names = [decode(v) for v in y_a.tolist()]
        present = [lvl for lvl in self.levels if lvl in set(names)]
        if len(present) < 3:
            raise ValueError("an ordinal blend needs at least three levels in the data")
        self.multinomial_ = clone(self.estimator).fit(X, y_a, sample_weight=sample_weight)
        self.classes_ = self.multinomial_.classes_
        rank = np.array([present.index(n) for n in names])
        self.cumulative_ = [
            clone(self.estimator).fit(X, (rank > k).astype(int), sample_weight=sample_weight)
            for k in range(len(present) - 1)
        ]
        # For each class (in classes_ order), its position on the scale.
        self.level_of_class_ = np.array([present.index(decode(c)) for c in self.classes_], dtype=np.intp)
        return self

    def _decoder(self, y: np.ndarray) -> Any:
        """Labels to level names. Calibrating by temperature, scikit-learn hands its estimator the labels
        encoded as indices into the sorted label names; those are decoded, anything else must be a level."""
        levels = list(self.levels)
        values = set(y.tolist())
        if values <= set(levels):
            return lambda v: v
        if np.issubdtype(y.dtype, np.integer) and values <= set(range(len(levels))):
            codes = sorted(levels)
            return lambda v: codes[int(v)]
        raise ValueError(f"labels outside the ordered levels {levels}: {sorted(map(str, values))}")

    def decision_function(self, X: Any) -> np.ndarray:
        above = np.column_stack([m.predict_proba(X)[:, 1] for m in self.cumulative_])
        return blend(self.multinomial_.decision_function(X), above, self.level_of_class_, self.mix)

    def predict_proba(self, X: Any) -> np.ndarray:
        return softmax(self.decision_function(X), axis=1)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    @property
    def linear_models(self) -> list[Any]:
        """The fitted linear parts: the multinomial model, then the cumulative ones from the lowest level."""
        return [self.multinomial_, *self.cumulative_]
