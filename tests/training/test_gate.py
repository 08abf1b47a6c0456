"""The promotion gate: a worse version is saved but not activated; --force overrides and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from engine.registry import ModelRegistry
from tests.conftest import small_config
from training.gate import MARGINS
from training.train import GateRefused, train

pytestmark = pytest.mark.slow  # trains versions the gate compares


def test_a_worse_version_is_saved_inactive_until_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = train(small_config(7), tmp_path)
    registry = ModelRegistry(tmp_path)
    first = registry.get(good.version).metadata["promotions"]
    assert first[0]["replaced"] is None and first[0]["gate"]["passed"] and not first[0]["forced"]

    weak = small_config(8, samples=150, min_macro_f1=0.0, min_action_top3=0.0)
    with pytest.raises(GateRefused) as refused:
        train(weak, tmp_path)
    worse = refused.value.version_id
    assert registry.active_id() == good.version, "the active version is untouched"
    assert worse in [v.id for v in registry.list_versions()], "the refused version is kept for inspection"
    gate = refused.value.gate
    assert not gate.passed and any(gate.candidate[m] < gate.active[m] - MARGINS[m] for m in gate.active), (
        "refused because a measure trails by more than its margin"
    )

    # The same from the command line, as a person's first try: refused, and told what to do about it.
    argv = ["train", "--samples", "150", "--seed", "8", "--no-bundled", "--model-path", str(tmp_path)]
    capsys.readouterr()
    assert main([*argv, "--min-macro-f1", "0", "--min-action-top3", "0"]) == 4
    said = [line for line in capsys.readouterr().err.splitlines() if "INFO" not in line]
    assert said[0].startswith("refused by the promotion gate: version ") and "trails the active" in said[0]
    refused_id = said[0].split()[6]
    assert said[1] == (
        "what to do: train with more incidents (--samples 12000, the default, or more); "
        f"or `oncall models promote {refused_id} --force` makes this version active anyway."
    )
    assert registry.active_id() == good.version

    assert main(["models", "promote", worse, "--model-path", str(tmp_path)]) == 4
    assert "promotion gate" in capsys.readouterr().err and registry.active_id() == good.version
    assert main(["models", "promote", worse, "--force", "--model-path", str(tmp_path)]) == 0
    assert registry.active_id() == worse and "forced past the gate" in capsys.readouterr().out
    recorded = json.loads((registry.get(worse).path / "metadata.json").read_text())["promotions"][-1]
    assert recorded["forced"] and recorded["replaced"] == good.version and recorded["gate"]["reasons"]
    assert registry.verify(registry.get(worse)) == [], "recording a promotion leaves the checksums valid"


def test_a_version_that_repeats_what_people_rejected_is_refused(models_dir: Path) -> None:
    from engine.ml_service import load_model_set
    from training import gate
    from training.synthetic import generate_incidents

    registry = ModelRegistry(models_dir)
    active, candidate = registry.active(), registry.get(registry.history()[-1])
    theirs, mine = load_model_set(active).scorer, load_model_set(candidate).scorer
    rejected = []
    for row in generate_incidents(400, seed=77):
        a, c = theirs.score(row.text), mine.score(row.text)
        said = mine.severity_classes[int(c.severity.argmax())]
        if said != theirs.severity_classes[int(a.severity.argmax())]:
            rejected.append((row.text, "severity", said))  # people said no to what the candidate says
    assert len(rejected) >= 5
    result = gate.check(candidate, active, rejected=rejected)
    assert (
        not result.passed and result.candidate[gate.REPEATED] == 1.0 and result.active[gate.REPEATED] == 0.0
    )
    assert any(gate.REPEATED in reason for reason in result.reasons)
