"""Real rows among thousands of synthetic ones: they carry their share of the action models' weight, and
the confidence of a model trained on both is fitted on real rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

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


def test_a_teams_own_remediations_are_not_drowned_by_synthetic_rows() -> None:
    weighted, unweighted = _restore_probability(0.5, 150), _restore_probability(0.0, 150)

    def odds(p: float) -> float:
        return p / (1.0 - p)

    assert odds(weighted) > 2 * odds(unweighted), (weighted, unweighted)


def test_a_handful_of_real_rows_keeps_a_rows_weight() -> None:
    assert _restore_probability(0.5, 8) == _restore_probability(0.0, 8)


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
