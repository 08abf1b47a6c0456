"""The ordinal severity blend: levels in the right order, the labels scikit-learn hands it, served fused."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression

from engine.ordinal import OrdinalBlendClassifier, level_probabilities
from engine.scorer import compile_scorer
from tests.conftest import small_config
from training.synthetic import generate_incidents
from training.train import fit_models

LEVELS = ("low", "medium", "high", "critical")


def _ordered_data(n: int = 400, seed: int = 0) -> tuple[csr_matrix, np.ndarray]:
    """One feature that sets the level (cut at three thresholds, with noise) and one of pure noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 4, n)
    level = np.clip((x + rng.normal(0, 0.4, n)).astype(int), 0, 3)
    X = csr_matrix(np.column_stack([x, rng.normal(size=n)]))
    return X, np.array([LEVELS[i] for i in level], dtype=object)


def test_level_probabilities_are_a_distribution_even_when_the_cumulative_models_cross() -> None:
    above = np.array([[0.9, 0.6, 0.2], [0.3, 0.5, 0.4], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    p = level_probabilities(above)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert (p > 0).all()
    np.testing.assert_allclose(p[0], [0.1, 0.3, 0.4, 0.2], atol=1e-5)
    # "worse than medium" (0.5) and "worse than high" (0.4) above "worse than low" (0.3) are cut to it
    np.testing.assert_allclose(p[1], [0.7, 0.0, 0.0, 0.3], atol=1e-5)


@pytest.mark.parametrize("mix", [0.3, 1.0])
def test_a_larger_signal_means_a_more_severe_level(mix: float) -> None:
    X, y = _ordered_data()
    model = OrdinalBlendClassifier(LogisticRegression(C=10.0, max_iter=2000), LEVELS, mix).fit(X, y)
    assert list(model.classes_) == sorted(LEVELS)  # scikit-learn's order, not the scale's
    grid = csr_matrix(np.column_stack([np.linspace(0, 4, 9), np.zeros(9)]))
    proba = model.predict_proba(grid)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    ranks = {c: LEVELS.index(c) for c in model.classes_}
    expected_rank = proba @ np.array([ranks[c] for c in model.classes_])
    assert np.all(np.diff(expected_rank) > 0)
    assert list(model.predict(grid[[0, -1]])) == ["low", "critical"]


@pytest.mark.slow
def test_labels_encoded_by_temperature_calibration_are_decoded_to_their_levels() -> None:
    X, y = _ordered_data(seed=1)
    base = OrdinalBlendClassifier(LogisticRegression(C=10.0, max_iter=2000), LEVELS, 0.3)
    calibrated = CalibratedClassifierCV(base, method="temperature", cv=3, ensemble=False).fit(X, y)
    (inner,) = calibrated.calibrated_classifiers_
    assert list(inner.estimator.classes_) == [0, 1, 2, 3]  # what scikit-learn handed it
    direct = OrdinalBlendClassifier(LogisticRegression(C=10.0, max_iter=2000), LEVELS, 0.3).fit(X, y)
    np.testing.assert_array_equal(inner.estimator.level_of_class_, direct.level_of_class_)
    grid = csr_matrix(np.column_stack([np.linspace(0, 4, 9), np.zeros(9)]))
    assert list(calibrated.predict(grid[[0, -1]])) == ["low", "critical"]


def test_labels_off_the_scale_or_too_few_levels_are_refused() -> None:
    X, y = _ordered_data()
    model = OrdinalBlendClassifier(LogisticRegression(), LEVELS)
    with pytest.raises(ValueError, match="outside the ordered levels"):
        model.fit(X, np.where(y == "low", "sev5", y))
    with pytest.raises(ValueError, match="at least three levels"):
        model.fit(X, np.where(np.isin(y, ["low", "medium"]), "low", "high"))


@pytest.mark.slow
def test_the_default_severity_model_is_a_blend_that_the_fused_scorer_serves() -> None:
    rows = generate_incidents(800, seed=5)
    models = fit_models(rows, small_config(5))
    (calibrated,) = models.severity.calibrated_classifiers_
    assert isinstance(calibrated.estimator, OrdinalBlendClassifier)
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    texts = [r.text for r in rows[:200]]
    np.testing.assert_allclose(
        [s.severity for s in scorer.score_many(texts)],
        [s.severity for s in models.scorer().score_many(texts)],
        atol=1e-9,
    )
    off = fit_models(rows, small_config(5, model_config={"severity_ordinal_mix": 0.0}))
    (plain,) = off.severity.calibrated_classifiers_
    assert isinstance(plain.estimator, LogisticRegression)
    two = [r for r in rows if r.severity in ("low", "critical")]  # two levels: no scale to blend on
    (two_levels,) = fit_models(two, small_config(5)).severity.calibrated_classifiers_
    assert isinstance(two_levels.estimator, LogisticRegression)
