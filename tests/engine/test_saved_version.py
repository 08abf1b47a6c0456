"""A model version saved by an earlier commit still loads and serves: moving or renaming code must not strand
the versions operators already have on disk.

The fixture is what ``oncall train --samples 60 --no-bundled --min-macro-f1 0 --min-action-top3 0`` saved at
commit 1ec2dd5, before the source layout changed, reduced to what serving reads: ``active.json``, the
version's ``metadata.json`` and ``serving.npz`` (arrays and JSON, no pickle). The joblib files were left out
(about 1 MB more): serving never reads them, and a trained model is the same bytes whatever the layout.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from engine.ml_service import MLService

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "saved-version-1ec2dd5"
VERSION = "20261202T202924Z-b3aeaa"
TEXT = "Database connection pool exhausted on checkout-db: 500 errors for 10 minutes"


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A private copy: loading may write beside the version (a lock, a staging directory)."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "models"))


def test_a_version_saved_before_the_moves_serves(saved: Path) -> None:
    ml = MLService(saved, auto_train=False)
    asyncio.run(ml.initialize())  # also checks the probe predictions recorded in its metadata, to 1e-6
    assert ml.last_error is None
    assert ml.models.version == VERSION and not ml.models.fallback
    prediction = ml.predict(TEXT)
    # What the commit that saved it predicted for this text.
    assert (prediction.severity, prediction.category) == ("medium", "third_party")
    assert prediction.severity_confidence == pytest.approx(0.2667240205137864, abs=1e-6)
    assert prediction.category_confidence == pytest.approx(0.22919619428679178, abs=1e-6)
    assert [a for a, _ in prediction.actions[:3]] == ["failover", "monitor", "scale_up"]
    assert prediction.actions[0][1] == pytest.approx(0.4532152903662183, abs=1e-6)
