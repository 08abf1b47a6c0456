"""Held-out quality by the rows it was measured on: the validation report scores real and synthetic rows
apart, and versions saved before that are labeled by the sources they trained on (engine/quality.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.ml_service import load_model_set
from engine.quality import headline, measured, summary_lines
from engine.registry import ModelRegistry
from training.dataset import LabeledIncident, load_jsonl
from training.evaluate import evaluate, score_rows, validation_report
from training.synthetic import generate_incidents


def _labeled(tmp_path: Path) -> list[LabeledIncident]:
    path = tmp_path / "history.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "title": f"Payments API 5xx {i}%",
                    "description": "customers cannot pay",
                    "severity": "critical" if i % 2 else "high",
                    "category": "software_bug",
                    "actions": ["rollback_deploy"],
                    "provider": "acme" if i < 30 else "globex",
                }
            )
            + "\n"
            for i in range(10, 40)
        )
    )
    return load_jsonl(path).rows


def test_the_validation_report_scores_real_and_synthetic_rows_apart(registry_two_versions, tmp_path) -> None:
    scorer = load_model_set(ModelRegistry(registry_two_versions[0]).active()).scorer
    real = _labeled(tmp_path)
    synthetic = generate_incidents(200, seed=5)
    held = [*synthetic[:100], *real, *synthetic[100:]]  # interleaved: the parts must not rely on order

    report = validation_report(scorer, held)
    pooled = score_rows(scorer, held)
    for label in ("severity", "category", "actions"):  # the promotion floor reads these, unchanged
        assert report[label] == pooled[label]
    assert (report["real"]["rows"], report["real"]["sources"]) == (30, {"history": 30})
    assert report["real"]["severity"] == evaluate(scorer, real)["severity"]
    assert set(report["real"]["category"]["by_provider"]) == {"acme", "globex"}
    assert report["synthetic"]["rows"] == 200 and set(report["synthetic"]["sources"]) <= {
        s.source for s in synthetic
    }
    assert report["synthetic"]["category"] == score_rows(scorer, synthetic)["category"]

    sets = measured({"metrics": report})
    assert [m.kind for m in sets] == ["real", "synthetic"]
    lines = summary_lines({"metrics": report})
    assert lines[0].startswith("real labeled rows, n=30 from history 30 (held-out rows of the training")
    assert lines[1].startswith("synthetic rows, n=200 (not evidence of quality on real alerts): ")
    assert "severity macro-F1" in lines[0] and "(n=30)" in lines[0]
    assert headline({"metrics": report}).endswith(" on real labeled rows: held out from the training sources")

    only_synthetic = validation_report(scorer, synthetic)
    assert "real" not in only_synthetic and only_synthetic["synthetic"]["rows"] == 200
    assert headline({"metrics": only_synthetic}).endswith(" on synthetic rows: not evidence of real quality")
    assert validation_report(scorer, []) == {}


@pytest.mark.parametrize(
    ("sources", "kind", "label"),
    [
        (
            {"synthetic/alertmanager": 900, "synthetic/human": 600},
            "synthetic",
            "not evidence of quality on real alerts",
        ),
        (
            {"synthetic/alertmanager": 900, "history": 30},
            "mixed",
            "not evidence of quality on real alerts alone",
        ),
        ({}, "mixed", "not evidence of quality on real alerts alone"),  # sources not recorded: unknown
    ],
)
def test_a_version_saved_before_is_labeled_by_the_sources_it_trained_on(
    registry_two_versions, sources: dict[str, int], kind: str, label: str
) -> None:
    saved = ModelRegistry(registry_two_versions[0]).active().metadata
    old: dict[str, Any] = {
        "metrics": {k: v for k, v in saved["metrics"].items() if k not in ("real", "synthetic")},
        "data": {**saved["data"], "by_source": sources},
    }
    (pooled,) = measured(old)
    assert pooled.kind == kind and pooled.label.endswith(label)
    assert pooled.rows == saved["metrics"]["validation_rows"] and pooled.metrics == old["metrics"]
    (line,) = summary_lines(old)
    assert label in line
    assert "real labeled rows" not in headline(old)


def test_no_held_out_rows_says_so() -> None:
    assert measured({"metrics": {"validation_rows": 0, "train_rows": 40}}) == []
    assert summary_lines({}) == ["no held-out rows: quality not measured"]
    assert headline({"metrics": {}}) == "no held-out rows: quality not measured"
