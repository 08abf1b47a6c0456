"""A fused linear scorer compiled from the saved scikit-learn objects at load time.

Calling a scikit-learn Pipeline once per alert spends most of its time on input validation, building
n-gram strings and sparse matrices. Every model here is linear over the same feature vector, so the
scorer hands the text to C (``engine/_native.c``), which hashes the n-grams straight from the text, looks
them up in the fitted vocabularies and multiplies the row into one fused, row-major coefficient matrix
holding all models' weights; Python applies each model's own calibration. The scikit-learn objects stay
the truth: a scorer is only used after :func:`verify_scorer` shows it gives their probabilities on a
probe set.
"""

from __future__ import annotations

import functools
import io
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from engine.features import (
    MAGNITUDES,
    CharNgrams,
    LeadingWords,
    NumericFeatures,
    SplitIdentifiers,
    TextHead,
    describe_magnitude,
    numeric_feature_names,
    split_identifiers,
)
from engine.native import impl as _native  # C, or the same code in NumPy (engine/native.py)
from engine.ordinal import OrdinalBlendClassifier, blend
from engine.services import service_tier

# Batch scoring runs in C without the GIL, in up to this many threads, each with at least this many texts.
_CORES = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
_TEXTS_PER_THREAD = 256
# A service's tier is looked up for every alert (holding the GIL, before the threads start): remember them.
_cached_tier = functools.lru_cache(maxsize=65_536)(service_tier)


class UnsupportedModel(Exception):
    """The saved objects are not the linear shapes the scorer knows; scikit-learn serves them directly."""


@dataclass(frozen=True, slots=True)
class _FeatureSpec:
    """The fitted pipeline's feature layout, in the form :class:`engine._native.Featurizer` takes."""

    max_chars: int | None
    heads: tuple[int, ...]  # character limits of blocks that read only the head of the text
    blocks: list[tuple[Any, ...]]
    numeric: tuple[np.ndarray, np.ndarray, float, int] | None
    names: list[tuple[int, list[str]]]  # (offset, term names) per text block
    numeric_names: tuple[str, ...]
    n_features: int
    phrases: tuple[str, ...] = ()  # the status phrases the numeric block counts
    split: bool = False  # CamelCase identifiers are written as words first (SplitIdentifiers)
    number_rules: int = 1  # how the numeric block reads numbers (engine/features.py NUMBER_RULES)


@dataclass(slots=True)
class _Linear:
    """One linear model's slice of the fused matrix and its calibration."""

    classes: tuple[str, ...]
    cols: slice
    intercept: np.ndarray
    # "softmax", "sigmoid", "temperature", "ordinal" (multiclass) or "binary-sigmoid", "binary-raw"
    method: str
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    beta: float = 1.0
    # "ordinal": the blend's share and each class's level (engine/ordinal.py); the first len(classes)
    # columns are the multinomial model's, the rest the cumulative models', lowest level first.
    mix: float = 0.0
    level_of_class: np.ndarray | None = None


@dataclass(slots=True)
class _BinaryHeads:
    """Independent binary models (one per action), calibrated with Platt's sigmoid in one vector operation.

    ``p = expit(-(a * (raw[cols] + intercept) + b))``; an uncalibrated model has a = -1, b = 0. Actions never
    seen in training hold a constant probability.
    """

    size: int
    positions: np.ndarray  # where each linear model's probability goes
    cols: np.ndarray
    intercept: np.ndarray
    a: np.ndarray
    b: np.ndarray
    constants: dict[int, float]

    def apply(self, raw: np.ndarray) -> np.ndarray:
        out = np.empty((raw.shape[0], self.size))
        for j, value in self.constants.items():
            out[:, j] = value
        out[:, self.positions] = expit(-(self.a * (raw[:, self.cols] + self.intercept) + self.b))
        return out


@dataclass(slots=True)
class Scores:
    severity: np.ndarray  # probabilities over severity_classes
    category: np.ndarray | None
    actions: np.ndarray  # independent probabilities over action_classes
    # (feature indices, values): kept for explanations
    features: tuple[np.ndarray, np.ndarray] | None = None


class FeatureExtractor:
    """The fitted pipeline's feature rows (and, given the fused weights, every model's raw scores)."""

    def __init__(self, spec: _FeatureSpec, weights: np.ndarray | None = None) -> None:
        self._spec = spec
        self.n_features = spec.n_features
        self.width = 0 if weights is None else weights.shape[1]
        self.single_precision = weights is not None and weights.dtype == np.float32
        self._native = _native.Featurizer(
            spec.blocks,
            spec.numeric,
            weights,
            self.width,
            spec.n_features,
            _cached_tier,
            spec.phrases,
            spec.number_rules,
        )

    def docs(self, text: str) -> tuple[str, ...]:
        """(head of the text, lowercased, one text per character block): what the C featurizer reads."""
        spec = self._spec
        t = text[: spec.max_chars] if spec.max_chars is not None else text
        if spec.split:
            t = split_identifiers(t)
        low = t.lower()
        out = [t, low]
        for n in spec.heads:  # cut before lowercasing, as the pipeline does
            out.append(t[:n].lower() if len(t) > n else low)
        return tuple(out)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The pipeline's feature row for ``text`` as (column indices, values)."""
        idx, vals, _ = self._native.row(self.docs(text))
        return np.frombuffer(idx, dtype=np.int64), np.frombuffer(vals)

    def row_and_scores(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(column indices, values, raw scores of every fused model) for one text."""
        idx, vals, raw = self._native.row(self.docs(text))
        return np.frombuffer(idx, dtype=np.int64), np.frombuffer(vals), np.frombuffer(raw)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Raw scores of every fused model, one row per text; a large batch uses every core."""
        threads = min(_CORES, 1 + len(texts) // _TEXTS_PER_THREAD)
        raw = self._native.scores([self.docs(t) for t in texts], threads)
        return np.frombuffer(raw).reshape(len(texts), self.width)

    def matrix(self, texts: Sequence[str]) -> csr_matrix:
        """Feature rows of many texts as one CSR matrix (equal to the pipeline's ``transform``)."""
        indptr_b, indices_b, data_b = self._native.csr([self.docs(t) for t in texts])
        indptr = np.frombuffer(indptr_b, dtype=np.int64)
        indices = np.frombuffer(indices_b, dtype=np.int32)
        if indptr[-1] < np.iinfo(np.int32).max:  # scipy's own index type for such sizes: half the memory
            indptr = indptr.astype(np.int32)
        else:
            indices = indices.astype(np.int64)
        data = np.frombuffer(data_b).copy()  # writable, as scikit-learn may scale it in place
        return csr_matrix((data, indices.copy(), indptr), shape=(len(texts), self.n_features))

    def feature_name(self, col: int, value: float = 0.0) -> str:
        """A term as written, or a magnitude as the fact read from the text (its value before scaling)."""
        for offset, names in self._spec.names:
            if offset <= col < offset + len(names):
                return str(names[col - offset])
        if self._spec.numeric is not None and col >= self._spec.numeric[3]:
            mean, scale, weight, offset = self._spec.numeric
            j = col - offset
            raw = value / weight * scale[j] + mean[j] if weight else None
            return describe_magnitude(self._spec.numeric_names[j], value > 0, raw)
        return f"f{col}"


class FusedScorer:
    """Scores texts with all models in one pass over a shared sparse feature vector."""

    def __init__(
        self,
        features: FeatureExtractor,
        weights: np.ndarray,
        severity: _Linear,
        category: _Linear | None,
        actions: _BinaryHeads,
        action_classes: tuple[str, ...],
    ) -> None:
        self.features = features
        self._weights = np.ascontiguousarray(weights)
        # How much each feature pushes each severity class over the others (its weight minus their mean),
        # one contiguous vector per class: an explanation gathers a single vector. An ordinal blend is
        # explained by its multinomial part, the larger share of the blend and the one with a weight per
        # class.
        w = self._weights[:, severity.cols][:, : len(severity.classes)]
        if w.shape[1] == 1:  # binary: one column for the positive class
            w = np.hstack([-w, w])
        self._push = np.ascontiguousarray((w - w.mean(axis=1, keepdims=True)).T)
        self.severity_classes = severity.classes
        self.category_classes = category.classes if category else ()
        self.action_classes = action_classes
        self._severity = severity
        self._category = category
        self._actions = actions

    # -- scoring ----------------------------------------------------------------------------------------
    def score(self, text: str) -> Scores:
        idx, vals, raw = self.features.row_and_scores(text)
        sev, cat, acts = self._calibrate(raw[np.newaxis, :])
        return Scores(sev[0], None if cat is None else cat[0], acts[0], (idx, vals))

    def score_many(self, texts: Sequence[str]) -> list[Scores]:
        """The batch path: C scores every text with every model, Python calibrates them all at once."""
        sev, cat, acts = self.calibrated(texts)
        return [Scores(sev[i], None if cat is None else cat[i], acts[i]) for i in range(len(texts))]

    def calibrated(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(severity, category, action) probabilities of many texts, one row each."""
        return self._calibrate(self.features.scores(texts))

    def _calibrate(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        sev = _apply(self._severity, raw)
        cat = _apply(self._category, raw) if self._category else None
        return sev, cat, self._actions.apply(raw)

    def explain(self, scores: Scores, severity: str, top: int = 5) -> list[tuple[str, float]]:
        """The terms that pushed ``severity`` most: value x (its weight - the mean weight over classes).
        A term counted by two blocks (the words and the title) is named once, with its larger push."""
        if scores.features is None:
            return []
        idx, vals = scores.features
        contrib = vals * self._push[self._severity.classes.index(severity)][idx]
        wanted = min(contrib.size, 2 * top)  # room for repeats
        best = (
            np.argpartition(-contrib, wanted - 1)[:wanted]
            if wanted < contrib.size
            else np.arange(contrib.size)
        )
        name = self.features.feature_name
        out: dict[str, float] = {}
        for i in best[np.argsort(-contrib[best], kind="stable")]:
            if contrib[i] <= 0 or len(out) == top:
                break
            out.setdefault(name(int(idx[i]), float(vals[i])), float(contrib[i]))
        return list(out.items())


def softmax(s: np.ndarray) -> np.ndarray:
    """Row-wise softmax (scipy's is slower for the one-row case that serving hits)."""
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _apply(model: _Linear, raw: np.ndarray) -> np.ndarray:
    s = raw[:, model.cols] + model.intercept
    if model.method == "softmax":
        return softmax(s)
    if model.method == "temperature":
        if s.shape[1] == 1:
            s = np.hstack([-s, s])
        return softmax(model.beta * s)
    if model.method == "ordinal":
        k = len(model.classes)
        return softmax(model.beta * blend(s[:, :k], expit(s[:, k:]), model.level_of_class, model.mix))
    if model.method == "sigmoid":
        p = expit(-(model.a * s + model.b))
        total = p.sum(axis=1, keepdims=True)
        return np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total != 0)
    pos = expit(-(model.a * s + model.b)) if model.method == "binary-sigmoid" else expit(s)
    return np.hstack([1.0 - pos, pos])


def action_names(action_clf: Any) -> tuple[str, ...]:
    """Column names of a recommender: its own, else its classes (a seed model fitted on names)."""
    names = getattr(action_clf, "action_names", None)
    return tuple(names) if names is not None else tuple(str(c) for c in action_clf.classes_)


# -- compiling ------------------------------------------------------------------------------------------
def _linear_parts(clf: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(coef (n_out, F), intercept, calibration) of a linear classifier, calibrated or not."""
    if isinstance(clf, LogisticRegression):
        method = "softmax" if len(clf.classes_) > 2 else "binary-raw"
        return clf.coef_, clf.intercept_, {"method": method}
    if isinstance(clf, CalibratedClassifierCV) and len(clf.calibrated_classifiers_) == 1:
        cc = clf.calibrated_classifiers_[0]
        base = cc.estimator
        if isinstance(base, OrdinalBlendClassifier):
            return _ordinal_parts(base, cc)
        if not isinstance(base, LogisticRegression | SGDClassifier):
            raise UnsupportedModel(f"calibrated {type(base).__name__}")
        binary = len(base.classes_) == 2
        if cc.method == "sigmoid":
            a = np.array([c.a_ for c in cc.calibrators], dtype=np.float64)
            b = np.array([c.b_ for c in cc.calibrators], dtype=np.float64)
            return (
                base.coef_,
                base.intercept_,
                {"method": "binary-sigmoid" if binary else "sigmoid", "a": a, "b": b},
            )
        if cc.method == "temperature":
            if binary:
                raise UnsupportedModel("binary temperature scaling")
            return (
                base.coef_,
                base.intercept_,
                {"method": "temperature", "beta": float(cc.calibrators[0].beta_)},
            )
        raise UnsupportedModel(f"calibration method {cc.method}")
    raise UnsupportedModel(type(clf).__name__)


def _ordinal_parts(model: OrdinalBlendClassifier, cc: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The blend's linear parts stacked (multinomial first), with its temperature and mix."""
    parts = model.linear_models
    if cc.method != "temperature" or not all(
        isinstance(m, LogisticRegression | SGDClassifier) for m in parts
    ):
        raise UnsupportedModel("ordinal blend without temperature scaling or of non-linear parts")
    calibration = {
        "method": "ordinal",
        "beta": float(cc.calibrators[0].beta_),
        "mix": float(model.mix),
        "level_of_class": np.asarray(model.level_of_class_, dtype=np.intp),
    }
    coef = np.vstack([m.coef_ for m in parts])
    return coef, np.concatenate([np.ravel(m.intercept_) for m in parts]), calibration


_WORD_DEFAULTS = {
    "analyzer": "word",
    "tokenizer": None,
    "preprocessor": None,
    "strip_accents": None,
    "stop_words": None,
    "token_pattern": r"(?u)\b\w\w+\b",
    "lowercase": True,
}


def _feature_spec(vectorizer: Any) -> _FeatureSpec:
    """The layout of ``[TextHead ->] [SplitIdentifiers ->] FeatureUnion``; UnsupportedModel for other
    shapes."""
    max_chars = None
    split = False
    if isinstance(vectorizer, Pipeline):
        kinds = [type(step) for _, step in vectorizer.steps[:-1]]
        if kinds not in ([TextHead], [TextHead, SplitIdentifiers]):
            raise UnsupportedModel(f"vectorizer steps {[k.__name__ for k in kinds]}")
        max_chars = vectorizer.steps[0][1].max_chars
        split = SplitIdentifiers in kinds
        vectorizer = vectorizer.steps[-1][1]
    if not isinstance(vectorizer, FeatureUnion):
        raise UnsupportedModel(f"vectorizer {type(vectorizer).__name__}")
    weights = vectorizer.transformer_weights or {}
    heads: list[int] = []
    blocks: list[tuple[Any, ...]] = []
    names: list[tuple[int, list[str]]] = []
    numeric = None
    phrases: tuple[str, ...] = ()
    number_rules = 1
    offset = 0
    for name, step in vectorizer.transformer_list:
        weight = float(weights.get(name, 1.0))
        steps = step.steps if isinstance(step, Pipeline) else [(name, step)]
        kinds = [type(s).__name__ for _, s in steps]
        last = steps[-1][1]
        if isinstance(last, TfidfVectorizer) and kinds[:-1] in ([], ["LeadingWords"], ["TextHead"]):
            if last.norm != "l2" or not last.use_idf or last.binary:
                raise UnsupportedModel("tf-idf options")
            if isinstance(last.analyzer, CharNgrams):
                kind, (min_n, max_n) = "chars", (last.analyzer.min_n, last.analyzer.max_n)
            elif all(getattr(last, k) == v for k, v in _WORD_DEFAULTS.items()):
                kind, (min_n, max_n) = "words", last.ngram_range
            else:
                raise UnsupportedModel(f"feature step {name}: analyzer {last.analyzer!r}")
            # FeatureExtractor.docs: (text, lowered, then one lowered head per TextHead block); a title
            # block reads the lowered text's first words (C cuts them).
            first = steps[0][1]
            source, lead = 1, 0
            if isinstance(first, LeadingWords):
                lead = first.n_words
            elif isinstance(first, TextHead):
                heads.append(first.max_chars)
                source = 1 + len(heads)
            terms = _terms_by_column(last.vocabulary_)
            idf = np.ascontiguousarray(last.idf_, dtype=np.float64)
            sublinear = bool(last.sublinear_tf)
            blocks.append((kind, min_n, max_n, source, terms, idf, sublinear, weight, offset, lead))
            names.append((offset, terms))
            offset += len(terms)
        elif kinds == ["NumericFeatures", "StandardScaler"]:
            extract: NumericFeatures = steps[0][1]
            scaler: StandardScaler = steps[1][1]
            phrases = tuple(extract.phrases)
            number_rules = int(extract.number_rules)
            n, computed = scaler.n_features_in_, len(MAGNITUDES) + len(phrases)
            if n != computed:
                raise UnsupportedModel(f"{n} scaled numeric features for {computed} computed")
            mean = scaler.mean_ if scaler.with_mean else np.zeros(n)
            scale = scaler.scale_ if scaler.with_std else np.ones(n)
            numeric = (
                np.ascontiguousarray(mean, dtype=np.float64),
                np.ascontiguousarray(scale, dtype=np.float64),
                weight,
                offset,
            )
            offset += n
        else:
            raise UnsupportedModel(f"feature step {name}: {kinds}")
    return _FeatureSpec(
        max_chars,
        tuple(heads),
        blocks,
        numeric,
        names,
        numeric_feature_names(phrases),
        offset,
        phrases,
        split,
        number_rules,
    )


def _terms_by_column(vocabulary: dict[str, int]) -> list[str]:
    """Term i is column i (what get_feature_names_out gives, without its sort of the whole vocabulary)."""
    terms = [""] * len(vocabulary)
    for term, col in vocabulary.items():
        terms[col] = term
    return terms


def _featurizer(spec: _FeatureSpec, weights: np.ndarray | None = None) -> FeatureExtractor:
    try:
        return FeatureExtractor(spec, weights)
    except ValueError as exc:  # a hash clash between two vocabulary terms: scikit-learn serves instead
        raise UnsupportedModel(str(exc)) from exc


def compile_features(vectorizer: Any) -> FeatureExtractor:
    """A :class:`FeatureExtractor` for ``[TextHead ->] FeatureUnion``; UnsupportedModel for other shapes."""
    return _featurizer(_feature_spec(vectorizer))


def compile_scorer(
    vectorizer: Any, severity_clf: Any, category_clf: Any | None, action_clf: Any
) -> FusedScorer:
    """Build a :class:`FusedScorer` from fitted objects; raises UnsupportedModel for shapes it can't fuse."""
    spec = _feature_spec(vectorizer)
    n_features = spec.n_features
    columns: list[np.ndarray] = []
    width = 0

    def add(clf: Any) -> _Linear:
        nonlocal width
        coef, intercept, cal = _linear_parts(clf)
        if coef.shape[1] != n_features:
            raise UnsupportedModel("classifier and vectorizer disagree on the feature count")
        columns.append(coef.T)
        cols = slice(width, width + coef.shape[0])
        width += coef.shape[0]
        classes = tuple(str(c) for c in clf.classes_)
        return _Linear(classes, cols, np.asarray(intercept, dtype=np.float64), **cal)

    severity = add(severity_clf)
    category = add(category_clf) if category_clf is not None else None
    if not isinstance(action_clf, OneVsRestClassifier) or not action_clf.multilabel_:
        raise UnsupportedModel("action recommender is not a multi-label one-vs-rest model")
    constants: dict[int, float] = {}
    linear: list[tuple[int, _Linear]] = []
    for j, est in enumerate(action_clf.estimators_):
        if type(est).__name__ == "_ConstantPredictor":
            constants[j] = float(np.ravel(est.y_)[0])
        else:
            linear.append((j, add(est)))
    if any(m.method not in ("binary-sigmoid", "binary-raw") for _, m in linear):
        raise UnsupportedModel("action models must be binary")
    raw_model = [m.method == "binary-raw" for _, m in linear]
    actions = _BinaryHeads(
        size=len(action_clf.estimators_),
        positions=np.array([j for j, _ in linear], dtype=np.intp),
        cols=np.array([m.cols.start for _, m in linear], dtype=np.intp),
        intercept=np.array([float(m.intercept[0]) for _, m in linear]),
        a=np.array([-1.0 if r else float(m.a[0]) for r, (_, m) in zip(raw_model, linear, strict=True)]),
        b=np.array([0.0 if r else float(m.b[0]) for r, (_, m) in zip(raw_model, linear, strict=True)]),
        constants=constants,
    )
    weights = np.ascontiguousarray(np.hstack(columns), dtype=np.float64)
    # Coefficients that float32 holds exactly (training rounds them so) are read as float32: the same
    # products, half the memory traffic.
    single = weights.astype(np.float32)
    features = _featurizer(spec, single if np.array_equal(single, weights) else weights)
    return FusedScorer(features, weights, severity, category, actions, action_names(action_clf))


def verify_scorer(
    scorer: FusedScorer,
    reference: SklearnScorer,
    probes: Sequence[str],
    expected: Sequence[Scores] | None = None,
    tol: float = 1e-6,
) -> float:
    """Largest gap between the scorer and the scikit-learn objects on ``probes``; raises past ``tol``.

    ``expected``: the reference's scores on ``probes`` when the caller already has them.
    """
    expected = expected if expected is not None else reference.score_many(probes)
    worst = 0.0
    for text, want in zip(probes, expected, strict=True):
        got = scorer.score(text)
        pairs = [(got.severity, want.severity), (got.actions, want.actions)]
        if got.category is not None and want.category is not None:
            pairs.append((got.category, want.category))
        for a, b in pairs:
            worst = max(worst, float(np.max(np.abs(a - b))))
    if worst > tol:
        raise UnsupportedModel(f"fused scorer differs from scikit-learn by {worst:.2e} (> {tol:.0e})")
    return worst


class SklearnScorer:
    """Scores with the scikit-learn objects themselves: for saved models the fused scorer can't compile."""

    def __init__(self, vectorizer: Any, severity_clf: Any, category_clf: Any | None, action_clf: Any) -> None:
        self.vectorizer = vectorizer
        self.severity = severity_clf
        self.category = category_clf
        self.actions = action_clf
        self.severity_classes = tuple(str(c) for c in severity_clf.classes_)
        self.category_classes = (
            tuple(str(c) for c in category_clf.classes_) if category_clf is not None else ()
        )
        self.action_classes = action_names(action_clf)

    def score(self, text: str) -> Scores:
        return self.score_many([text])[0]

    def score_many(self, texts: Sequence[str]) -> list[Scores]:
        sev, cat, acts = self.calibrated(texts)
        return [Scores(sev[i], None if cat is None else cat[i], acts[i]) for i in range(len(texts))]

    def calibrated(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        X = self.vectorizer.transform(list(texts))
        cat = self.category.predict_proba(X) if self.category is not None else None
        return self.severity.predict_proba(X), cat, self.actions.predict_proba(X)

    def explain(self, scores: Scores, severity: str, top: int = 5) -> list[tuple[str, float]]:
        return []


def serving_scorer(
    reference: SklearnScorer, probes: Sequence[str], expected: Sequence[Scores] | None = None
) -> tuple[FusedScorer | SklearnScorer, str | None]:
    """The fused scorer when it compiles and reproduces ``reference`` on ``probes``, else ``reference``;
    with the reason when it is the slower one."""
    try:
        fused = compile_scorer(
            reference.vectorizer, reference.severity, reference.category, reference.actions
        )
        verify_scorer(fused, reference, probes, expected)
    except UnsupportedModel as exc:
        return reference, f"serving with scikit-learn directly (slower): {exc}"
    return fused, None


# -- the pickle-free serving artifact ---------------------------------------------------------------------
SERVING_FORMAT = 1
_METHODS = ("softmax", "sigmoid", "temperature", "ordinal", "binary-sigmoid", "binary-raw")
_MAX_NGRAM = 16  # no fitted block reads longer n-grams; a larger number in an artifact is not ours


class ArtifactError(ValueError):
    """A serving artifact that is not one :func:`dump_serving` wrote, or is inconsistent."""


def dump_serving(scorer: FusedScorer) -> bytes:
    """Everything ``scorer`` serves with, as an uncompressed ``.npz`` of numeric arrays whose ``spec`` member
    is UTF-8 JSON (vocabularies, classes, calibration methods, the feature layout): no pickle anywhere, so
    reading it back (:func:`load_serving`) runs no code from the file."""
    spec = scorer.features._spec
    arrays: dict[str, np.ndarray] = {}
    blocks = []
    for i, block in enumerate(spec.blocks):
        kind, min_n, max_n, source, terms, idf, sublinear, weight, offset, lead = block
        arrays[f"idf{i}"] = idf
        blocks.append(
            {
                "kind": kind,
                "min_n": min_n,
                "max_n": max_n,
                "source": source,
                "terms": list(terms),
                "sublinear": sublinear,
                "weight": weight,
                "offset": offset,
                "lead": lead,
            }
        )
    numeric = None
    if spec.numeric is not None:
        arrays["numeric_mean"], arrays["numeric_scale"], weight, offset = spec.numeric
        numeric = {"weight": weight, "offset": offset}
    single = scorer._weights.astype(np.float32)  # exact when training rounded the coefficients (it does)
    arrays["weights"] = single if np.array_equal(single, scorer._weights) else scorer._weights
    heads = scorer._actions
    arrays.update(
        actions_positions=heads.positions,
        actions_cols=heads.cols,
        actions_intercept=heads.intercept,
        actions_a=heads.a,
        actions_b=heads.b,
    )
    doc = {
        "format": SERVING_FORMAT,
        "features": {
            "max_chars": spec.max_chars,
            "heads": list(spec.heads),
            "split": spec.split,
            "phrases": list(spec.phrases),
            "number_rules": spec.number_rules,
            "n_features": spec.n_features,
            "blocks": blocks,
            "numeric": numeric,
        },
        "severity": _dump_linear("severity", scorer._severity, arrays),
        "category": None if scorer._category is None else _dump_linear("category", scorer._category, arrays),
        "actions": {
            "classes": list(scorer.action_classes),
            "size": heads.size,
            "constants": [[j, value] for j, value in heads.constants.items()],
        },
    }
    arrays["spec"] = np.frombuffer(json.dumps(doc, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)  # stored, not deflated: load_serving refuses compressed members
    return out.getvalue()


def _dump_linear(name: str, model: _Linear, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    arrays[f"{name}_intercept"] = model.intercept
    for part in ("a", "b", "level_of_class"):
        value = getattr(model, part)
        if value is not None:
            arrays[f"{name}_{part}"] = value
    return {
        "classes": list(model.classes),
        "cols": [model.cols.start, model.cols.stop],
        "method": model.method,
        "beta": model.beta,
        "mix": model.mix,
    }


def load_serving(data: bytes) -> FusedScorer:
    """The :class:`FusedScorer` a serving artifact holds. Reads arrays with ``allow_pickle=False`` and JSON
    only; ArtifactError for anything else (a pickle, a compressed member, a shape that does not fit)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            packed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
    except zipfile.BadZipFile as exc:
        raise ArtifactError("not an .npz archive") from exc
    if packed:  # a deflated member could expand without bound; ours are stored
        raise ArtifactError(f"compressed members {packed}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as exc:  # among them: "Object arrays cannot be loaded when allow_pickle=False"
        raise ArtifactError(str(exc)) from exc
    try:
        doc = json.loads(arrays["spec"].tobytes().decode("utf-8"))
        if doc.get("format") != SERVING_FORMAT:
            raise ArtifactError(f"format {doc.get('format')!r}, this code reads {SERVING_FORMAT}")
        return _load_scorer(doc, arrays)
    except (KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"inconsistent: {type(exc).__name__}: {exc}") from exc


def _floats(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


def _load_scorer(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> FusedScorer:
    f = doc["features"]
    weights = arrays["weights"]
    if weights.dtype not in (np.float32, np.float64) or weights.ndim != 2 or weights.shape[1] == 0:
        raise ArtifactError(f"weights of {weights.dtype} {weights.shape}")
    n_features, width = weights.shape
    if f["n_features"] != n_features:
        raise ArtifactError(f"{n_features} weight rows for {f['n_features']} features")
    heads = tuple(int(n) for n in f["heads"])
    blocks: list[tuple[Any, ...]] = []
    for i, b in enumerate(f["blocks"]):
        if not 0 <= b["source"] < 2 + len(heads) or b["max_n"] > _MAX_NGRAM or b["lead"] < 0:
            raise ArtifactError(f"block {i}: source {b['source']}, n-grams up to {b['max_n']}")
        terms = [str(t) for t in b["terms"]]
        blocks.append(
            (
                str(b["kind"]),
                int(b["min_n"]),
                int(b["max_n"]),
                int(b["source"]),
                terms,
                _floats(arrays[f"idf{i}"]),
                bool(b["sublinear"]),
                float(b["weight"]),
                int(b["offset"]),
                int(b["lead"]),
            )
        )
    phrases = tuple(str(p) for p in f["phrases"])
    number_rules = f.get("number_rules", 1)  # artifacts written before the rules were numbered read by 1
    if number_rules not in (1, 2) or isinstance(number_rules, bool):
        raise ArtifactError(f"number rules {number_rules!r}, this code reads 1 and 2")
    numeric = None
    if f["numeric"] is not None:
        mean, scale = _floats(arrays["numeric_mean"]), _floats(arrays["numeric_scale"])
        if len(mean) != len(MAGNITUDES) + len(phrases) or len(scale) != len(mean):
            raise ArtifactError(f"{len(mean)} magnitude scalings for {len(MAGNITUDES) + len(phrases)}")
        numeric = (mean, scale, float(f["numeric"]["weight"]), int(f["numeric"]["offset"]))
    spec = _FeatureSpec(
        None if f["max_chars"] is None else int(f["max_chars"]),
        heads,
        blocks,
        numeric,
        [(b[8], b[4]) for b in blocks],
        numeric_feature_names(phrases),
        n_features,
        phrases,
        bool(f["split"]),
        number_rules,
    )
    try:
        features = FeatureExtractor(spec, np.ascontiguousarray(weights))
    except ValueError as exc:  # the C featurizer's own checks: ranges, sizes, a hash clash
        raise ArtifactError(str(exc)) from exc
    severity = _load_linear("severity", doc["severity"], arrays, width)
    category = None if doc["category"] is None else _load_linear("category", doc["category"], arrays, width)
    a = doc["actions"]
    size = int(a["size"])
    actions = _BinaryHeads(
        size=size,
        positions=np.asarray(arrays["actions_positions"], dtype=np.intp),
        cols=np.asarray(arrays["actions_cols"], dtype=np.intp),
        intercept=_floats(arrays["actions_intercept"]),
        a=_floats(arrays["actions_a"]),
        b=_floats(arrays["actions_b"]),
        constants={int(j): float(value) for j, value in a["constants"]},
    )
    n = len(actions.positions)
    if not (
        len(actions.cols) == len(actions.intercept) == len(actions.a) == len(actions.b) == n
        and np.all((actions.positions >= 0) & (actions.positions < size))
        and np.all((actions.cols >= 0) & (actions.cols < width))
        and all(0 <= j < size for j in actions.constants)
        and len(a["classes"]) == size
    ):
        raise ArtifactError("action heads outside the weights or the actions")
    classes = tuple(str(c) for c in a["classes"])
    return FusedScorer(features, weights.astype(np.float64), severity, category, actions, classes)


def _load_linear(name: str, doc: dict[str, Any], arrays: dict[str, np.ndarray], width: int) -> _Linear:
    start, stop = (int(c) for c in doc["cols"])
    classes = tuple(str(c) for c in doc["classes"])
    method = str(doc["method"])
    if method not in _METHODS or not 0 <= start < stop <= width or len(classes) < 2:
        raise ArtifactError(
            f"{name}: {method} over columns {start}:{stop} of {width}, {len(classes)} class(es)"
        )
    part = {p: arrays.get(f"{name}_{p}") for p in ("a", "b", "level_of_class")}
    model = _Linear(
        classes,
        slice(start, stop),
        _floats(arrays[f"{name}_intercept"]),
        method,
        None if part["a"] is None else _floats(part["a"]),
        None if part["b"] is None else _floats(part["b"]),
        float(doc["beta"]),
        float(doc["mix"]),
        None if part["level_of_class"] is None else np.asarray(part["level_of_class"], dtype=np.intp),
    )
    if len(model.intercept) != stop - start:
        raise ArtifactError(f"{name}: {len(model.intercept)} intercepts for {stop - start} columns")
    return model
