"""The `oncall` command run as a user runs it (a real subprocess): train, predict, models, evaluate."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.decision import AIDecisionEngine
from engine.incident import IncidentCreate
from engine.ml_service import MLService
from training.dataset import load_jsonl
from training.synthetic import generate_incidents

ROOT = Path(__file__).resolve().parents[3]


def oncall(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ML_AUTO_TRAIN": "0", **(env or {})},
    )


@pytest.mark.slow
def test_cli_train_predict_models_and_evaluate(tmp_path: Path) -> None:
    models = str(tmp_path / "models")
    data = tmp_path / "history.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(
                {
                    "title": f"Payments API 5xx {i}%",
                    "description": "customers cannot pay",
                    "service": "payments",
                    "severity": "critical",
                    "category": "software_bug",
                    "actions": ["rollback_deploy"],
                    "provider": "acme",
                }
            )
            for i in range(10, 40)
        )
        + "\n{broken\n"
    )
    # --no-bundled: the shipped alerting rules would triple the rows (tests/training/test_bundled.py has them)
    out = oncall(
        "train",
        "--samples",
        "1200",
        "--seed",
        "3",
        "--no-bundled",
        "--data",
        str(data),
        "--model-path",
        models,
    )
    assert out.returncode == 0, out.stderr
    assert "trained version" in out.stdout and "macro-F1" in out.stdout
    assert f"{data}:31" in out.stderr  # the broken line is reported, training went on
    # Quality on real labeled rows first, with how many and whence; the synthetic rows' numbers labeled.
    heads = [line for line in out.stdout.splitlines() if line.startswith("  on ")]
    assert len(heads) == 2, out.stdout
    assert heads[0].startswith("  on real labeled rows, n=") and "history 6 (held-out rows of" in heads[0]
    assert re.fullmatch(r"  on synthetic rows, n=2\d\d \(not evidence of quality on real alerts\):", heads[1])
    assert "[acme] n=6" in out.stdout  # the real rows per provider

    out = oncall(
        "predict", "--json", "--service", "payments", "HighErrorRate 35% 5xx", "--model-path", models
    )
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert set(decision) >= {
        "severity",
        "severity_confidence",
        "category",
        "category_confidence",
        "actions",
        "uncertain",
        "model_version",
        "explanation",
    }
    assert len(decision["actions"]) == 3 and set(decision["actions"][0]) == {"action", "confidence"}

    out = oncall("evaluate", "--data", str(data), "--json", "--model-path", models)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["severity"]["n"] == 30 and set(report["severity"]["by_provider"]) == {"acme"}
    assert set(report["severity"]) >= {
        "n",
        "accuracy",
        "macro_f1",
        "ece",
        "per_class",
        "confusion",
        "by_provider",
    }
    assert set(report["actions"]) == {"n", "top1", "top3"}
    assert report["bad_lines"] == [
        f"{data}:31: not valid JSON: Expecting property name enclosed in double quotes at column 2"
    ]

    first = json.loads((tmp_path / "models" / "active.json").read_text())["version"]
    assert (
        oncall("train", "--samples", "1200", "--seed", "4", "--no-bundled", "--model-path", models).returncode
        == 0
    )
    listing = oncall("models", "list", "--model-path", models).stdout
    assert first in listing and listing.count("\n") == 2
    (first_line,) = [line for line in listing.splitlines() if first in line]
    assert first_line.endswith(" on real labeled rows: held out from the training sources"), first_line
    out = oncall("models", "rollback", "--model-path", models)
    assert out.returncode == 0 and first in out.stdout
    status = json.loads(oncall("models", "status", "--json", "--model-path", models).stdout)
    assert status["serving_version"] == first and status["scorer"] == "fused"
    assert [q["kind"] for q in status["quality"]] == ["real", "synthetic"]
    assert status["quality"][1]["label"] == "synthetic rows: not evidence of quality on real alerts"
    assert status["quality"][0]["sources"]["history"] == 6
    assert "severity macro-F1" in status["quality"][0]["numbers"]
    assert status["models"]["category_classifier"]["measured_on"].startswith("real labeled rows: held out")
    out = oncall("models", "promote", "nope", "--model-path", models)
    assert out.returncode == 2 and "no model version 'nope'" in out.stderr

    doctor = oncall("doctor", "--model-path", models)
    assert doctor.returncode == 0 and "verdict: healthy" in doctor.stdout
    victim = next((tmp_path / "models" / "versions" / first).glob("action_recommender.joblib"))
    victim.write_bytes(b"garbage")
    doctor = oncall("doctor", "--model-path", models)
    assert doctor.returncode == 1 and "checksum mismatch" in doctor.stdout and "NOT healthy" in doctor.stdout


@pytest.mark.slow
def test_cli_errors_are_one_clear_sentence(tmp_path: Path) -> None:
    out = oncall("evaluate", "--data", str(tmp_path / "missing.jsonl"), "--model-path", str(tmp_path))
    assert out.returncode == 2 and "no such file" in out.stderr and "missing.jsonl" in out.stderr
    (tmp_path / "rows.jsonl").write_text("")
    out = oncall("evaluate", "--data", str(tmp_path / "rows.jsonl"), "--model-path", str(tmp_path))
    assert out.returncode == 1 and "cannot load the active model" in out.stderr
    out = oncall("train", "--no-synthetic", "--model-path", str(tmp_path / "m"))
    assert out.returncode == 2 and "no training data" in out.stderr
    assert "Traceback" not in out.stderr


def test_evaluate_runs_on_the_real_dev_files(shared_data: Path, registry_two_versions) -> None:
    root = registry_two_versions[0]
    files = sorted(shared_data.glob("*.dev.jsonl"))
    args = [a for f in files for a in ("--data", str(f))]
    out = oncall("evaluate", *args, "--json", "--model-path", str(root))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["severity"]["n"] > 500 and report["category"]["n"] > 200
    assert {"GitHub", "OpenAI"} <= set(report["severity"]["by_provider"])
    assert 0 <= report["severity"]["macro_f1"] <= 1 and report["actions"]["n"] > 100


def test_the_default_model_beats_the_majority_class_on_every_real_file_it_never_saw(
    shared_data: Path, registry_two_versions
) -> None:
    """What a new team gets before it has history (synthetic incidents and the bundled alerting rules):
    it must know more than "always the commonest label" on real text it never saw (status-page severity,
    post-mortem categories). The shared copy of the bundled rules is no unseen text: it is left out."""
    from engine.ml_service import load_model_set
    from engine.registry import ModelRegistry
    from training.bundled import alert_rules
    from training.evaluate import evaluate

    scorer = load_model_set(ModelRegistry(registry_two_versions[0]).active()).scorer
    bundled = {r.id for r in alert_rules()}
    scored = 0
    for path in sorted(shared_data.glob("*.dev.jsonl")):
        rows = [r for r in load_jsonl(path).rows if r.id not in bundled]
        report = evaluate(scorer, rows)
        for label in ("severity", "category"):
            if report[label].get("n", 0) >= 30:
                scored += 1
                assert report[label]["macro_f1"] > report[label]["majority_macro_f1"], (path.name, label)
    assert scored == 3  # status-page severity, the cloud post-mortems' and danluu's categories


def test_predict_marks_only_the_field_that_is_uncertain(registry_two_versions) -> None:
    """With the threshold between the two confidences, `oncall predict` marks the less sure field alone:
    a confident severity is not shown as uncertain because the category is (and the other way round)."""
    root = str(registry_two_versions[0])
    engine = AIDecisionEngine(MLService(root, auto_train=False))
    asyncio.run(engine.start())
    texts = [r.title for r in generate_incidents(300, seed=11)]
    cases: dict[str, tuple[str, float]] = {}  # the less sure field -> a text and a threshold between
    for text in texts:
        d = engine.analyze(IncidentCreate(text))
        low, high = sorted((d.severity_confidence, d.category_confidence))
        if high - low > 0.02:  # the threshold between them is no close call
            unsure = "severity" if d.severity_confidence < d.category_confidence else "category"
            cases.setdefault(unsure, (text, (low + high) / 2))
    assert set(cases) == {"severity", "category"}, "300 alert titles cover both orders"
    for unsure, (text, threshold) in cases.items():
        env = {"ONCALL_UNCERTAIN_BELOW": str(threshold)}
        out = oncall("predict", "--model-path", root, "--", text, env=env)
        assert out.returncode == 0, out.stderr
        lines = {line.split(":", 1)[0]: line for line in out.stdout.splitlines()}
        sure = "category" if unsure == "severity" else "severity"
        assert lines[unsure].endswith(" (uncertain)"), out.stdout
        assert "uncertain" not in lines[sure], out.stdout
        decision = json.loads(oncall("predict", "--json", "--model-path", root, "--", text, env=env).stdout)
        assert decision[f"{unsure}_uncertain"] and not decision[f"{sure}_uncertain"] and decision["uncertain"]
