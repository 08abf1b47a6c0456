"""The feature pipeline (saved as ``text_vectorizer.joblib``) and its custom transformers.

These classes live in ``engine`` because unpickling a saved pipeline imports them: serving must be able to
load what training saved without importing ``training``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from engine.native import impl as _native  # C, or the same code in NumPy (engine/native.py)
from engine.services import service_tier

# Status-update phrases: how far an incident got (investigating -> resolved) and how broad it was.
STATUS_PHRASES: tuple[str, ...] = (
    "investigat",
    "identified",
    "monitor",
    "resolved",
    "degraded",
    "outage",
    "partial",
    "elevated",
    "error",
    "unavailable",
    "delay",
    "all users",
    "some users",
    "latency",
    "fix",
    # The component states of status pages (Atlassian Statuspage's, and GitHub's "degraded availability"
    # for a partial outage): the state a company sets is most of the impact it then declares.
    "degraded performance",
    "degraded availability",
    "partial outage",
    "major outage",
)
# The phrases of pipelines saved before the component states were counted: they load and score unchanged.
LEGACY_STATUS_PHRASES: tuple[str, ...] = STATUS_PHRASES[:15]

# How numbers are read. 2: a number glued to a word ("k8s", "rate5m") and an HTTP status family ("500s",
# "429s") are no durations; 1, the first rules, read "prod-k8s" as 8 seconds and "500s" as 500. A pipeline
# keeps the rules it was trained with.
NUMBER_RULES = 2

MAGNITUDES: tuple[str, ...] = (
    "max_percent",
    "n_percents",
    "log_max_duration_s",
    "min_ready_ratio",
    "log_max_count",
    "tier_1",
    "tier_3",
    "log_length",
    "n_lines",
    "log_words",
)


def numeric_feature_names(phrases: tuple[str, ...]) -> tuple[str, ...]:
    return (*MAGNITUDES, *(f"phrase:{p}" for p in phrases))


# Magnitudes that say how big the message is, not how bad the incident: synthetic messages' lengths and
# counts differ by label in ways real alerts' do not (a real page is often one short line), and the largest
# number in a text is as often a port or an IP address as a measurement. Training gives them no weight
# (``model_config["magnitudes_off"]``); they stay computed so that older versions score unchanged.
SIZE_MAGNITUDES: tuple[str, ...] = ("n_percents", "log_max_count", "log_length", "n_lines", "log_words")

_MAGNITUDE_WORDS = {
    "n_percents": "number of percentages",
    "log_max_count": "largest number",
    "log_length": "message length",
    "n_lines": "line count",
    "log_words": "word count",
}


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds * 1000:.3g} ms"


def describe_magnitude(name: str, high: bool, raw: float | None = None) -> str:
    """A magnitude as an explanation shows it: the fact read from the text (``raw``: the unscaled value)
    where there is one ("97%", "lasting 45 min", "1/6 ready"), else whether it was above or below usual."""
    if name in ("tier_1", "tier_3"):
        tier = f"tier-{name[-1]} service"
        return tier if high else f"not a {tier}"
    if name.startswith("phrase:"):
        phrase = name.removeprefix("phrase:")
        return f'mentions "{phrase}"' if high else f'no "{phrase}"'
    if raw is not None:
        if name == "max_percent":
            return f"{raw * 100:.3g}%" if raw > 0 else "no percentage"
        if name == "log_max_duration_s":
            return f"lasting {_duration(float(np.expm1(raw)))}" if raw > 0 else "no duration"
        if name == "min_ready_ratio":
            return f"{raw:.0%} ready" if raw < 1 else "no ready count"
    return f"{'high' if high else 'low'} {_MAGNITUDE_WORDS.get(name, name)}"


# Explanations of what is absent ("no percentage", "not a tier-1 service") or of the message's size: true,
# but no one accepts them as the reason an alert is severe.
_NOT_A_REASON = re.compile(r"^(no |not a |low |high )")
_WORD = re.compile(r"[\w%][\w%.'/-]*")
_SERVICE_SUFFIX = re.compile(r" service:\S*$")  # engine/incident.py: the service, not the author's words
_FUNCTION_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "for", "from", "has", "have", "in", "is", "it",
    "its", "no", "not", "of", "on", "or", "so", "the", "this", "that", "to", "was", "were", "with",
))  # fmt: skip
_FACT = re.compile(r"(lasting .+|[\d.]+% ready|tier-\d service|[\d.]+%)")  # describe_magnitude's facts


def readable_reasons(text: str, terms: Iterable[tuple[str, float]], top: int) -> list[str]:
    """The model's strongest terms (best first) as a person reads them, at most ``top``.

    Each is a word or phrase of ``text`` as written, or a fact read from it ("97%", "tier-1 service"): a
    character n-gram ("rning") becomes the word it was read from ("returning"), a counted phrase
    ('mentions "elevated"') the phrase; function words, absent facts and sizes are left out, and what is
    already said (a word and its bigram, two n-grams of one word) is said once.
    """
    words = _WORD.findall(split_identifiers(_SERVICE_SUFFIX.sub("", text)))
    lowered = [w.lower() for w in words]
    said: list[str] = []
    for term, _ in terms:
        if _NOT_A_REASON.match(term):
            continue
        phrase = re.fullmatch(r'mentions "(.+)"', term)
        shown = _as_written(phrase.group(1) if phrase else term, words, lowered)
        if not shown or any(_overlaps(shown, s) for s in said):
            continue
        said.append(shown)
        if len(said) == top:
            break
    return said


def _as_written(term: str, words: list[str], lowered: list[str]) -> str | None:
    """``term`` in the words of the text it came from, or None when the text does not say it."""
    if _FACT.fullmatch(term):
        return term
    key = term.strip().lower()
    if not key or key in _FUNCTION_WORDS:
        return None
    if " " in key:  # a bigram: its content words as written
        parts = [_as_written(p, words, lowered) for p in key.split()]
        kept = dict.fromkeys(p for p in parts if p)  # "backup job" is one word as written: backup-job
        return " ".join(kept) if kept else None
    if key in lowered:
        return words[lowered.index(key)]
    # a character n-gram (padded with spaces at word edges): the first word that holds it
    held = (w for w, lw in zip(words, lowered, strict=True) if term.lower() in f" {lw} ")
    return next((w for w in held if w.lower() not in _FUNCTION_WORDS), None)


def _overlaps(a: str, b: str) -> bool:
    """The two share a word: one already says it."""
    return not set(a.lower().split()).isdisjoint(b.lower().split())


def numeric_features(text: str) -> list[float]:
    """Magnitudes an SRE reads first: how high, how long, how many, how broken, how important.

    In order: the largest percentage (``12%``, ``12.5 %``; at most 3 integer digits, only values <= 100) / 100
    and how many there are (/10, capped); log1p of the longest duration in seconds (``250ms``, ``10 min``,
    ``2h``; not ``k8s`` nor ``500s``, by NUMBER_RULES; capped at 1e7 s); the smallest ratio ``a/b`` with 0 < b
    <= 1000 and a <= b (``1/6 pods ready``, else 1); log1p of the largest number (``12,000``; capped at 1e9);
    whether the service named by the trailing ``service:NAME`` is tier 1 or tier 3; log1p of the length, the
    line count and the word count; then log1p of how often each of STATUS_PHRASES occurs in the lowercased
    text. The scanning is C (``engine/_native.c``): this definition serves training and serving alike;
    ``tests/engine/test_native.py`` holds the same rules as regular expressions and checks the two agree.
    """
    return _native.numeric_features(text, text.lower(), service_tier, STATUS_PHRASES, NUMBER_RULES)


class NumericFeatures(TransformerMixin, BaseEstimator):
    """Regex-extracted magnitudes (percentages, durations, ratios, counts, service tier, size).

    ``phrases`` and ``number_rules`` are saved with the pipeline, so a model keeps the columns and readings
    it was trained on when the defaults change; one pickled before a parameter existed reads the class
    attribute.
    """

    phrases: tuple[str, ...] = LEGACY_STATUS_PHRASES
    number_rules: int = 1

    def __init__(self, phrases: tuple[str, ...] = STATUS_PHRASES, number_rules: int = NUMBER_RULES) -> None:
        self.phrases = phrases
        self.number_rules = number_rules

    def fit(self, X: Iterable[str], y: Any = None) -> NumericFeatures:
        return self

    def transform(self, X: Iterable[str]) -> np.ndarray:
        phrases = tuple(self.phrases)
        rules = int(self.number_rules)
        rows = [_native.numeric_features(t, t.lower(), service_tier, phrases, rules) for t in X]
        return np.array(rows, dtype=np.float64).reshape(-1, len(MAGNITUDES) + len(phrases))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(numeric_feature_names(tuple(self.phrases)), dtype=object)


class CharNgrams:
    """Character n-grams within words, padded with spaces: scikit-learn's ``char_wb`` analyzer, lowercased.

    The same n-grams in the same order as ``TfidfVectorizer(analyzer="char_wb")`` produces, built in C: this
    analyzer is most of the cost of fitting, and serving hashes the very same n-grams without building them.
    """

    def __init__(self, min_n: int = 3, max_n: int = 5) -> None:
        self.min_n = min_n
        self.max_n = max_n

    def __call__(self, doc: str) -> list[str]:
        return _native.char_wb(doc.lower(), self.min_n, self.max_n)

    def __repr__(self) -> str:
        return f"CharNgrams({self.min_n}, {self.max_n})"


def split_identifiers(text: str) -> str:
    """``text`` with CamelCase identifiers written as words; everything else as it was.

    Alert names are identifiers: "KubeAPIDown", "MSSQLHighNumberOfDeadlocks". Read as one token each they
    teach nothing about an alert not seen before; read as words ("Kube API Down") they say what is wrong.
    A space goes where a lower-case letter or digit meets an upper-case one, and before a capitalised word
    that follows an acronym. In C (``engine/_native.c``) because a regular expression costs 100 µs an alert.
    """
    return _native.split_identifiers(text)


class SplitIdentifiers(TransformerMixin, BaseEstimator):
    """CamelCase names as words (:func:`split_identifiers`), before any block reads the text."""

    def fit(self, X: Iterable[str], y: Any = None) -> SplitIdentifiers:
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        return [split_identifiers(t) for t in X]


def leading_words(text: str, n_words: int) -> str:
    return " ".join(text.split(None, n_words)[:n_words])


class TextHead(TransformerMixin, BaseEstimator):
    """The first ``max_chars`` characters: a 1 MB alert costs no more to score than a long one."""

    def __init__(self, max_chars: int = 4000) -> None:
        self.max_chars = max_chars

    def fit(self, X: Iterable[str], y: Any = None) -> TextHead:
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        return [t[: self.max_chars] for t in X]


class LeadingWords(TransformerMixin, BaseEstimator):
    """The first words of the text, where the title sits (the model input is ``title description ...``)."""

    def __init__(self, n_words: int = 12) -> None:
        self.n_words = n_words

    def fit(self, X: Iterable[str], y: Any = None) -> LeadingWords:
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        return [leading_words(t, self.n_words) for t in X]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(["lead"], dtype=object)


DEFAULT_FEATURE_CONFIG: dict[str, Any] = {
    "word_ngrams": (1, 2),
    "word_max_features": 25_000,
    "char_ngrams": (3, 5),
    "char_max_features": 25_000,
    "char_max_chars": 4000,  # character n-grams read only the head of the text: most of the cost
    "title_words": 12,
    "title_max_features": 5_000,
    "title_weight": 0.5,
    "numeric_weight": 0.1,
    "min_df": 2,
    "max_chars": 4000,
    "split_identifiers": True,
}


def build_feature_pipeline(config: dict[str, Any] | None = None) -> Pipeline:
    """Word and character TF-IDF, a weighted title TF-IDF and scaled magnitudes, in one Pipeline."""
    c = {**DEFAULT_FEATURE_CONFIG, **(config or {})}
    common = {"sublinear_tf": True, "min_df": c["min_df"], "dtype": np.float64, "lowercase": True}
    union = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(
                    ngram_range=tuple(c["word_ngrams"]), max_features=c["word_max_features"], **common
                ),
            ),
            (
                "chars",
                Pipeline(
                    [
                        ("head", TextHead(c["char_max_chars"])),
                        (
                            "tfidf",
                            TfidfVectorizer(
                                analyzer=CharNgrams(*c["char_ngrams"]),
                                max_features=c["char_max_features"],
                                **common,
                            ),
                        ),
                    ]
                ),
            ),
            (
                "title",
                Pipeline(
                    [
                        ("lead", LeadingWords(c["title_words"])),
                        ("tfidf", TfidfVectorizer(max_features=c["title_max_features"], **common)),
                    ]
                ),
            ),
            ("numbers", Pipeline([("extract", NumericFeatures()), ("scale", StandardScaler())])),
        ],
        transformer_weights={"title": c["title_weight"], "numbers": c["numeric_weight"]},
    )
    steps: list[tuple[str, Any]] = [("head", TextHead(c["max_chars"]))]
    if c["split_identifiers"]:
        steps.append(("identifiers", SplitIdentifiers()))
    return Pipeline([*steps, ("features", union)])


def feature_union(pipeline: Pipeline | FeatureUnion) -> FeatureUnion:
    """The FeatureUnion inside the vectorizer (a bare union is what an older layout saved)."""
    return pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else pipeline


def block_columns(pipeline: Pipeline | FeatureUnion) -> dict[str, slice]:
    """The columns each block of a fitted pipeline fills, by block name, in the union's order."""
    out, offset = {}, 0
    for name, step in feature_union(pipeline).transformer_list:
        inner = step.steps[-1][1] if isinstance(step, Pipeline) else step
        width = len(inner.vocabulary_) if isinstance(inner, TfidfVectorizer) else int(inner.n_features_in_)
        out[name] = slice(offset, offset + width)
        offset += width
    return out


def drop_fit_only_state(pipeline: Pipeline) -> None:
    """Remove ``stop_words_`` (every pruned term: large, and only useful for introspection) before saving."""
    for vec in _tfidf_vectorizers(pipeline):
        if hasattr(vec, "stop_words_"):
            del vec.stop_words_


def _tfidf_vectorizers(pipeline: Pipeline) -> list[TfidfVectorizer]:
    found = []
    for _, step in feature_union(pipeline).transformer_list:
        inner = step.steps[-1][1] if isinstance(step, Pipeline) else step
        if isinstance(inner, TfidfVectorizer):
            found.append(inner)
    return found
