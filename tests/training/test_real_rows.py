"""Real rows among thousands of synthetic ones: they carry their share of the action models' weight, and
the confidence of a model trained on both is fitted on real rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from training.synthetic import generate_incidents
from training.train import DEFAULT_MODEL_CONFIG, TrainConfig, _calibrated, fit_models


def _restore_probability(action_real_weight_share: float, team_rows: int) -> float:
    """P(restore_from_backup) for a full disk, after training on synthetic rows, where a full disk is
    cleared or scaled, and on a team's own full disks (the same texts), which it restored from backup."""
    synthetic = generate_incidents(800, seed=3)
    disks = [r for r in synthetic if "disk" in r.text.lower() and r.category == "resource_exhaustion"]
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
    (scores,) = scorer.score_many([disks[-1].text])
    return float(scores.actions[list(scorer.action_classes).index("restore_from_backup")])


@pytest.mark.parametrize("team_rows", [8, 30])
def test_a_teams_own_remediations_are_not_drowned_by_synthetic_rows(team_rows: int) -> None:
    weighted, unweighted = _restore_probability(0.5, team_rows), _restore_probability(0.0, team_rows)
    assert weighted > 1.5 * unweighted, (weighted, unweighted)


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
