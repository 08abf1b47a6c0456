"""The plain-language suite (training/data/plain_language.jsonl) against the built-in model.

Issue 16's targets for the model `make run` trains with no user data are an acceptable severity on >= 85%
of the messages, an acceptable category on >= 80% and an acceptable action in the top three on >= 85%;
`bench/quality.py` reports against them. Severity is not reached yet, so this test holds the built-in
model to floors a few rows under what it measured on the 100 messages: a change that makes it worse fails
here. A failure lists the rows it got wrong, which is what to look at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.ml_service import load_model_set
from engine.registry import ModelRegistry
from engine.scorer import Scores
from engine.taxonomy import CATEGORIES, SEVERITIES
from training.suite import SUITE_PATH, SuiteRow, failures, format_row, load_suite, run_suite, summary_line
from training.train import train_builtin

FLOORS = {"severity": 0.60, "category": 0.75, "actions": 0.85}


def test_suite_file_loads_with_valid_labels() -> None:
    rows = load_suite()
    assert len(rows) >= 40
    assert len({r.text for r in rows}) == len(rows), "duplicate messages"
    assert {s for r in rows for s in r.severity} == set(SEVERITIES)
    assert {c for r in rows for c in r.category or ()} == set(CATEGORIES)
    # The low end is there: a model that calls everything critical or high must fail the suite.
    only_low = [r for r in rows if set(r.severity) <= {"low", "medium"}]
    assert len(only_low) / len(rows) > 0.25
    assert sum(r.actions is not None for r in rows) >= 40


def test_a_bad_label_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    good = SUITE_PATH.read_text(encoding="utf-8").splitlines()[0]
    path.write_text(good + "\n" + '{"text": "db down", "severity": ["urgent"]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"suite\.jsonl:2: unknown severity 'urgent'"):
        load_suite(path)
    path.write_text('{"text": "db down", "severity": ["high"], "actions": ["reboot"]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r":1: unknown actions 'reboot'"):
        load_suite(path)
    path.write_text('{"text": "db down", "severity": []}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r":1: severity must be a non-empty list"):
        load_suite(path)


class _ByWords:
    """A scorer that splits its severity between critical, high and medium by what the text says."""

    severity_classes = ("critical", "high", "low", "medium")
    category_classes: tuple[str, ...] = ()
    action_classes: tuple[str, ...] = ()

    def __init__(self, p_critical: Callable[[str], float]) -> None:
        self.p_critical = p_critical

    def score_many(self, texts: Sequence[str]) -> list[Scores]:
        out = []
        for text in texts:
            p = self.p_critical(text)
            out.append(Scores(np.array([p, 0.1, 0.0, 0.9 - p]), None, np.zeros(0)))
        return out


PAGE_ROWS = [
    SuiteRow("primary db down", ("critical",)),
    SuiteRow("checkout down after deploy", ("critical", "high")),
    SuiteRow("disk at 81% on logs-01", ("low", "medium")),
    SuiteRow("fyi: maintenance tonight", ("low",)),
    SuiteRow("search a bit slow", ("medium", "high")),  # either side is fine: not ranked
]


def test_page_auc_measures_the_ranking_not_the_level() -> None:
    # Every message stays under P(page) 0.5, so none is called critical or high, yet the ranking is right.
    right = run_suite(_ByWords(lambda t: 0.3 if "down" in t else 0.05), PAGE_ROWS)
    assert right["page_auc"] == 1.0
    assert right["severity"] == pytest.approx(2 / 5)
    assert [round(d["page_probability"], 2) for d in right["rows"]] == [0.4, 0.4, 0.15, 0.15, 0.15]
    assert run_suite(_ByWords(lambda t: 0.05 if "down" in t else 0.3), PAGE_ROWS)["page_auc"] == 0.0
    assert run_suite(_ByWords(lambda t: 0.2), PAGE_ROWS)["page_auc"] == 0.5  # ties count half
    assert run_suite(_ByWords(lambda t: 0.2), PAGE_ROWS[:2])["page_auc"] is None


@pytest.fixture(scope="module")
def builtin_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The built-in model, trained once for this module as `make run` trains it, run through the suite."""
    root = tmp_path_factory.mktemp("builtin")
    train_builtin(root)
    scorer = load_model_set(ModelRegistry(root).active()).scorer
    return run_suite(scorer, load_suite())


@pytest.mark.parametrize("key", list(FLOORS))
def test_builtin_model_stays_above_its_floors(builtin_result: dict[str, Any], key: str) -> None:
    share = builtin_result[key]
    wrong = failures(builtin_result, key)
    assert share >= FLOORS[key], (
        f"{key}: {share:.3f} < {FLOORS[key]} ({summary_line(builtin_result)}); wrong rows:\n"
        + "\n".join(format_row(d) for d in wrong)
    )
