"""Ratings and corrections become training data: the rules, the export, and a retrained model that follows
the corrections for one service without degrading elsewhere."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import DecisionRecord, Rating, open_store, rating_for
from engine.ml_service import load_model_set
from engine.registry import ModelRegistry
from tests.conftest import small_config
from training.dataset import load_jsonl
from training.evaluate import score_rows
from training.feedback import feedback_rows, labeled, rejected_labels
from training.gate import GATE_SYNTHETIC_ROWS, MARGINS, REPEATED, gate_rows
from training.synthetic import generate_incidents
from training.train import train

ACTIONS = [("restart_service", 0.6), ("scale_up", 0.3), ("monitor", 0.1)]


def record(ts: str, text: str = "disk 97% on db-3 service:orders-db", **kw: object) -> DecisionRecord:
    fields = {
        "channel": "C1",
        "reply_ts": ts,
        "alert_ts": "1.0",
        "source": "human",
        "fingerprint": None,
        "incident_text": text,
        "severity": "medium",
        "severity_confidence": 0.6,
        "category": "hardware",
        "category_confidence": 0.5,
        "actions": ACTIONS,
        "model_version": "v1",
        "created_at": float(ts),
    }
    return DecisionRecord(**{**fields, **kw})  # type: ignore[arg-type]


def test_corrections_outrank_confirmations_and_rejections_stay_unknown() -> None:
    confirmed, _ = labeled(record("2"), [("U1", "verdict", "+1", "confirm", 1.0)])
    assert (confirmed.severity, confirmed.category, confirmed.service) == ("medium", "hardware", "orders-db")
    corrected, _ = labeled(
        record("3"),
        [
            ("U1", "verdict", "+1", "confirm", 1.0),
            ("U2", "severity", "correct_severity", "high", 2.0),
            ("U1", "severity", "correct_severity", "critical", 3.0),  # the latest correction wins
            ("U3", "action", "two", "scale_up", 4.0),
        ],
    )
    assert (corrected.severity, corrected.category, corrected.actions) == (
        "critical",
        "hardware",
        ("scale_up",),
    )
    rejected, refused = labeled(record("4"), [("U1", "verdict", "-1", "reject", 1.0)])
    assert (rejected.severity, rejected.category) == (None, None)
    assert refused == {"rejected_severity": "medium", "rejected_category": "hardware"}
    assert feedback_rows([(record("4"), [("U1", "verdict", "-1", "reject", 1.0)])]) == []


def test_feedback_export_writes_the_labeled_data_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'oncall.db'}"

    async def fill() -> None:
        store = await open_store(url)
        for ts in ("2.0", "3.0", "4.0"):
            await store.record_decision(record(ts))
        await store.rate("C1", "2.0", "U1", "+1", rating_for("+1", ACTIONS))
        await store.rate("C1", "3.0", "U1", "correct_category", Rating("category", "database"))
        await store.close()

    asyncio.run(fill())
    out = tmp_path / "feedback.jsonl"
    assert main(["feedback", "export", "--jsonl", "--db-url", url, "--out", str(out)]) == 0
    rows = load_jsonl(out)
    assert not rows.bad_lines and len(rows.rows) == 2, "the unrated decision is not exported"
    assert [(r.severity, r.category) for r in rows.rows] == [("medium", "hardware"), (None, "database")]
    assert all(json.loads(line)["source"] == "feedback" for line in out.read_text().splitlines())


@pytest.mark.slow
def test_retraining_follows_corrections_for_one_service_and_nothing_else_degrades(tmp_path: Path) -> None:
    """People keep correcting `recommendations` alerts (rarely critical in the synthetic data) to critical;
    a model retrained with that feedback says critical for new ones."""
    root = tmp_path / "models"
    base = train(small_config(7), root)
    service = [r for r in generate_incidents(4000, seed=31) if r.service == "recommendations"]
    seen, fresh = service[:100], service[100:]
    corrections = [
        (record(str(10 + i), r.text), [("U1", "severity", "correct_severity", "critical", 1.0)])
        for i, r in enumerate(seen)
    ]
    retrained = train(small_config(7, extra_rows=feedback_rows(corrections)), root, activate=False)
    registry = ModelRegistry(root)
    before = load_model_set(registry.get(base.version)).scorer
    after = load_model_set(registry.get(retrained.version)).scorer

    def critical_share(scorer: object) -> float:
        scores = scorer.score_many([r.text for r in fresh])  # type: ignore[attr-defined]
        return sum(scorer.severity_classes[s.severity.argmax()] == "critical" for s in scores) / len(fresh)  # type: ignore[attr-defined]

    assert len(fresh) >= 20 and critical_share(before) < 0.5 <= 0.8 <= critical_share(after)
    others = [r for r in gate_rows() if r.service != "recommendations"]
    old, new = score_rows(before, others), score_rows(after, others)
    for label, name in (("severity", "severity macro-F1"), ("category", "category macro-F1")):
        assert new[label]["macro_f1"] >= old[label]["macro_f1"] - MARGINS[name]
    assert new["actions"]["top3"] >= old["actions"]["top3"] - MARGINS["action top-3"]


@pytest.mark.slow
def test_train_with_feedback_holds_the_newest_out_for_the_gate(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'oncall.db'}"
    texts = [r.text for r in generate_incidents(60, seed=5)]

    async def fill() -> None:
        store = await open_store(url)
        for i, text in enumerate(texts):  # 50 confirmed, then the 10 newest rejected
            await store.record_decision(record(str(10 + i), text))
            reaction = "+1" if i < 50 else "-1"
            await store.rate("C1", str(10 + i), "U1", reaction, rating_for(reaction, ACTIONS))
        await store.close()

    asyncio.run(fill())
    models = tmp_path / "models"
    args = ["train", "--samples", "1500", "--no-bundled", "--with-feedback", "--db-url", url]
    args += ["--model-path", str(models)]
    assert main(args) == 0
    assert "60 rated decisions" in capsys.readouterr().err
    metadata = ModelRegistry(models).active().metadata
    assert metadata["data"]["by_source"]["feedback"] == 48, "the newest 12 are held out of training"
    gate = metadata["promotions"][-1]["gate"]
    assert gate["passed"] and gate["rows"] == GATE_SYNTHETIC_ROWS + 2, "the held-out labeled ones are judged"
    assert 0.0 <= gate["candidate"][REPEATED] <= 1.0, "and the rejected labels are checked for repeats"


def test_rejections_are_negatives_the_gate_counts() -> None:
    pairs = [(record("2"), [("U1", "verdict", "-1", "reject", 1.0)])]
    assert rejected_labels(pairs) == [
        ("disk 97% on db-3 service:orders-db", "severity", "medium"),
        ("disk 97% on db-3 service:orders-db", "category", "hardware"),
    ]
