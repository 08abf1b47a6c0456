"""The hot path against readable definitions: regular expressions for the magnitudes, scikit-learn's own
analyzers and transform for the feature rows. Every check runs against both implementations, the C
extension (engine/_native.c) and the same code in NumPy (engine/_native_py.py), which serves without it."""

from __future__ import annotations

import math
import pickle
import re
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from engine.features import (
    LEGACY_STATUS_PHRASES,
    MAGNITUDES,
    NUMBER_RULES,
    STATUS_PHRASES,
    CharNgrams,
    build_feature_pipeline,
    feature_union,
    numeric_features,
    split_identifiers,
)
from engine.scorer import compile_features
from engine.services import service_tier
from tests.native_impls import IMPLS, implementation
from training.synthetic import generate_incidents

# The magnitude features as regular expressions: what the C scanner must find, match for match.
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s?%")
_DURATION = re.compile(
    r"(\d+(?:\.\d+)?)\s?(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b", re.IGNORECASE
)
# Rules 2: not after a letter unless that letter follows a digit (k8s; 6h43m), not an HTTP status family
# (500s).
_DURATION_2 = re.compile(
    r"(?<!\d)(?:(?<![^\W\d])|(?<=\d[^\W\d]))(?![45]\d\ds\b)(\d+(?:\.\d+)?)\s?"
    r"(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b",
    re.IGNORECASE,
)
_RATIO = re.compile(r"\b(\d{1,4})\s?/\s?(\d{1,4})\b")
_NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
_SERVICE = re.compile(r"service:(\S+)\s*$")


# re.IGNORECASE matches these to ASCII letters, so the unit they spell is the ASCII one.
_FOLD = {"\u017f": "s", "\u0131": "i", "\u0130": "i", "\u212a": "k"}


def _unit_seconds(unit: str) -> float:
    u = "".join(_FOLD.get(c, c.lower()) for c in unit)
    if u.startswith(("ms", "milli")):
        return 0.001
    if u.startswith("s"):
        return 1.0
    if u.startswith("m"):
        return 60.0
    return 3600.0


def reference_numeric_features(text: str, rules: int = NUMBER_RULES) -> list[float]:
    percents = [float(p) for p in _PERCENT.findall(text) if float(p) <= 100.0]
    pattern = _DURATION_2 if rules == 2 else _DURATION
    durations = [float(v) * _unit_seconds(u) for v, u in pattern.findall(text)]
    ratios = [int(a) / int(b) for a, b in _RATIO.findall(text) if 0 < int(b) <= 1000 and int(a) <= int(b)]
    largest = max(map(float, (n.replace(",", "") for n in _NUMBER.findall(text))), default=0.0)
    match = _SERVICE.search(text)
    tier = service_tier(match.group(1) if match else None)
    lowered = text.lower()
    return [
        max(percents, default=0.0) / 100.0,
        min(len(percents), 10) / 10.0,
        math.log1p(min(max(durations, default=0.0), 1e7)),
        min(ratios, default=1.0),
        math.log1p(min(largest, 1e9)),
        1.0 if tier == 1 else 0.0,
        1.0 if tier == 3 else 0.0,
        math.log1p(len(text)),
        math.log1p(text.count("\n")),
        math.log1p(len(text.split())),
        *(math.log1p(lowered.count(p)) for p in STATUS_PHRASES),
    ]


# Digits (ASCII and Arabic-Indic), the letters of every unit, the separators the patterns care about.
_ALERTISH = st.lists(
    st.sampled_from(
        [*"0123456789\u0661\u0662 .,%/:_-\n\tsmhSMHrinutecodlaxy\u017f\u0131", "service:", "pay"]
    ),
    max_size=40,
).map("".join)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=3000, deadline=None)
@given(_ALERTISH)
@example("error rate 35% p99 9s, 1/6 pods ready, 12,000 requests failing service:payments")
@example("1234% 1.5.5s 5ms2 1,2a 10.s x12/3 1/2/3 9999/9999 service:a service:b")
@example("9" * 500 + "% " + "1" * 400 + "h")
@example("2 HOURS 3 Mins 4 \u017fec 5 m\u0131ns 1m\u017f 7 m\u0130ll\u0131seconds service:")
@example("prod-k8s 500s 429S 45\u017f 6h43m rate_5m x1.5s 4500s 500 s 5000s k12s 1h_2m")
@pytest.mark.slow
def test_magnitudes_follow_their_regular_expressions(impl: ModuleType, text: str) -> None:
    with implementation(impl):
        assert numeric_features(text) == reference_numeric_features(text)
        for rules in (1, 2):
            got = impl.numeric_features(text, text.lower(), service_tier, STATUS_PHRASES, rules)
            assert got == reference_numeric_features(text, rules)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=1500, deadline=None)
@given(st.text(max_size=60))
def test_magnitudes_of_any_text_are_finite_and_equal_the_reference(impl: ModuleType, text: str) -> None:
    with implementation(impl):
        got = numeric_features(text)
    assert all(math.isfinite(v) for v in got)
    assert got == reference_numeric_features(text)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=1500, deadline=None)
@given(st.text(max_size=60))
@example("ÜBER straße 🚨 x\x00ab\u2028y\x1cz")
def test_char_ngrams_equal_scikit_learns_char_wb(impl: ModuleType, text: str) -> None:
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).build_analyzer()
    with implementation(impl):
        assert CharNgrams(3, 5)(text) == reference(text)
    assert impl.char_wb(text.lower(), 2, 2) == TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 2)
    ).build_analyzer()(text)


@pytest.fixture(scope="module")
def fitted() -> tuple[object, dict[str, object]]:
    """A fitted pipeline, and its compiled featurizer in each implementation (by module name)."""
    texts = [r.text for r in generate_incidents(600, seed=9)]
    config = {"word_max_features": 3000, "char_max_features": 3000, "min_df": 1, "char_max_chars": 120}
    vectorizer = build_feature_pipeline(config).fit(texts)
    extractors = {}
    for param in IMPLS:
        impl = param.values[0]
        if isinstance(impl, ModuleType):
            with implementation(impl):
                extractors[impl.__name__] = compile_features(vectorizer)
    return vectorizer, extractors


_WORDS = ["checkout", "500s", "error", "rate", "p99", "latency", "disk", "97%", "pods", "service:payments"]


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=12)), max_size=40).map(" ".join),
)
@example("")
@example("ÜBER-Straße 🚨 İstanbul ΟΔΟΣ checkout_api x" * 20)
@pytest.mark.slow
def test_feature_rows_equal_the_pipelines_transform(fitted: tuple, impl: ModuleType, text: str) -> None:
    vectorizer, extractors = fitted
    extractor = extractors[impl.__name__]
    expected = vectorizer.transform([text]).toarray()
    got = extractor.matrix([text]).toarray()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    idx, vals = extractor.row(text)
    assert np.allclose(expected[0, idx], vals, rtol=0, atol=1e-12)
    assert np.count_nonzero(expected) == len(idx)


@pytest.mark.parametrize("impl", IMPLS)
def test_a_pipeline_saved_before_the_component_states_keeps_its_columns(impl: ModuleType) -> None:
    """Unpickled without a ``phrases`` attribute (as saved before it existed), the numeric block counts the
    phrases it was fitted with, in scikit-learn and in C alike."""
    texts = [r.text for r in generate_incidents(200, seed=3)] + ["Actions: partial outage, major outage"]
    vectorizer = build_feature_pipeline({"word_max_features": 500, "char_max_features": 500, "min_df": 1})
    numbers = feature_union(vectorizer).transformer_list[-1][1]
    numbers.steps[0][1].phrases = LEGACY_STATUS_PHRASES
    with implementation(impl):
        vectorizer.fit(texts)
        del numbers.steps[0][1].phrases  # the class attribute answers, as for an older pickle
        legacy = pickle.loads(pickle.dumps(vectorizer))
        assert numbers.steps[1][1].n_features_in_ == len(MAGNITUDES) + len(LEGACY_STATUS_PHRASES)
        expected = legacy.transform(texts).toarray()
        got = compile_features(legacy).matrix(texts).toarray()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert len(STATUS_PHRASES) > len(LEGACY_STATUS_PHRASES)


@pytest.mark.parametrize("impl", IMPLS)
def test_a_pipeline_saved_before_the_number_rules_reads_numbers_as_it_was_fitted_to(impl: ModuleType) -> None:
    """Unpickled without ``number_rules``, the numeric block reads "prod-k8s" and "500s" as durations, as
    it did when it was fitted, in scikit-learn and in C alike; a new pipeline reads neither."""
    texts = [r.text for r in generate_incidents(200, seed=4)]
    probe = ["checkout throwing 500s", "no etcd leader on prod-k8s", "lag 45 min on prod-k8s"]
    duration = MAGNITUDES.index("log_max_duration_s")
    with implementation(impl):
        vectorizer = build_feature_pipeline({"word_max_features": 500, "char_max_features": 500, "min_df": 1})
        vectorizer.fit(texts)
        extract = feature_union(vectorizer).transformer_list[-1][1].steps[0][1]
        assert extract.number_rules == NUMBER_RULES == 2
        assert [row[duration] for row in extract.transform(probe)] == [0.0, 0.0, math.log1p(2700.0)]
        new = compile_features(vectorizer).matrix(probe).toarray()
        np.testing.assert_allclose(new, vectorizer.transform(probe).toarray(), rtol=0, atol=1e-12)

        del extract.number_rules  # the class attribute answers, as for an older pickle
        legacy = pickle.loads(pickle.dumps(vectorizer))
        legacy_extract = feature_union(legacy).transformer_list[-1][1].steps[0][1]
        assert [row[duration] for row in legacy_extract.transform(probe)] == [
            math.log1p(500.0),
            math.log1p(8.0),
            math.log1p(2700.0),
        ]
        got = compile_features(legacy).matrix(probe).toarray()
        np.testing.assert_allclose(got, legacy.transform(probe).toarray(), rtol=0, atol=1e-12)
    assert not np.allclose(got, new)


@pytest.mark.parametrize("impl", IMPLS)
def test_a_featurizer_refuses_inconsistent_inputs(fitted: tuple, impl: ModuleType) -> None:
    extractor = fitted[1][impl.__name__]
    with pytest.raises(TypeError):
        extractor._native.row(["not", "a", "tuple"])
    with pytest.raises(ValueError, match="too short"):
        extractor._native.row(("only text",))
    with pytest.raises(ValueError, match="idf"):
        impl.Featurizer(
            [("words", 1, 1, 2, ["a", "b"], np.ones(3), True, 1.0, 0, 0)], None, None, 0, 2, service_tier, ()
        )
    with pytest.raises(ValueError, match="share a hash"):
        impl.Featurizer(
            [("words", 1, 1, 2, ["a", "a"], np.ones(2), True, 1.0, 0, 0)], None, None, 0, 2, service_tier, ()
        )


_ACRONYM_THEN_WORD = re.compile(r"([A-Z])([A-Z][a-z])")
_LOWER_THEN_UPPER = re.compile(r"([a-z0-9])([A-Z])")


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.sampled_from("aBcDZz09 _-ÜéΣ🚨"), max_size=40) | st.text(max_size=40))
@example("MSSQLHighNumberOfDeadlocks KubeAPIDown etcdNoLeader ABCdEFg ABcDe")
def test_identifier_splitting_equals_its_regular_expressions(impl: ModuleType, text: str) -> None:
    """The C splitter is these two substitutions (acronym boundaries first), on any text."""
    reference = _LOWER_THEN_UPPER.sub(r"\1 \2", _ACRONYM_THEN_WORD.sub(r"\1 \2", text))
    with implementation(impl):
        assert split_identifiers(text) == reference
