"""Real rows among thousands of synthetic ones: they carry their share of the action models' weight, their
actions' shares are pooled into the rankings, and the confidence of a model trained on both is fitted on
real rows."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from scipy.special import logit

from engine.scorer import compile_scorer
from engine.taxonomy import ACTIONS
from training.synthetic import generate_incidents
from training.train import DEFAULT_MODEL_CONFIG, TrainConfig, _calibrated, fit_models


def _restore_probability(action_real_weight_share: float, team_rows: int) -> float:
    """P(restore_from_backup) for a full disk, after training on synthetic rows, where a full disk is
    cleared or scaled, and on a team's own full disks (the same texts), which it restored from backup."""
    synthetic = generate_incidents(800, seed=3)
    disks = [
        r
        for r in generate_incidents(16000, seed=4)
        if r.category == "resource_exhaustion" and "disk" in r.text.lower()
    ]
    assert len(disks) >= team_rows + 20, "the generator has too few full disks to draw a team's history from"
    real = [
        replace(row, actions=("restore_from_backup",), source="postmortems/example")
        for row in disks[:team_rows]
    ]
    config = TrainConfig(
        samples=800,
        seed=3,
        progress=False,
        bundled=False,
        model_config={"action_real_weight_share": action_real_weight_share},
    )
    scorer = fit_models([*synthetic, *real], config).scorer()
    column = list(scorer.action_classes).index("restore_from_backup")
    unseen = [r.text for r in disks[team_rows : team_rows + 20]]  # full disks of the team's it never saw
    return float(np.mean([s.actions[column] for s in scorer.score_many(unseen)]))


def _odds(p: float) -> float:
    return p / (1.0 - p)


def test_a_teams_own_remediations_are_not_drowned_by_synthetic_rows() -> None:
    weighted, unweighted = _restore_probability(0.5, 150), _restore_probability(0.0, 150)
    assert _odds(weighted) > 2 * _odds(unweighted), (weighted, unweighted)


def test_a_handful_of_real_rows_keeps_a_rows_weight() -> None:
    assert _restore_probability(0.5, 8) == _restore_probability(0.0, 8)


def test_a_few_dozen_real_rows_already_count_as_a_teams_history() -> None:
    """Sixty post-mortems are enough to weigh as a team's history and to pool what it usually does."""
    weighted, unweighted = _restore_probability(0.5, 60), _restore_probability(0.0, 60)
    assert _odds(weighted) > 2 * _odds(unweighted), (weighted, unweighted)


def test_confidence_is_fitted_on_real_rows_when_there_are_enough() -> None:
    mc = DEFAULT_MODEL_CONFIG
    n = 5000
    real = np.zeros(n, dtype=bool)
    real[-800:] = True
    model = _calibrated(1.0, mc, 0, n, "temperature", real=real)
    ((fit_rows, held),) = model.cv
    assert real[held].all()
    assert len(held) == int(800 * mc["real_calibration_share"])
    assert sorted([*fit_rows, *held]) == list(range(n))

    few = np.zeros(n, dtype=bool)
    few[-mc["calibrate_on_real_from"] + 1 :] = True  # too few to set a confidence on: a slice of all rows
    ((_, held),) = _calibrated(1.0, mc, 0, n, "temperature", real=few).cv
    assert len(held) == int(n * mc["calibration_share"]) and not few[held].all()


def test_a_teams_usual_remediations_are_pooled_into_every_ranking() -> None:
    """With a team's history the action models' log-odds are pooled with each action's share of it:
    ``logit p' = (1 - w) logit p + w logit share``, in the scorer that serves as in scikit-learn's."""
    synthetic = generate_incidents(800, seed=3)
    network = [r for r in generate_incidents(4000, seed=5) if r.category == "network"]
    real = [replace(row, actions=("escalate_vendor",), source="postmortems/example") for row in network[:150]]
    unseen = [r.text for r in generate_incidents(200, seed=6) if r.category == "database"][:10]

    def fit(weight: float) -> Any:
        mc = {"action_real_weight_share": 0.5, "action_prior_weight": weight}
        config = TrainConfig(samples=800, seed=3, progress=False, bundled=False, model_config=mc)
        return fit_models([*synthetic, *real], config)

    plain, pooled = fit(0.0), fit(0.7)
    share = np.full(len(ACTIONS), 1 / 152)  # add-one smoothing over the 150 real rows
    share[list(plain.actions.action_names).index("escalate_vendor")] = 151 / 152
    before = np.array([s.actions for s in plain.scorer().score_many(unseen)])
    after = np.array([s.actions for s in pooled.scorer().score_many(unseen)])
    np.testing.assert_allclose(logit(after), 0.3 * logit(before) + 0.7 * logit(share), atol=1e-6)
    served = compile_scorer(pooled.vectorizer, pooled.severity, pooled.category, pooled.actions)
    np.testing.assert_allclose([s.actions for s in served.score_many(unseen)], after, atol=1e-6)
