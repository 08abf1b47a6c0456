"""Training: collect data, fit the feature pipeline and the models, validate, save a new version.

The objects validated here are the objects saved, and the saved files are what MLService serves: there
is no refit after validation and no second feature implementation.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from joblib import Parallel, delayed
from scipy.sparse import csr_matrix, diags
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression, SGDClassifier
from threadpoolctl import threadpool_limits

from engine.action_recommender import ActionRecommender
from engine.features import (
    DEFAULT_FEATURE_CONFIG,
    SIZE_MAGNITUDES,
    block_columns,
    build_feature_pipeline,
    drop_fit_only_state,
    feature_union,
)
from engine.ml_service import load_model_set, probe_record
from engine.ordinal import OrdinalBlendClassifier
from engine.probes import PROBE_TEXTS
from engine.registry import (
    ACTIONS_FILE,
    CATEGORY_FILE,
    SEVERITY_FILE,
    VECTORIZER_FILE,
    ModelRegistry,
    NoModels,
    RegistryError,
    environment_versions,
    model_key,
    new_version_id,
)
from engine.scorer import FusedScorer, SklearnScorer, compile_features, dump_serving, serving_scorer
from engine.taxonomy import ACTIONS, CATEGORIES, SEVERITIES
from training import gate
from training.bundled import ALERT_RULES, alert_rules, alert_rules_sha256
from training.dataset import LabeledIncident, load_jsonl
from training.evaluate import validation_report
from training.gate import GateResult
from training.progress import Progress
from training.synthetic import generate_incidents

log = logging.getLogger(__name__)

DEFAULT_MODEL_CONFIG: dict[str, Any] = {
    "C_severity": 2.0,
    "C_category": 4.0,
    "C_actions": 2.0,
    # Temperature scaling keeps each multiclass model's ranking and fixes its confidence (one parameter, so
    # it needs little data); the per-action binary models get Platt's sigmoid.
    "calibration": "temperature",
    "action_calibration": "sigmoid",
    "calibration_folds": 3,
    # Up to this many rows calibration is cross-validated (every row fits and calibrates); above it a
    # seeded 10% slice calibrates and the model is fitted once, which keeps large runs fast.
    "cv_calibration_below": 3000,
    "calibration_share": 0.1,
    # From this many real rows (a team's history, the bundled rules) the slice is that share of them.
    "calibrate_on_real_from": 300,
    "real_calibration_share": 0.25,
    "max_iter": 2000,
    # The share of the severity model's sample weight carried by real (non-synthetic) rows when both kinds
    # are present: thousands of synthetic rows would otherwise drown a team's own history.
    "real_weight_share": 0.5,
    # The category's real rows carry less: post-mortems and a team's labels are worded the way their
    # authors write, and a category learned from one provider's write-ups transfers poorly to another's
    # (docs/benchmarks.md). Severity's real rows are alert rules, graded by conventions that do transfer.
    "category_real_weight_share": 0.1,
    "class_balance_power": 1.0,
    # The same for the action models, over the rows that name actions.
    "action_real_weight_share": 0.5,
    "action_real_row_weight_cap": 10.0,  # a real row weighs at most this many synthetic ones
    # Below this many real rows with actions they keep a row's weight and no prior is pooled: the action
    # models' SGD, with its balanced classes, is thrown off by a handful of heavy rows (a team's first
    # eight corrections). A few dozen rows already say what the team usually does (docs/benchmarks.md).
    "action_real_rows_from": 50,
    # From that many real rows the action models' log-odds are pooled with this weight on each action's
    # share of those rows. On text unlike the team's history (a new service, a new kind of outage) the
    # text models fall back to the synthetic corpus' habits, and what this team usually does ranks better.
    "action_prior_weight": 0.7,
    # Feature blocks the category model does not read (its weights on them are zero, so the fused scorer
    # serves it unchanged). The title block repeats the first words, which name what was hit (a post-
    # mortem's "RCA - Storage - West Europe": service and region), not why; those words still count in
    # the word block. The magnitudes say how bad and how long, not why; what they could say of the
    # cause (a disk at 97%) the words say too, and synthetic messages' lengths differ by category in a
    # way real ones need not. Severity and actions keep both: there the title ("Major outage ...") and
    # the magnitudes say how bad.
    "category_blocks_off": ("title", "numbers"),
    # Magnitudes no model reads: the size of the message (engine/features.py SIZE_MAGNITUDES).
    "magnitudes_off": SIZE_MAGNITUDES,
    # Severity is ordered: its multinomial model's log-probabilities are blended with this share of
    # cumulative "worse than" models' (engine/ordinal.py). 0 switches the blend off.
    "severity_ordinal_mix": 0.3,
    "tol": 1e-3,
    "sgd_from_rows": 20_000,
    "sgd_updates": 120_000,  # SGD epochs = this / rows, within 3..50 (averaged SGD settles in a few)
    "vocabulary_sample": 6_000,
    "parallel_from_rows": 10_000,
}
MIN_CLASS_ROWS = 3  # fewer examples than calibration folds cannot be calibrated; such labels are left out


class TrainingError(Exception):
    """Training cannot produce a model from this data; the message says what is missing."""


class ValidationFailed(TrainingError):
    """The new model scored below the floor on held-out data and was not saved."""

    def __init__(self, message: str, metrics: dict[str, Any]) -> None:
        super().__init__(message)
        self.metrics = metrics


@dataclass(slots=True)
class TrainConfig:
    samples: int = 6000
    seed: int = 42
    data_files: Sequence[str | Path] = ()
    synthetic: bool = True
    bundled: bool = True  # the real alerting rules shipped in the package (training/bundled.py)
    label_noise: float = 0.03
    extra_rows: Sequence[LabeledIncident] = ()
    feature_config: dict[str, Any] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)
    validation_share: float = 0.2
    min_macro_f1: float = 0.4  # the floor for severity and category on the held-out split
    min_action_top3: float = 0.4
    progress: bool = True
    keep_versions: int = 5
    gate_data: Sequence[Path] = ()  # labeled files added to the promotion gate's fixed validation set
    gate_rows: Sequence[LabeledIncident] = ()  # rows added to it too (the most recent feedback, held out)
    gate_rejected: Sequence[tuple[str, str, str]] = ()  # (text, field, label) people rejected, held out


@dataclass(slots=True)
class TrainedModels:
    vectorizer: Any
    severity: Any
    category: Any | None
    actions: Any
    metrics: dict[str, Any]
    dropped_labels: dict[str, list[str]]

    def artifacts(self) -> dict[str, Any]:
        files = {VECTORIZER_FILE: self.vectorizer, SEVERITY_FILE: self.severity, ACTIONS_FILE: self.actions}
        if self.category is not None:
            files[CATEGORY_FILE] = self.category
        return files

    def scorer(self) -> SklearnScorer:
        return SklearnScorer(self.vectorizer, self.severity, self.category, self.actions)


@dataclass(slots=True)
class TrainResult:
    version: str
    metrics: dict[str, Any]
    data: dict[str, Any]
    seconds: float
    path: Path


# -- data -----------------------------------------------------------------------------------------------
def collect_data(config: TrainConfig) -> tuple[list[LabeledIncident], dict[str, Any]]:
    """Synthetic rows and the bundled alert rules (unless switched off), every --data file and extra rows,
    with a summary for metadata."""
    rows: list[LabeledIncident] = []
    files = []
    if config.synthetic:
        rows.extend(generate_incidents(config.samples, seed=config.seed, label_noise=config.label_noise))
    data_rows: list[LabeledIncident] = []
    for path in config.data_files:
        loaded = load_jsonl(path)
        for bad in loaded.bad_lines:
            log.warning("skipped %s", bad)
        data_rows.extend(loaded.rows)
        files.append(
            {
                "path": str(path),
                "sha256": loaded.sha256,
                "rows": len(loaded.rows),
                "bad_lines": len(loaded.bad_lines),
            }
        )
    bundled: list[LabeledIncident] = []
    if config.bundled:
        # A --data file may hold the same rules (the shared copy): each rule is learned from once.
        given = {r.id for r in (*data_rows, *config.extra_rows) if r.id}
        bundled = [r for r in alert_rules() if r.id not in given]
    rows.extend(bundled)
    rows.extend(data_rows)
    rows.extend(config.extra_rows)
    if not rows:
        raise TrainingError("no training data: give --data FILE or leave synthetic data on")
    summary = {
        "rows": len(rows),
        "by_source": dict(sorted(Counter(r.source for r in rows).items())),
        "files": files,
        "bundled": {"path": ALERT_RULES.name, "sha256": alert_rules_sha256(), "rows": len(bundled)}
        if bundled
        else None,
        "synthetic": {"samples": config.samples, "seed": config.seed, "label_noise": config.label_noise}
        if config.synthetic
        else None,
        "labels": {
            "severity": dict(Counter(r.severity for r in rows if r.severity)),
            "category": dict(Counter(r.category for r in rows if r.category)),
            "actions": dict(Counter(a for r in rows for a in (r.actions or ()))),
        },
    }
    return rows, summary


def split_rows(
    rows: Sequence[LabeledIncident], share: float, seed: int
) -> tuple[list[LabeledIncident], list[LabeledIncident]]:
    """A seeded hold-out split taken per source, so real history is represented on both sides."""
    if share <= 0:
        return list(rows), []
    by_source: dict[str, list[LabeledIncident]] = {}
    for row in rows:
        by_source.setdefault(row.source, []).append(row)
    rng = random.Random(seed)
    train, held = [], []
    for source in sorted(by_source):
        group = by_source[source][:]
        rng.shuffle(group)
        cut = round(len(group) * share) if len(group) >= 5 else 0
        held.extend(group[:cut])
        train.extend(group[cut:])
    return train, held


# -- models ---------------------------------------------------------------------------------------------
def _linear(C: float, mc: dict[str, Any], seed: int, n_rows: int, binary: bool) -> Any:
    """L2-regularised logistic regression; classes are balanced (by sample weights for the multiclass
    models, by class weights for the per-action ones).

    Exact (lbfgs) up to ``sgd_from_rows`` rows, where every real-history run falls; above it, the same loss
    by averaged SGD, whose cost is a few passes over the data (a 50,000-row synthetic run). The binary
    per-action models always use SGD: thirteen of them would dominate training time otherwise.
    """
    if binary or n_rows >= mc["sgd_from_rows"]:
        epochs = int(np.clip(mc["sgd_updates"] // max(n_rows, 1), 3, 50))
        return SGDClassifier(
            loss="log_loss",
            alpha=1.0 / (C * max(n_rows, 1)),  # the same penalty as LogisticRegression's C
            class_weight="balanced" if binary else None,
            average=True,
            max_iter=epochs,
            tol=None,
            random_state=seed,
        )
    return LogisticRegression(C=C, max_iter=mc["max_iter"], tol=mc["tol"], random_state=seed)


def _calibrated(
    C: float,
    mc: dict[str, Any],
    seed: int,
    n_rows: int,
    method: str,
    binary: bool = False,
    levels: Sequence[str] = (),
    real: np.ndarray | None = None,
) -> CalibratedClassifierCV:
    """Balancing classes helps the rare ones but biases probabilities; calibration undoes the bias.

    ``levels`` (least to most severe): an ordered label, learned by an ordinal blend of linear models.
    ``real`` (a mask over the rows): when enough real rows are among many synthetic ones, the held-out
    slice that sets the confidence is drawn from real rows alone. Synthetic rows are easier than real
    text, and a confidence fitted on them is too sure of real alerts.
    """
    base: Any = _linear(C, mc, seed, n_rows, binary)
    if levels:
        base = OrdinalBlendClassifier(base, levels, mc["severity_ordinal_mix"])
    if n_rows < mc["cv_calibration_below"]:
        return CalibratedClassifierCV(base, method=method, cv=mc["calibration_folds"], ensemble=False)
    rng = np.random.default_rng(seed)
    pool = np.arange(n_rows)
    cut = int(n_rows * mc["calibration_share"])
    if real is not None and real.sum() >= mc["calibrate_on_real_from"]:
        pool = np.flatnonzero(real)
        cut = int(len(pool) * mc["real_calibration_share"])
    held = rng.permutation(pool)[:cut]
    rest = np.setdiff1d(np.arange(n_rows), held)
    return CalibratedClassifierCV(base, method=method, cv=[(rest, np.sort(held))], ensemble=True)


def balanced_weights(
    rows: Sequence[LabeledIncident], labels: Sequence[str], real_share: float, power: float = 1.0
) -> np.ndarray:
    """Per-row weights (mean 1): real rows carry ``real_share`` of the total when both kinds are present,
    and within each kind a class of n rows weighs n ** -power a row (1: every class carries the same
    weight; 0: every row does).

    Balancing within each kind, not over the mix, matters: evenly spread synthetic classes would otherwise
    mask how rare a class is in a team's own history. The real share shrinks with the classes the real
    rows leave out: they speak for the classes they have, so a hundred corrections to "critical" for one
    service do not carry half the weight of every severity (and move every other alert towards critical).
    """
    synthetic = np.array([r.source.startswith("synthetic/") for r in rows], dtype=bool)
    labels_a = np.asarray(labels, dtype=object)
    weights = np.zeros(len(rows))
    groups = [g for g in (synthetic, ~synthetic) if g.any()]
    covered = len(set(labels_a[~synthetic])) / len(set(labels_a))
    shares = [1.0 - real_share * covered, real_share * covered] if len(groups) == 2 else [1.0]
    for group, share in zip(groups, shares, strict=True):
        classes, counts = np.unique(labels_a[group], return_counts=True)
        row_weight = counts.astype(float) ** -power
        per_class = dict(zip(classes, share * row_weight / (row_weight @ counts), strict=True))
        weights[group] = [per_class[c] for c in labels_a[group]]
    return weights * len(rows)


def _is_real(row: LabeledIncident) -> bool:
    return not row.source.startswith("synthetic/")


def _frequent(labels: Sequence[str], allowed: Sequence[str]) -> tuple[list[str], list[str]]:
    counts = Counter(labels)
    keep = [c for c in allowed if counts[c] >= MIN_CLASS_ROWS]
    dropped = [c for c in allowed if 0 < counts[c] < MIN_CLASS_ROWS]
    return keep, dropped


def fit_models(
    train_rows: Sequence[LabeledIncident],
    config: TrainConfig,
    progress: Progress | None = None,
) -> TrainedModels:
    """Fit the feature pipeline and the three (four) models on ``train_rows``."""
    with threadpool_limits(1):  # BLAS threads oversubscribe small sparse fits: 10x slower under load
        return _fit_models(train_rows, config, progress or Progress(2, enabled=False))


def _fit_features(
    texts: list[str], fc: dict[str, Any], mc: dict[str, Any], seed: int, real: np.ndarray | None = None
) -> tuple[Any, Any]:
    """Fit the pipeline and return it with the training matrix.

    In a large run (``parallel_from_rows``: a big synthetic corpus) vocabularies and idf are estimated on a
    seeded sample of ``vocabulary_sample`` texts: more adds little but time. Smaller runs use every text.
    The matrix comes from the compiled (C) extractor, equal to ``vectorizer.transform`` (tested) and faster.
    """
    vectorizer = build_feature_pipeline(fc)
    parallel = len(texts) >= mc["parallel_from_rows"]
    union = feature_union(vectorizer)
    union.set_params(n_jobs=2 if parallel else None)  # its blocks fit in two processes
    if parallel and len(texts) > mc["vocabulary_sample"]:
        # every real row (``real``) is read: their words are the scarce ones, and a synthetic sample
        # would leave most of a team's own vocabulary out
        keep = np.flatnonzero(real) if real is not None else np.zeros(0, dtype=np.intp)
        rest = np.setdiff1d(np.arange(len(texts)), keep)
        n = min(len(rest), max(mc["vocabulary_sample"] - len(keep), 0))
        pick = np.concatenate([keep, np.random.default_rng(seed).choice(rest, n, replace=False)])
        vectorizer.fit([texts[i] for i in np.sort(pick)])
    else:
        vectorizer.fit(texts)
    union.set_params(n_jobs=None)  # the saved pipeline must not start processes when it is used
    drop_fit_only_state(vectorizer)
    return vectorizer, compile_features(vectorizer).matrix(texts)


def _fit_head(
    estimator: Any, X: Any, y: Any, weights: np.ndarray | None, off: np.ndarray | None = None
) -> Any:
    """Fit one head; ``off`` (column indices) are columns it must not read: zeroed in what it learns
    from, and their weights set to exactly zero after, so the full-width model ignores them."""
    with threadpool_limits(1):  # also inside a worker process
        if off is not None and len(off):
            X = _without_columns(X, off)
        if weights is None:
            fitted = estimator.fit(X, y)
        elif isinstance(estimator, ActionRecommender):
            fitted = _fit_weighted_actions(estimator, X, y, weights)
        else:
            fitted = estimator.fit(X, y, sample_weight=weights)
        _refit_on_every_row(fitted, X, y, weights)
        if off is not None and len(off):
            for est in _linear_models(fitted):
                est.coef_[:, off] = 0.0
        return _round_to_float32(_drop_sgd_averaging_state(fitted))


def _pool_with_prior(model: ActionRecommender, taken: Sequence[Sequence[str]], weight: float) -> None:
    """Pool each action's calibrated log-odds with the log-odds of its (smoothed) share of ``taken``:
    ``logit p' = (1 - weight) * logit p + weight * logit share``. Platt's sigmoid ``expit(-(a f + b))``
    takes it exactly (a, b scaled and shifted), so the saved format and both scorers are unchanged."""
    n = len(taken)
    for name, est in zip(model.action_names, model.estimators_, strict=True):
        share = (sum(name in t for t in taken) + 1) / (n + 2)
        for calibrated in getattr(est, "calibrated_classifiers_", ()):
            for sigmoid in calibrated.calibrators:
                sigmoid.a_ *= 1 - weight
                sigmoid.b_ = (1 - weight) * sigmoid.b_ - weight * np.log(share / (1 - share))


def _fit_weighted_actions(model: ActionRecommender, X: Any, y: Any, weights: np.ndarray) -> ActionRecommender:
    """One-vs-rest passes sample weights on to each action's model only through scikit-learn's metadata
    routing, switched on for this fit alone."""
    with sklearn.config_context(enable_metadata_routing=True):
        calibrated = model.estimator
        calibrated.set_fit_request(sample_weight=True)
        calibrated.estimator.set_fit_request(sample_weight=True)
        return model.fit(X, y, sample_weight=weights)


def _without_columns(X: Any, off: np.ndarray) -> Any:
    """A copy of the sparse matrix ``X`` with the columns ``off`` zeroed and dropped from storage."""
    keep = np.ones(X.shape[1])
    keep[off] = 0.0
    out = csr_matrix(X @ diags(keep))
    out.eliminate_zeros()
    return out


def _off_columns(vectorizer: Any, blocks: Sequence[str], magnitudes: Sequence[str]) -> np.ndarray:
    """Column indices of the named feature blocks and of the named magnitudes in the numbers block
    (names the pipeline lacks are ignored)."""
    cols = block_columns(vectorizer)
    parts = [np.arange(cols[n].start, cols[n].stop) for n in blocks if n in cols]
    if "numbers" in cols:
        names = list(feature_union(vectorizer).get_params()["numbers"].steps[0][1].get_feature_names_out())
        start = cols["numbers"].start
        parts.append(np.array([start + names.index(m) for m in magnitudes if m in names], dtype=np.intp))
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.intp)


def _refit_on_every_row(model: Any, X: Any, y: Any, weights: np.ndarray | None) -> None:
    """A multiclass model calibrated on a held-out slice is fitted again on every row, the slice too.

    The slice was a tenth of the rows the decision never learned from, and the scarce real ones matter
    most. Temperature scaling only sets how sure the model is, not what it answers; the temperature
    found for the model fitted without the slice stays (the refit one differs from it by a tenth more
    data). Per-action sigmoids, whose offsets depend on each model's scores, are left as fitted, and so
    are the large SGD runs (a big synthetic corpus), which lose little to the slice and would train longer.
    """
    held_out = isinstance(model, CalibratedClassifierCV) and isinstance(model.cv, list)
    if held_out and model.method == "temperature":
        (calibrated,) = model.calibrated_classifiers_
        fitted = calibrated.estimator
        inner = fitted.estimator if isinstance(fitted, OrdinalBlendClassifier) else fitted
        if isinstance(inner, LogisticRegression):
            fitted.fit(X, y, sample_weight=weights)


def _round_to_float32(model: Any) -> Any:
    """Round the coefficients to float32 values (kept as float64): the served scorer then reads them as
    float32, half the memory per alert, and computes exactly what these objects compute. A change in
    the 8th significant digit of a weight changes no prediction anyone can see."""
    for est in _linear_models(model):
        est.coef_ = est.coef_.astype(np.float32).astype(np.float64)
    return model


def _drop_sgd_averaging_state(model: Any) -> Any:
    """SGD keeps two more coefficient copies only to resume training (partial_fit), which we never do;
    prediction reads ``coef_`` and ``intercept_``. Dropping them keeps the artifacts a third of the size."""
    for est in _sgd_models(model):
        for attr in ("_standard_coef", "_standard_intercept", "_average_coef", "_average_intercept"):
            if hasattr(est, attr):
                delattr(est, attr)
    return model


def _linear_models(model: Any) -> list[Any]:
    """The fitted linear classifiers inside a (calibrated, one-vs-rest) model."""
    members = list(getattr(model, "estimators_", [model]))
    calibrated = [cc.estimator for c in members for cc in getattr(c, "calibrated_classifiers_", [])]
    found = calibrated + members
    parts = [p for m in found if isinstance(m, OrdinalBlendClassifier) for p in m.linear_models]
    return [m for m in found + parts if isinstance(m, LogisticRegression | SGDClassifier)]


def _sgd_models(model: Any) -> list[SGDClassifier]:
    return [m for m in _linear_models(model) if isinstance(m, SGDClassifier)]


def _fit_models(
    train_rows: Sequence[LabeledIncident], config: TrainConfig, progress: Progress
) -> TrainedModels:
    mc = {**DEFAULT_MODEL_CONFIG, **config.model_config}
    fc = {**DEFAULT_FEATURE_CONFIG, **config.feature_config}
    dropped: dict[str, list[str]] = {}
    with progress.step("feature pipeline"):
        real_rows = np.array([_is_real(r) for r in train_rows], dtype=bool)
        vectorizer, X = _fit_features([r.text for r in train_rows], fc, mc, config.seed, real_rows)

    with progress.step("severity, category and action models"):
        jobs: list[tuple[str, Any, Any, Any, np.ndarray | None, np.ndarray | None]] = []

        def weights(idx: list[int], label: str) -> np.ndarray:
            rows = [train_rows[i] for i in idx]
            labels = [getattr(r, label) for r in rows]
            share = mc["real_weight_share" if label == "severity" else "category_real_weight_share"]
            return balanced_weights(rows, labels, share, mc["class_balance_power"])

        keep, dropped["severity"] = _frequent([r.severity for r in train_rows if r.severity], SEVERITIES)
        if len(keep) < 2:
            raise TrainingError(
                "fewer than two severities with 3+ labeled rows: cannot train a severity model"
            )
        idx = [i for i, r in enumerate(train_rows) if r.severity in keep]
        levels = [s for s in reversed(SEVERITIES) if s in keep]  # least severe first
        ordinal = levels if len(levels) >= 3 and mc["severity_ordinal_mix"] > 0 else []
        real = np.array([_is_real(train_rows[i]) for i in idx])
        model = _calibrated(
            mc["C_severity"], mc, config.seed, len(idx), mc["calibration"], levels=ordinal, real=real
        )
        size_off = _off_columns(vectorizer, (), mc["magnitudes_off"])
        labels = [train_rows[i].severity for i in idx]
        jobs.append(("severity", model, X[idx], labels, weights(idx, "severity"), size_off))

        keep, dropped["category"] = _frequent([r.category for r in train_rows if r.category], CATEGORIES)
        idx = [i for i, r in enumerate(train_rows) if r.category in keep]
        if len(keep) >= 2:
            # A slice of real rows sets severity's confidence, not the category's: a quarter of a few
            # hundred post-mortems, each of its own kind, left it far less sure than it is right.
            model = _calibrated(mc["C_category"], mc, config.seed, len(idx), mc["calibration"])
            off = _off_columns(vectorizer, mc["category_blocks_off"], mc["magnitudes_off"])
            labels = [train_rows[i].category for i in idx]
            jobs.append(("category", model, X[idx], labels, weights(idx, "category"), off))
        else:
            log.warning("no category model: fewer than two categories with 3+ labeled rows")

        idx = [i for i, r in enumerate(train_rows) if r.actions]
        if not idx:
            raise TrainingError(
                "no rows with actions: add labeled actions (--data) or keep synthetic data on"
            )
        counts = Counter(a for i in idx for a in train_rows[i].actions or ())
        dropped["actions"] = [a for a in ACTIONS if 0 < counts[a] < MIN_CLASS_ROWS]
        taken = [[a for a in train_rows[i].actions or () if counts[a] >= MIN_CLASS_ROWS] for i in idx]
        model = ActionRecommender(
            _calibrated(mc["C_actions"], mc, config.seed, len(idx), mc["action_calibration"], binary=True)
        )
        action_rows = [train_rows[i] for i in idx]
        action_weights = None
        n_real = sum(_is_real(r) for r in action_rows)
        if mc["action_real_weight_share"] and mc["action_real_rows_from"] <= n_real < len(action_rows):
            # no class balancing here (each action's model balances its own two classes): only the share
            # of real rows, so a team's own remediation habits are not drowned by the synthetic ones
            same = ["row"] * len(action_rows)
            action_weights = balanced_weights(action_rows, same, mc["action_real_weight_share"])
            # ... bounded: a few dozen rows weighing fifty synthetic ones each throw the action models'
            # SGD off course (the steps scale with the weight), and so few rows say little anyway
            synthetic_weight = action_weights[[not _is_real(r) for r in action_rows]].mean()
            action_weights = np.minimum(action_weights, mc["action_real_row_weight_cap"] * synthetic_weight)
        jobs.append(("actions", model, X[idx], taken, action_weights, size_off))

        # Large runs fit the heads in two worker processes (the matrix is memory-mapped, not copied); the
        # thirteen action models go first, alone on one worker, while the other fits the rest.
        jobs.sort(key=lambda job: job[0] != "actions")
        n_jobs = 2 if X.shape[0] >= mc["parallel_from_rows"] else 1
        fitted = Parallel(n_jobs=n_jobs)(delayed(_fit_head)(m, Xh, y, w, off) for _, m, Xh, y, w, off in jobs)
        heads = {name: model for (name, *_), model in zip(jobs, fitted, strict=True)}
        if action_weights is not None and mc["action_prior_weight"] > 0:
            real_taken = [t for t, r in zip(taken, action_rows, strict=True) if _is_real(r)]
            _pool_with_prior(heads["actions"], real_taken, mc["action_prior_weight"])

    return TrainedModels(
        vectorizer,
        heads["severity"],
        heads.get("category"),
        heads["actions"],
        {},
        {k: v for k, v in dropped.items() if v},
    )


def check_floor(metrics: dict[str, Any], config: TrainConfig) -> list[str]:
    """Reasons to refuse the model: below the configured floor, or no better than the majority class."""
    failures = []
    for label in ("severity", "category"):
        m = metrics.get(label, {})
        if m.get("n", 0) < 20:
            continue
        if m["macro_f1"] < config.min_macro_f1:
            failures.append(
                f"{label} macro-F1 {m['macro_f1']:.3f} is below the floor {config.min_macro_f1:.2f}"
            )
        if m["macro_f1"] <= m["majority_macro_f1"]:
            failures.append(f"{label} macro-F1 {m['macro_f1']:.3f} does not beat the majority class")
    actions = metrics.get("actions", {})
    if actions.get("n", 0) >= 20 and actions["top3"] < config.min_action_top3:
        failures.append(f"action top-3 {actions['top3']:.3f} is below the floor {config.min_action_top3:.2f}")
    return failures


@dataclass(slots=True)
class FittedRun:
    """Models trained and validated, not saved yet: ``save_run`` writes exactly these as a version."""

    config: TrainConfig
    models: TrainedModels
    scorer: Any  # what validation scored with, and what will serve: the fused scorer, else scikit-learn's
    metrics: dict[str, Any]
    data: dict[str, Any]  # collect_data's summary
    seconds: float


def fit_run(config: TrainConfig, progress: Progress | None = None) -> FittedRun:
    """Data, fit, and validation against the floor (ValidationFailed below it): the first four steps."""
    started = time.perf_counter()
    progress = progress or Progress(4, enabled=False)
    with progress.step("training data"):
        rows, summary = collect_data(config)
        train_rows, held_rows = split_rows(rows, config.validation_share, config.seed)
    models = fit_models(train_rows, config, progress)
    with progress.step("validation"):
        # Scored by what will serve: the fused scorer (in C, on every core), checked against
        # scikit-learn on the probes.
        scorer = serving_scorer(models.scorer(), PROBE_TEXTS)[0]
        metrics = validation_report(scorer, held_rows)
        metrics["validation_rows"] = len(held_rows)
        metrics["train_rows"] = len(train_rows)
        failures = check_floor(metrics, config)
        if failures:
            raise ValidationFailed("model refused, nothing saved: " + "; ".join(failures), metrics)
    return FittedRun(config, models, scorer, metrics, summary, time.perf_counter() - started)


def save_run(
    run: FittedRun, registry: ModelRegistry, activate: bool = True, progress: Progress | None = None
) -> TrainResult:
    """Save a run as a new version, check the saved files load and reproduce the probes, promote it through
    the gate (``activate``), prune: the last two steps. GateRefused leaves it saved but not active."""
    started = time.perf_counter()
    progress = progress or Progress(2, enabled=False)
    config = run.config
    if not isinstance(run.scorer, FusedScorer):
        raise TrainingError(
            "these models do not compile into the fused scorer that serving reads (arrays, no pickle): "
            "nothing saved"
        )
    key = model_key(registry.root)  # signs the version when a key is configured
    registry.clean_staging()
    with progress.step("save version"):
        metadata = {
            "version": new_version_id(),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seed": config.seed,
            "data": run.data,
            "metrics": run.metrics,
            "feature_config": {**DEFAULT_FEATURE_CONFIG, **config.feature_config},
            "model_config": {**DEFAULT_MODEL_CONFIG, **config.model_config},
            "dropped_labels": run.models.dropped_labels,
            "floor": {"min_macro_f1": config.min_macro_f1, "min_action_top3": config.min_action_top3},
            "versions": environment_versions(),
            "probe": probe_record(run.models.scorer()),
            "training_seconds": round(run.seconds, 2),
        }
        version = registry.write_version(run.models.artifacts(), metadata, dump_serving(run.scorer), key)
        load_model_set(version)  # what serves must load and reproduce the probes before going live
    if activate:
        with progress.step("promotion gate"):
            try:
                promote(
                    registry,
                    version.id,
                    config.gate_data,
                    extra_rows=config.gate_rows,
                    rejected=config.gate_rejected,
                )
            except RegistryError:  # the disk filled up or turned read-only: leave no orphan behind
                registry.discard(version.id)
                raise
        registry.prune()
    seconds = run.seconds + time.perf_counter() - started
    return TrainResult(version.id, run.metrics, run.data, seconds, version.path)


def train(config: TrainConfig, model_path: str | Path, activate: bool = True) -> TrainResult:
    """The whole run: data, fit, validate against the floor, save a new version, activate, prune."""
    progress = Progress(6, enabled=config.progress)
    registry = ModelRegistry(model_path, keep=config.keep_versions)
    registry.check_writable()  # before a long run, not after it
    model_key(registry.root)  # a bad signing key, too
    try:
        return save_run(fit_run(config, progress), registry, activate, progress)
    finally:
        progress.close()


class GateRefused(TrainingError):
    """The new version is saved but not active: it is worse than the active one on the fixed set."""

    def __init__(self, message: str, version_id: str, gate: GateResult) -> None:
        super().__init__(message)
        self.version_id = version_id
        self.gate = gate


def promote(
    registry: ModelRegistry,
    version_id: str,
    gate_data: Sequence[Path] = (),
    force: bool = False,
    extra_rows: Sequence[LabeledIncident] = (),
    rejected: Sequence[tuple[str, str, str]] = (),
) -> GateResult:
    """Make a version active if it passes the gate against the active one (or ``force``); the verdict
    goes into the version's metadata either way it is promoted."""
    try:
        active = registry.active()
    except NoModels:
        active = None
    extra = [*extra_rows, *(r for f in gate_data for r in load_jsonl(f).rows)]
    result = gate.check(registry.get(version_id), active, extra, rejected)
    if not result.passed and not force:
        raise GateRefused(
            f"{version_id} is saved but not active: "
            + "; ".join(result.reasons)
            + f" (`oncall models promote {version_id} --force` activates it anyway)",
            version_id,
            result,
        )
    # Recorded first: if the disk fills between the two writes, the pointer has not moved.
    registry.record_promotion(
        version_id,
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "replaced": active.id if active else None,
            "forced": force and not result.passed,
            "gate": result.to_dict(),
        },
    )
    registry.promote(version_id)
    return result


# Fewer rows leave a person's one-line reports to the luck of the draw: the built-in model's severity on
# them moved by 0.1 between seeds at 6,000, and half that at 12,000, for about 15 s more at first start.
BUILTIN_SAMPLES = 12_000


def train_builtin(model_path: Path) -> str:
    """The embedded default, trained in seconds: synthetic incidents and the bundled real alerting rules.

    Registered as the ``oncall.trainers`` entry point ``builtin``, which MLService calls when the model
    directory is empty.
    """
    return train(TrainConfig(samples=BUILTIN_SAMPLES, progress=False), model_path).version
