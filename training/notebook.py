"""NotebookMLService: the Model Integration Guide's notebook service, on the project's own training code.

A thin face for data scientists: ``train_models`` is ``oncall train``'s data, fit and validation
(``training.train.fit_run``), ``save_models`` is its save and promotion (``save_run``: a new version in the
registry, through the promotion gate), and ``load_models`` loads the active version as the bot does (its
serving artifact: no pickle). Predictions come from the code the bot predicts with
(``engine.ml_service.predict_text``), so the notebook and production give the same answer to the same text.

The scikit-learn objects (``incident_classifier`` and the others) are the ones trained in this session
after ``train_models``/``save_models``. Loaded from disk they are pickles, which run code: ``load_models``
unpickles them only with ``trust_pickles=True`` (or ML_TRUST_PICKLES=1), for files you trained yourself,
or when the version is signed with the configured key (ONCALL_MODEL_KEY, ONCALL_MODEL_KEY_FILE; training
signs with it); otherwise they are None and predictions work all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from engine.labels import Vote
from engine.ml_service import MODEL_NAMES, ModelSet, Prediction, load_model_set, predict_text
from engine.registry import (
    ACTIONS_FILE,
    CATEGORY_FILE,
    SEVERITY_FILE,
    VECTORIZER_FILE,
    ModelRegistry,
    model_key,
    trust_from_env,
)
from training.feedback import DecisionRecord, split_feedback
from training.train import FittedRun, GateRefused, TrainConfig, TrainingError, fit_run, save_run

log = logging.getLogger(__name__)

UNSAVED = "unsaved"  # the version name of models trained here and not saved yet


class NotebookMLService:
    """Train, save, load and try the models from a notebook (the names of the Model Integration Guide)."""

    #: The recipe used when none is given: ``oncall train``'s defaults (synthetic incidents, the bundled
    #: alert rules, seed 42).
    default_config: ClassVar[TrainConfig] = TrainConfig(progress=False)

    def __init__(self, models_dir: str | Path = "models", config: TrainConfig | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.config = replace(config if config is not None else self.default_config)
        self.registry = ModelRegistry(self.models_dir, keep=self.config.keep_versions)
        # The scikit-learn objects of the models predicting here (the guide's attributes).
        self.incident_classifier: Any = None
        self.category_classifier: Any = None
        self.action_recommender: Any = None
        self.text_vectorizer: Any = None
        self.metrics: dict[str, Any] = {}  # their held-out numbers, as recorded at training
        self.version: str | None = None  # their version; UNSAVED until save_models()
        self._run: FittedRun | None = None
        self._models: ModelSet | None = None

    # -- the guide's lifecycle ----------------------------------------------------------------------------
    def load_or_train_models(self, trust_pickles: bool = False) -> None:
        """Load the active version (``load_models``); with none in ``models_dir``, train one and save it."""
        if self._models_exist():
            self.load_models(trust_pickles)
        else:
            self.train_models()
            self.save_models()

    def _models_exist(self) -> bool:
        return self.registry.active_id() is not None

    def train_models(
        self,
        data_files: Sequence[str | Path] = (),
        feedback: Sequence[tuple[DecisionRecord, Sequence[Vote]]] = (),
    ) -> dict[str, Any]:
        """Train and validate on synthetic incidents and the bundled alert rules (as ``self.config`` says),
        plus labeled JSONL ``data_files`` (docs/labeled-data.md) and ``feedback``: rated decisions as the
        feedback store's ``feedback()`` returns them, the newest fifth held out for the promotion gate as in
        `oncall train --with-feedback`. Nothing is written until ``save_models()``. Returns the held-out
        metrics; raises ValidationFailed when the models are below the floor."""
        train_rows, gate_rows, rejected = split_feedback(feedback)
        config = replace(
            self.config,
            data_files=(*self.config.data_files, *data_files),
            extra_rows=(*self.config.extra_rows, *train_rows),
            gate_rows=(*self.config.gate_rows, *gate_rows),
            gate_rejected=(*self.config.gate_rejected, *rejected),
        )
        run = fit_run(config)
        objects = run.models.artifacts()
        loaded = {name: file in objects for name, file in MODEL_NAMES.items()}
        self._use(ModelSet(UNSAVED, {"metrics": run.metrics}, run.scorer, loaded), objects)
        self._run = run
        return run.metrics

    def save_models(self) -> str:
        """Save what ``train_models()`` trained as a new version and make it active through the promotion
        gate, exactly as `oncall train` does; then predict with the saved files. Returns the version id.
        GateRefused (a TrainingError) when it is worse than the active version: saved, not active."""
        run = self._run
        if run is None:
            raise TrainingError("nothing to save: train_models() first")
        try:
            version = save_run(run, self.registry).version
        except GateRefused as exc:
            self._saved(exc.version_id, run)  # what was saved, inactive
            raise
        self._saved(version, run)
        return version

    def _saved(self, version_id: str, run: FittedRun) -> None:
        """Predict with the saved version as the bot will; the objects stay the ones trained here (the
        ones saved), never unpickled back."""
        self._use(load_model_set(self.registry.get(version_id)), run.models.artifacts())
        self._run = None

    def load_models(self, trust_pickles: bool = False) -> None:
        """Load the active version as the bot does. The scikit-learn objects too only with
        ``trust_pickles`` (or ML_TRUST_PICKLES=1: you vouch for its joblib files, say you trained them) or
        a valid signature by the configured key; else they are None."""
        active = self.registry.active_id()
        if active is None:
            raise TrainingError(f"no trained model in {self.models_dir}: train_models() and save_models()")
        version = self.registry.get(active)
        models = load_model_set(version)
        trust = trust_pickles or trust_from_env()
        key = model_key(self.models_dir)
        objects = version.load_pickles(trust, key)[0] if trust or version.signed_with(key) else {}
        if not objects:
            log.info(
                "%s loaded for predictions; its scikit-learn objects are pickles and stay unloaded: "
                "load_models(trust_pickles=True) if you trust its joblib files",
                active,
            )
        self._use(models, objects)
        self._run = None

    def _use(self, models: ModelSet, objects: dict[str, Any]) -> None:
        self._models = models
        self.version = models.version
        self.metrics = models.metadata.get("metrics", {})
        self.incident_classifier = objects.get(SEVERITY_FILE)
        self.category_classifier = objects.get(CATEGORY_FILE)
        self.action_recommender = objects.get(ACTIONS_FILE)
        self.text_vectorizer = objects.get(VECTORIZER_FILE)

    # -- predictions, by the code the bot predicts with ---------------------------------------------------
    def predict(self, text: str) -> Prediction:
        """Severity, category and every action, best first, with their confidences."""
        if self._models is None:
            raise TrainingError("no models: load_or_train_models(), load_models() or train_models() first")
        return predict_text(self._models, text)

    def predict_incident_severity(self, text: str) -> tuple[str, float]:
        p = self.predict(text)
        return p.severity, p.severity_confidence

    def predict_incident_category(self, text: str) -> tuple[str, float]:
        p = self.predict(text)
        return p.category, p.category_confidence

    def recommend_action(self, text: str) -> tuple[str, float]:
        """The best action and its confidence."""
        return self.predict(text).actions[0]
