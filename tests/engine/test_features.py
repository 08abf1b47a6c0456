"""Feature code: the fused scorer must equal scikit-learn exactly, and magnitudes must be read right."""

from __future__ import annotations

import re

import numpy as np
import pytest

from engine.features import (
    SIZE_MAGNITUDES,
    block_columns,
    describe_magnitude,
    numeric_feature_names,
    numeric_features,
    readable_reasons,
    split_identifiers,
)
from engine.incident import incident_text
from engine.scorer import compile_scorer, verify_scorer
from tests.conftest import small_config
from training.synthetic import generate_incidents
from training.train import DEFAULT_MODEL_CONFIG, _fit_features, _linear_models, fit_models

ODD_TEXTS = [
    "",
    " ",
    "a",
    "ab",
    "x  y\t\nz",
    "ÜBER straße 🚨 x",
    "\x00ab",
    "日本語のアラート service:auth",
    "a" * 3000,
]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return [r.text for r in generate_incidents(800, seed=11)] + ODD_TEXTS


@pytest.mark.slow
def test_fused_scorer_matches_scikit_learn_on_unseen_text(corpus: list[str]) -> None:
    models = fit_models(generate_incidents(1200, seed=4), small_config(4))
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    assert scorer.features.single_precision  # training rounds the weights to what float32 holds exactly
    worst = verify_scorer(scorer, models.scorer(), corpus)
    assert worst < 1e-9
    idx, vals = scorer.features.row(corpus[0])
    expected = models.vectorizer.transform([corpus[0]]).tocsr()
    np.testing.assert_allclose(np.sort(idx), np.sort(expected.indices))
    np.testing.assert_allclose(
        dict(zip(idx, vals, strict=True))[expected.indices[0]], expected.data[0], atol=1e-12
    )


def test_numeric_features_read_magnitudes_and_tier() -> None:
    bad = dict(
        zip(
            ("pct", "n_pct", "dur", "ratio", "count", "t1", "t3"),
            numeric_features(
                "error rate 35% p99 9s, 1/6 pods ready, 12,000 requests failing service:payments"
            ),
            strict=False,
        )
    )
    mild = dict(
        zip(
            ("pct", "n_pct", "dur", "ratio", "count", "t1", "t3"),
            numeric_features("error rate 0.5% p99 250ms, 5/6 pods ready service:analytics-etl"),
            strict=False,
        )
    )
    assert bad["pct"] == pytest.approx(0.35) and mild["pct"] == pytest.approx(0.005)
    assert bad["dur"] > mild["dur"]
    assert bad["ratio"] == pytest.approx(1 / 6) and mild["ratio"] == pytest.approx(5 / 6)
    assert bad["count"] > mild["count"]
    assert (bad["t1"], bad["t3"]) == (1.0, 0.0) and (mild["t1"], mild["t3"]) == (0.0, 1.0)
    assert all(np.isfinite(numeric_features("9" * 500 + "% " + "1" * 400 + "h")))


@pytest.mark.slow
def test_a_huge_alert_is_scored_on_its_head_only() -> None:
    models = fit_models(generate_incidents(600, seed=2), small_config(2))
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    head = "[FIRING:1] DiskFull backup-job disk 97% " * 100
    huge = head + "x" * 1_000_000
    assert verify_scorer(scorer, models.scorer(), [huge]) < 1e-9
    np.testing.assert_array_equal(scorer.score(huge).severity, scorer.score(huge[:4000]).severity)


@pytest.mark.slow
def test_the_training_matrix_equals_the_pipelines_transform() -> None:
    rows = generate_incidents(400, seed=6)
    mc = {**DEFAULT_MODEL_CONFIG, "parallel_from_rows": 100}
    vectorizer, X = _fit_features([r.text for r in rows], {}, mc, seed=6)
    assert abs(X - vectorizer.transform([r.text for r in rows])).max() < 1e-12


@pytest.mark.slow
def test_the_category_model_reads_no_title_or_magnitudes_and_is_served_unchanged(corpus: list[str]) -> None:
    models = fit_models(generate_incidents(600, seed=12), small_config(12, samples=600))
    for block in ("title", "numbers"):
        cols = block_columns(models.vectorizer)[block]
        assert cols.stop > cols.start
        for est in _linear_models(models.category):
            assert not est.coef_[:, cols].any(), block
        for est in _linear_models(models.severity):
            assert est.coef_[:, cols].any(), block
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    assert verify_scorer(scorer, models.scorer(), corpus[:200]) < 1e-9


def test_identifiers_are_read_as_words() -> None:
    assert split_identifiers("KubeAPIDown") == "Kube API Down"
    assert (
        split_identifiers("MSSQLHighNumberOfDeadlocks on db-prod-3")
        == "MSSQL High Number Of Deadlocks on db-prod-3"
    )
    assert split_identifiers("etcdNoLeader, p99 250ms, v1.2") == "etcd No Leader, p99 250ms, v1.2"
    assert split_identifiers("already words, UPPER, lower") == "already words, UPPER, lower"


@pytest.mark.slow
def test_an_unseen_rule_name_shares_the_words_of_a_known_one(corpus: list[str]) -> None:
    """With identifiers split, "CassandraNodeDown" and "Cassandra node is down" read the same words, and
    the fused scorer (which splits in Python before C reads the text) still equals scikit-learn."""
    models = fit_models(generate_incidents(600, seed=13), small_config(13, samples=600))
    X = models.vectorizer.transform(["CassandraNodeDown", "cassandra node down"])
    assert abs(X[0] - X[1]).max() < 1e-12
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    rules = ["[FIRING:1] KubeAPIDown", "NodeFilesystemSpaceFillingUp", "HTTPServerErrorsHigh 5xx"]
    assert verify_scorer(scorer, models.scorer(), [*rules, *corpus[:100]]) < 1e-9


@pytest.mark.slow
def test_a_pipeline_saved_without_identifier_splitting_scores_as_before(corpus: list[str]) -> None:
    config = small_config(14, samples=600, feature_config={"split_identifiers": False})
    models = fit_models(generate_incidents(600, seed=14), config)
    assert [name for name, _ in models.vectorizer.steps] == ["head", "features"]
    X = models.vectorizer.transform(["CassandraNodeDown", "cassandra node down"])
    assert abs(X[0] - X[1]).max() > 0.1
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    assert verify_scorer(scorer, models.scorer(), ["KubeAPIDown", *corpus[:100]]) < 1e-9


@pytest.mark.slow
def test_no_model_reads_the_size_of_the_message_and_no_explanation_cites_it(corpus: list[str]) -> None:
    models = fit_models(generate_incidents(800, seed=15), small_config(15, samples=800))
    cols = block_columns(models.vectorizer)["numbers"]
    names = list(numeric_feature_names(models.vectorizer.steps[-1][1].get_params()["numbers"][0].phrases))
    size = [cols.start + names.index(m) for m in SIZE_MAGNITUDES]
    read = [cols.start + names.index(m) for m in ("max_percent", "log_max_duration_s", "tier_1")]
    for head in (models.severity, models.category, models.actions):
        for est in _linear_models(head):
            assert not est.coef_[:, size].any()
    assert any(est.coef_[:, read].any() for est in _linear_models(models.severity))
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    said = []
    for text in [*corpus[:300], "db down", "disk 97% full on db-prod-3 for 45 minutes"]:
        scores = scorer.score(text)
        severity = scorer.severity_classes[int(np.argmax(scores.severity))]
        said += [term for term, _ in scorer.explain(scores, severity, top=8)]
    for word in ("length", "word count", "line count", "largest number", "number of percentages"):
        assert not [t for t in said if word in t], word


def test_magnitudes_are_explained_as_the_facts_in_the_text() -> None:
    assert describe_magnitude("max_percent", True, 0.97) == "97%"
    assert describe_magnitude("log_max_duration_s", True, float(np.log1p(45 * 60))) == "lasting 45 min"
    assert describe_magnitude("log_max_duration_s", True, float(np.log1p(0.25))) == "lasting 250 ms"
    assert describe_magnitude("min_ready_ratio", False, 1 / 6) == "17% ready"
    assert describe_magnitude("tier_1", True, 1.0) == "tier-1 service"
    assert describe_magnitude("log_words", False) == "low word count"  # older versions still read it


def test_reasons_are_the_words_of_the_alert_as_written() -> None:
    text = incident_text("Checkout API returning 500s after deploy, did not recover")
    terms = [
        ("rning", 3.0),  # a character n-gram of "returning"
        (" 500", 2.9),  # of "500s", at the word's start
        ("checkout api", 2.8),
        ("api", 2.7),  # said by the bigram already
        ("not", 2.6),  # a function word: never a reason
        ('mentions "error"', 2.5),  # a counted phrase the text does not say
        ("no percentage", 2.4),  # an absent fact
        ("low word count", 2.3),  # a size (older versions)
        ("unknown", 2.2),  # the service suffix's word, not the author's
        ("lasting 45 min", 2.1),  # a fact read from the text stays as it is
        ("deploy", 2.0),
    ]
    assert readable_reasons(text, terms, top=5) == [
        "returning",
        "500s",
        "Checkout API",
        "lasting 45 min",
        "deploy",
    ]
    assert readable_reasons(text, terms, top=2) == ["returning", "500s"]
    assert readable_reasons("", terms, top=5) == ["lasting 45 min"]


@pytest.mark.slow
def test_a_served_decision_explains_itself_in_its_own_words(corpus: list[str]) -> None:
    models = fit_models(generate_incidents(800, seed=16), small_config(16, samples=800))
    scorer = compile_scorer(models.vectorizer, models.severity, models.category, models.actions)
    for text in [*corpus[:200], "Redis primary down, failover did not trigger", "KubePodCrashLooping"]:
        scores = scorer.score(text)
        severity = scorer.severity_classes[int(np.argmax(scores.severity))]
        said = readable_reasons(text, scorer.explain(scores, severity, top=15), top=5)
        words = {w.lower() for w in re.findall(r"[\w%][\w%.'/-]*", split_identifiers(text))}
        for reason in said:
            if not re.fullmatch(r"lasting .+|[\d.]+% ready|tier-\d service|[\d.]+%", reason):
                assert set(reason.lower().split()) <= words, (reason, text)
        assert len({w for r in said for w in r.lower().split()}) == sum(len(r.split()) for r in said), said
