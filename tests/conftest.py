"""Shared fixtures: small real models trained once per session, copied per test that changes them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from training.train import TrainConfig, TrainResult, train

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def small_config(seed: int = 7, **kwargs: object) -> TrainConfig:
    """A model that trains in a few seconds but is a real one (same pipeline, same calibration)."""
    return TrainConfig(samples=1500, seed=seed, progress=False, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def registry_two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult, TrainResult]:
    """A model directory with two versions: A (seed 7) then B (seed 8, active)."""
    root = tmp_path_factory.mktemp("models")
    first = train(small_config(7), root)
    second = train(small_config(8), root)
    return root, first, second


@pytest.fixture
def models_dir(registry_two_versions: tuple[Path, TrainResult, TrainResult], tmp_path: Path) -> Path:
    """A private copy of the two-version directory that a test may change."""
    target = tmp_path / "models"
    shutil.copytree(registry_two_versions[0], target)
    return target


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data/real is not present (a fresh clone): real-data tests skipped")
    return SHARED_DATA
