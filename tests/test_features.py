"""Feature code: the fused scorer must equal scikit-learn exactly, and magnitudes must be read right."""

from __future__ import annotations

import numpy as np
import pytest

from engine.features import block_columns, numeric_features
from engine.scorer import compile_scorer, verify_scorer
from tests.conftest import small_config
from training.synthetic import generate_incidents
from training.train import DEFAULT_MODEL_CONFIG, _fit_features, _linear_models, fit_models

ODD_TEXTS = [
    "",
    " ",
    "a",
    "ab",
    "x  y\t\nz",
    "ÜBER straße 🚨 x",
    "\x00ab",
    "日本語のアラート service:auth",
    "a" * 3000,
]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return [r.text for r in generate_incidents(800, seed=11)] + ODD_TEXTS


def test_fused_scorer_matches_scikit_learn_on_unseen_text(corpus: list[str]) -> None:
    models = fit_models(generate_incidents(1200, seed=4), small_config(4))
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    assert scorer.features.single_precision  # training rounds the weights to what float32 holds exactly
    worst = verify_scorer(scorer, models.scorer(), corpus)
    assert worst < 1e-9
    idx, vals = scorer.features.row(corpus[0])
    expected = models.vectorizer.transform([corpus[0]]).tocsr()
    np.testing.assert_allclose(np.sort(idx), np.sort(expected.indices))
    np.testing.assert_allclose(
        dict(zip(idx, vals, strict=True))[expected.indices[0]], expected.data[0], atol=1e-12
    )


def test_numeric_features_read_magnitudes_and_tier() -> None:
    bad = dict(
        zip(
            ("pct", "n_pct", "dur", "ratio", "count", "t1", "t3"),
            numeric_features(
                "error rate 35% p99 9s, 1/6 pods ready, 12,000 requests failing service:payments"
            ),
            strict=False,
        )
    )
    mild = dict(
        zip(
            ("pct", "n_pct", "dur", "ratio", "count", "t1", "t3"),
            numeric_features("error rate 0.5% p99 250ms, 5/6 pods ready service:analytics-etl"),
            strict=False,
        )
    )
    assert bad["pct"] == pytest.approx(0.35) and mild["pct"] == pytest.approx(0.005)
    assert bad["dur"] > mild["dur"]
    assert bad["ratio"] == pytest.approx(1 / 6) and mild["ratio"] == pytest.approx(5 / 6)
    assert bad["count"] > mild["count"]
    assert (bad["t1"], bad["t3"]) == (1.0, 0.0) and (mild["t1"], mild["t3"]) == (0.0, 1.0)
    assert all(np.isfinite(numeric_features("9" * 500 + "% " + "1" * 400 + "h")))


def test_a_huge_alert_is_scored_on_its_head_only() -> None:
    models = fit_models(generate_incidents(600, seed=2), small_config(2))
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    head = "[FIRING:1] DiskFull backup-job disk 97% " * 100
    huge = head + "x" * 1_000_000
    assert verify_scorer(scorer, models.scorer(), [huge]) < 1e-9
    np.testing.assert_array_equal(scorer.score(huge).severity, scorer.score(huge[:4000]).severity)


def test_the_training_matrix_equals_the_pipelines_transform() -> None:
    rows = generate_incidents(400, seed=6)
    mc = {**DEFAULT_MODEL_CONFIG, "parallel_from_rows": 100}
    vectorizer, X = _fit_features([r.text for r in rows], {}, mc, seed=6)
    assert abs(X - vectorizer.transform([r.text for r in rows])).max() < 1e-12


def test_the_category_model_reads_no_title_or_magnitudes_and_is_served_unchanged(corpus: list[str]) -> None:
    models = fit_models(generate_incidents(600, seed=12), small_config(12, samples=600))
    for block in ("title", "numbers"):
        cols = block_columns(models.vectorizer)[block]
        assert cols.stop > cols.start
        for est in _linear_models(models.category):
            assert not est.coef_[:, cols].any(), block
        for est in _linear_models(models.severity):
            assert est.coef_[:, cols].any(), block
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    assert verify_scorer(scorer, models.scorer(), corpus[:200]) < 1e-9
