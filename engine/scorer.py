"""A fused linear scorer compiled from the saved scikit-learn objects at load time.

Calling a scikit-learn Pipeline once per alert spends most of its time on input validation and building
sparse matrices. Every model here is linear over the same feature vector, so the scorer computes that
vector once as (indices, values), gathers the rows of one fused, row-major coefficient matrix holding all
models' weights, and applies each model's own calibration. The scikit-learn objects stay the truth: a
scorer is only used after :func:`verify_scorer` shows it gives their probabilities on a probe set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
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
    CharNgrams,
    LeadingWords,
    NumericFeatures,
    TextHead,
    leading_words,
    numeric_features,
)
from engine.ngram_table import NgramTable


class UnsupportedModel(Exception):
    """The saved objects are not the linear shapes the scorer knows; scikit-learn serves them directly."""


@dataclass(slots=True)
class _TextBlock:
    max_chars: int | None  # only the head of the text is analysed
    analyzer: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: np.ndarray
    sublinear: bool
    weight: float
    offset: int
    lead_words: int | None  # title block: only the leading words are analysed
    names: np.ndarray
    table: NgramTable | None = None  # vectorized counting for character n-grams

    def counts(self, doc: str) -> tuple[np.ndarray, np.ndarray]:
        """(columns, term counts) of ``doc`` in this block's vocabulary."""
        if self.table is not None:
            return self.table.counts(doc)
        terms = self.analyzer(doc)
        cols = np.fromiter(map(self.vocabulary.get, terms, repeat(-1)), dtype=np.intp, count=len(terms))
        return np.unique(cols[cols >= 0], return_counts=True)


@dataclass(slots=True)
class _NumericBlock:
    mean: np.ndarray
    scale: np.ndarray
    weight: float
    offset: int
    names: tuple[str, ...]


@dataclass(slots=True)
class _Linear:
    """One linear model's slice of the fused matrix and its calibration."""

    classes: tuple[str, ...]
    cols: slice
    intercept: np.ndarray
    method: str  # "softmax", "sigmoid", "temperature" (multiclass) or "binary-sigmoid", "binary-raw"
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    beta: float = 1.0


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
    # (feature indices, values, their severity weights): kept for explanations
    features: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


class FeatureExtractor:
    """The fitted pipeline's feature rows, computed without scikit-learn's per-call overhead."""

    def __init__(
        self, max_chars: int | None, blocks: list[_TextBlock], numeric: _NumericBlock | None, n_features: int
    ) -> None:
        self._max_chars = max_chars
        self._blocks = blocks
        self._numeric = numeric
        self.n_features = n_features

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The pipeline's feature row for ``text`` as (column indices, values)."""
        if self._max_chars is not None:
            text = text[: self._max_chars]
        idx_parts: list[np.ndarray] = []
        val_parts: list[np.ndarray] = []
        for block in self._blocks:
            if block.lead_words is not None:
                doc = leading_words(text, block.lead_words)
            elif block.max_chars is not None:
                doc = text[: block.max_chars]
            else:
                doc = text
            cols, tf = block.counts(doc)
            if not cols.size:
                continue
            if block.sublinear:
                tf = np.log(tf) + 1.0  # sublinear tf, as TfidfTransformer computes it
            vals = tf * block.idf[cols]
            vals *= block.weight / np.sqrt(vals @ vals)
            idx_parts.append(cols + block.offset)
            val_parts.append(vals)
        if self._numeric is not None:
            num = self._numeric
            vals = (np.asarray(numeric_features(text)) - num.mean) / num.scale * num.weight
            nonzero = np.flatnonzero(vals)  # as in the sparse matrix: a column constant in training is 0
            idx_parts.append(nonzero + num.offset)
            val_parts.append(vals[nonzero])
        if not idx_parts:
            return np.empty(0, dtype=np.intp), np.empty(0)
        return np.concatenate(idx_parts), np.concatenate(val_parts)

    def matrix(self, texts: Sequence[str]) -> csr_matrix:
        """Feature rows of many texts as one CSR matrix (equal to the pipeline's ``transform``)."""
        rows = [self.row(t) for t in texts]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([idx.size for idx, _ in rows], out=indptr[1:])
        if indptr[-1] < np.iinfo(np.int32).max:  # scipy's own index type for such sizes: half the memory
            indptr = indptr.astype(np.int32)
        indices = (
            np.concatenate([idx for idx, _ in rows]).astype(indptr.dtype) if rows else np.empty(0, np.int32)
        )
        data = np.concatenate([vals for _, vals in rows]) if rows else np.empty(0)
        return csr_matrix((data, indices, indptr), shape=(len(rows), self.n_features))

    def feature_name(self, col: int, value: float = 0.0) -> str:
        """A term as written, or a magnitude with whether it was above or below its training mean."""
        for block in self._blocks:
            if block.offset <= col < block.offset + len(block.names):
                return str(block.names[col - block.offset])
        if self._numeric is not None and col >= self._numeric.offset:
            return f"{self._numeric.names[col - self._numeric.offset]} ({'high' if value > 0 else 'low'})"
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
        self.severity_classes = severity.classes
        self.category_classes = category.classes if category else ()
        self.action_classes = action_classes
        self._severity = severity
        self._category = category
        self._actions = actions

    # -- scoring ----------------------------------------------------------------------------------------
    def score(self, text: str) -> Scores:
        idx, vals = self.features.row(text)
        rows = self._weights[idx]  # one gather over contiguous rows: every model's weights at once
        raw = vals @ rows
        sev, cat, acts = self._calibrate(raw[np.newaxis, :])
        return Scores(
            sev[0], None if cat is None else cat[0], acts[0], (idx, vals, rows[:, self._severity.cols])
        )

    def score_many(self, texts: Sequence[str]) -> list[Scores]:
        """The batch path: one sparse matrix, one product scores every model."""
        raw = np.asarray(self.features.matrix(texts) @ self._weights)
        sev, cat, acts = self._calibrate(raw)
        return [Scores(sev[i], None if cat is None else cat[i], acts[i]) for i in range(len(texts))]

    def _calibrate(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        sev = _apply(self._severity, raw)
        cat = _apply(self._category, raw) if self._category else None
        return sev, cat, self._actions.apply(raw)

    def explain(self, scores: Scores, severity: str, top: int = 5) -> list[tuple[str, float]]:
        """The terms that pushed ``severity`` most: value x (its weight - the mean weight over classes)."""
        if scores.features is None:
            return []
        idx, vals, w = scores.features
        model = self._severity
        if w.shape[1] == 1:  # binary: one column for the positive class
            w = np.hstack([-w, w])
        k = model.classes.index(severity)
        contrib = vals * (w[:, k] - w.mean(axis=1))
        order = np.argsort(-contrib)[:top]
        name = self.features.feature_name
        return [(name(int(idx[i]), float(vals[i])), float(contrib[i])) for i in order if contrib[i] > 0]


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


def compile_features(vectorizer: Any) -> FeatureExtractor:
    """A :class:`FeatureExtractor` for ``[TextHead ->] FeatureUnion``; UnsupportedModel for other shapes."""
    max_chars = None
    if (
        isinstance(vectorizer, Pipeline)
        and len(vectorizer.steps) == 2
        and isinstance(vectorizer.steps[0][1], TextHead)
    ):
        max_chars = vectorizer.steps[0][1].max_chars
        vectorizer = vectorizer.steps[1][1]
    if not isinstance(vectorizer, FeatureUnion):
        raise UnsupportedModel(f"vectorizer {type(vectorizer).__name__}")
    weights = vectorizer.transformer_weights or {}
    blocks: list[_TextBlock] = []
    numeric: _NumericBlock | None = None
    offset = 0
    for name, step in vectorizer.transformer_list:
        weight = float(weights.get(name, 1.0))
        steps = step.steps if isinstance(step, Pipeline) else [(name, step)]
        kinds = [type(s).__name__ for _, s in steps]
        last = steps[-1][1]
        if isinstance(last, TfidfVectorizer) and kinds[:-1] in ([], ["LeadingWords"], ["TextHead"]):
            if last.norm != "l2" or not last.use_idf or last.binary:
                raise UnsupportedModel("tf-idf options")
            first = steps[0][1]
            lead = first.n_words if isinstance(first, LeadingWords) else None
            names = last.get_feature_names_out()
            block = _TextBlock(
                first.max_chars if isinstance(first, TextHead) else None,
                last.build_analyzer(),
                last.vocabulary_,  # read-only here: no copy
                last.idf_.astype(np.float64),
                bool(last.sublinear_tf),
                weight,
                offset,
                lead,
                names,
            )
            if isinstance(last.analyzer, CharNgrams):
                # On a hash clash the string analyzer serves instead: the same answer, only slower.
                with contextlib.suppress(ValueError):
                    block.table = NgramTable(block.vocabulary, last.analyzer.min_n, last.analyzer.max_n)
            blocks.append(block)
            offset += len(names)
        elif kinds == ["NumericFeatures", "StandardScaler"]:
            scaler: StandardScaler = steps[1][1]
            n = scaler.n_features_in_
            mean = scaler.mean_ if scaler.with_mean else np.zeros(n)
            scale = scaler.scale_ if scaler.with_std else np.ones(n)
            names = tuple(str(x) for x in NumericFeatures().get_feature_names_out())
            numeric = _NumericBlock(mean.astype(np.float64), scale.astype(np.float64), weight, offset, names)
            offset += n
        else:
            raise UnsupportedModel(f"feature step {name}: {kinds}")
    return FeatureExtractor(max_chars, blocks, numeric, offset)


def compile_scorer(
    vectorizer: Any, severity_clf: Any, category_clf: Any | None, action_clf: Any
) -> FusedScorer:
    """Build a :class:`FusedScorer` from fitted objects; raises UnsupportedModel for shapes it can't fuse."""
    features = compile_features(vectorizer)
    n_features = features.n_features
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
    weights = np.hstack(columns) if columns else np.zeros((n_features, 0))
    action_classes = action_names(action_clf)
    return FusedScorer(features, weights, severity, category, actions, action_classes)


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
        X = self.vectorizer.transform(list(texts))
        sev = self.severity.predict_proba(X)
        cat = self.category.predict_proba(X) if self.category is not None else None
        acts = self.actions.predict_proba(X)
        return [Scores(sev[i], None if cat is None else cat[i], acts[i]) for i in range(len(texts))]

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
