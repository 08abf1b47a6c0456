"""The promotion gate: a worse version is saved but not activated; --force overrides and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from engine.registry import ModelRegistry
from tests.conftest import small_config
from training.gate import MARGINS
from training.train import GateRefused, TrainConfig, train


def test_a_worse_version_is_saved_inactive_until_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = train(small_config(7), tmp_path)
    registry = ModelRegistry(tmp_path)
    first = registry.get(good.version).metadata["promotions"]
    assert first[0]["replaced"] is None and first[0]["gate"]["passed"] and not first[0]["forced"]

    weak = TrainConfig(samples=150, seed=8, progress=False, min_macro_f1=0.0, min_action_top3=0.0)
    with pytest.raises(GateRefused) as refused:
        train(weak, tmp_path)
    worse = refused.value.version_id
    assert registry.active_id() == good.version, "the active version is untouched"
    assert worse in [v.id for v in registry.list_versions()], "the refused version is kept for inspection"
    gate = refused.value.gate
    assert not gate.passed and any(gate.candidate[m] < gate.active[m] - MARGINS[m] for m in gate.active), (
        "refused because a measure trails by more than its margin"
    )

    assert main(["models", "promote", worse, "--model-path", str(tmp_path)]) == 4
    assert "promotion gate" in capsys.readouterr().err and registry.active_id() == good.version
    assert main(["models", "promote", worse, "--force", "--model-path", str(tmp_path)]) == 0
    assert registry.active_id() == worse and "forced past the gate" in capsys.readouterr().out
    recorded = json.loads((registry.get(worse).path / "metadata.json").read_text())["promotions"][-1]
    assert recorded["forced"] and recorded["replaced"] == good.version and recorded["gate"]["reasons"]
    assert registry.verify(registry.get(worse)) == [], "recording a promotion leaves the checksums valid"
