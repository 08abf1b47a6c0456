"""The action recommender: one calibrated binary model per remediation action (multi-label).

A plain ``OneVsRestClassifier`` fitted on an indicator matrix only knows its columns as 0..12; this
subclass keeps the action names with the model, so a saved file says what it ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from engine.taxonomy import ACTIONS


class ActionRecommender(OneVsRestClassifier):
    """Ranks every action with an independent probability; ``action_names`` labels the columns."""

    def __init__(
        self, estimator: Any, *, actions: Sequence[str] = ACTIONS, n_jobs: int | None = None
    ) -> None:
        super().__init__(estimator, n_jobs=n_jobs)
        self.actions = actions

    def fit(self, X: Any, y: Sequence[Sequence[str]], **fit_params: Any) -> ActionRecommender:
        """``y``: for each row, the actions that were taken (names from ``actions``)."""
        Y = MultiLabelBinarizer(classes=list(self.actions)).fit_transform(y)
        super().fit(X, Y, **fit_params)
        return self

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(self.actions)
