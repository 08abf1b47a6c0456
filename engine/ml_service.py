"""MLService: the single source of truth for every prediction the bot makes.

It loads a model version's serving artifact from the registry (arrays and JSON, never a pickle; its sha256
checked, then a smoke prediction and the probabilities recorded at training), serves it, and hot-reloads:
a new set is loaded aside and swapped in with one reference assignment only if it passes, so a prediction
never sees a half-loaded set. Whatever a failed load raises, the old set keeps serving and ``last_error``
says why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np

from engine.fallback import FALLBACK_VERSION, RuleScorer
from engine.probes import PROBE_TEXTS
from engine.quality import measured
from engine.registry import (
    ACTIONS_FILE,
    CATEGORY_FILE,
    FLAT_VERSION,
    SERVING_FILE,
    SEVERITY_FILE,
    VECTORIZER_FILE,
    ModelRegistry,
    ModelVersion,
    NoModels,
    RegistryError,
)
from engine.scorer import (
    FusedScorer,
    Scores,
    SklearnScorer,
    UnsupportedModel,
    compile_scorer,
    load_serving,
    verify_scorer,
)
from engine.settings import EngineSettings

log = logging.getLogger(__name__)

#: Trains the built-in model into a model directory and activates it, returning the version id.
Trainer = Callable[[Path], str]
TRAINER_ENTRY_POINTS = "oncall.trainers"

MODEL_NAMES = {
    "incident_classifier": SEVERITY_FILE,
    "category_classifier": CATEGORY_FILE,
    "action_recommender": ACTIONS_FILE,
    "text_vectorizer": VECTORIZER_FILE,
}
_PROBE_TOLERANCE = 1e-6
BATCH_CHUNK = 8192  # alerts scored at a time by predict_chunks: big chunks spread each call's fixed cost
FIRST_CHUNK = 1024


def builtin_trainer() -> Trainer | None:
    """The installed built-in trainer, found through an entry point: ``engine`` never imports ``training``."""
    for entry in entry_points(group=TRAINER_ENTRY_POINTS, name="builtin"):
        return entry.load()
    return None


class ModelLoadError(Exception):
    """A version could not be made to serve; the message says why."""


@dataclass(slots=True)  # not frozen: five times faster to build, and batches build many
class Prediction:
    severity: str
    severity_confidence: float
    category: str
    category_confidence: float
    actions: list[tuple[str, float]]  # every action, best first
    model_version: str
    fallback: bool
    scores: Scores | None = field(default=None, repr=False)  # the single-alert path's, for explanations


@dataclass(slots=True)
class ScoredBatch:
    """Many predictions by one model set, column by column: a batch of decisions is built from the
    columns without a Prediction object per alert."""

    model_version: str
    fallback: bool
    severity: list[str]
    severity_confidence: list[float]
    category: list[str]
    category_confidence: list[float]
    # The ranked actions of each alert as indices into ``action_names`` with their confidences, best
    # first: a caller builds its own objects from them without an intermediate (name, confidence) pair.
    action_names: tuple[str, ...]
    action_order: list[list[int]]
    action_confidence: list[list[float]]

    def actions(self) -> list[list[tuple[str, float]]]:
        names = self.action_names
        return [
            [(names[j], c) for j, c in zip(order, conf, strict=True)]
            for order, conf in zip(self.action_order, self.action_confidence, strict=True)
        ]

    def predictions(self) -> list[Prediction]:
        return [
            Prediction(sev, sc, cat, cc, acts, self.model_version, self.fallback)
            for sev, sc, cat, cc, acts in zip(
                self.severity,
                self.severity_confidence,
                self.category,
                self.category_confidence,
                self.actions(),
                strict=True,
            )
        ]


@dataclass(frozen=True, slots=True)
class ModelSet:
    """Everything one version needs to serve; immutable, swapped as a whole."""

    version: str
    metadata: dict[str, Any]
    scorer: FusedScorer | SklearnScorer | RuleScorer
    loaded: dict[str, bool]
    warnings: tuple[str, ...] = ()
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0

    @property
    def fallback(self) -> bool:
        return self.version == FALLBACK_VERSION

    @property
    def scorer_kind(self) -> str:
        return {FusedScorer: "fused", SklearnScorer: "scikit-learn", RuleScorer: "rules"}[type(self.scorer)]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    old_version: str | None
    new_version: str | None
    error: str | None = None


def _fallback_set(reason: str) -> ModelSet:
    return ModelSet(
        FALLBACK_VERSION, {"reason": reason}, RuleScorer(), dict.fromkeys(MODEL_NAMES, False), (reason,)
    )


def load_model_set(version: ModelVersion) -> ModelSet:
    """Serve one version from its serving artifact (blocking; run it off the event loop): sha256 checked,
    read without pickle, smoke-tested and checked against the probabilities recorded at training. Never
    unpickles. Raises RegistryError or ModelLoadError, whatever went wrong, with the reason."""
    started = time.perf_counter()
    try:
        data = version.serving_bytes()
    except OSError as exc:  # unreadable, or removed while being read
        raise RegistryError(f"model {version.id} cannot be read: {exc}") from exc
    try:
        scorer = load_serving(data)
        _smoke_test(version, scorer.score_many(list(PROBE_TEXTS)))
    except ModelLoadError:
        raise
    except Exception as exc:  # a file that is not ours: whatever numpy, JSON or the featurizer raise
        raise ModelLoadError(
            f"model {version.id}'s {SERVING_FILE} is unusable: {type(exc).__name__}: {exc}"
        ) from exc
    loaded = dict.fromkeys(MODEL_NAMES, True)
    loaded["category_classifier"] = bool(scorer.category_classes)
    return ModelSet(version.id, version.metadata, scorer, loaded, load_seconds=time.perf_counter() - started)


def reference_scorer(objects: dict[str, Any]) -> SklearnScorer:
    """The scikit-learn objects of unpickled joblib files (by file name) as one scorer."""
    return SklearnScorer(
        objects[VECTORIZER_FILE], objects[SEVERITY_FILE], objects.get(CATEGORY_FILE), objects[ACTIONS_FILE]
    )


def compile_pickles(version: ModelVersion, objects: dict[str, Any]) -> FusedScorer:
    """The fused scorer of a version's unpickled scikit-learn objects (``ModelVersion.load_pickles``, under
    explicit trust): what its serving artifact holds. It must reproduce the objects' probabilities on the
    probes (and those recorded at training, when there are some); ModelLoadError otherwise."""
    reference = reference_scorer(objects)
    try:
        expected = reference.score_many(list(PROBE_TEXTS))
    except Exception as exc:  # a foreign object that cannot predict is unusable, whatever it raised
        raise ModelLoadError(
            f"model {version.id} fails its smoke prediction: {type(exc).__name__}: {exc}"
        ) from exc
    _smoke_test(version, expected)
    try:
        fused = compile_scorer(
            reference.vectorizer, reference.severity, reference.category, reference.actions
        )
        verify_scorer(fused, reference, PROBE_TEXTS, expected)
    except UnsupportedModel as exc:
        raise ModelLoadError(f"model {version.id} cannot be served without pickles: {exc}") from exc
    return fused


def _smoke_test(version: ModelVersion, got: Sequence[Scores]) -> None:
    """Valid probabilities, and the ones recorded at training."""
    for scores in got:
        if not (np.all(np.isfinite(scores.severity)) and abs(float(scores.severity.sum()) - 1.0) < 1e-6):
            raise ModelLoadError(f"model {version.id} returns invalid severity probabilities")
    _check_recorded_probes(version, got)


def predict_text(models: ModelSet, text: str) -> Prediction:
    """All three predictions for one text from one model set, in one feature pass: what the bot serves, and
    what ``training.NotebookMLService`` predicts with (the same code, so the same answer)."""
    s = models.scorer.score(text)
    cat = None if s.category is None else s.category[np.newaxis]
    batch = _scored(models, models.scorer, s.severity[np.newaxis], cat, s.actions[np.newaxis])
    [prediction] = batch.predictions()
    # the single-alert path keeps the feature row, for explanations
    return replace(prediction, scores=s)


def probe_record(reference: SklearnScorer) -> dict[str, Any]:
    """What the scikit-learn objects predict on the probe texts, for a version's metadata: loading its
    serving artifact must reproduce it exactly."""
    scores = reference.score_many(list(PROBE_TEXTS))
    record: dict[str, Any] = {
        "texts": list(PROBE_TEXTS),
        "severity": [s.severity.tolist() for s in scores],
        "actions": [s.actions.tolist() for s in scores],
    }
    if reference.category is not None:
        record["category"] = [s.category.tolist() for s in scores]  # type: ignore[union-attr]
    return record


def _check_recorded_probes(version: ModelVersion, got: Sequence[Scores]) -> None:
    """The saved files must predict exactly what the training-side objects predicted before saving."""
    probe = version.metadata.get("probe") or {}
    if not probe:
        return
    if list(probe.get("texts", [])) != list(PROBE_TEXTS):
        return  # written with another probe set; the smoke test above still ran
    for i, scores in enumerate(got):
        for key, values in (
            ("severity", scores.severity),
            ("actions", scores.actions),
            ("category", scores.category),
        ):
            recorded = probe.get(key)
            if recorded is None or values is None:
                continue
            diff = float(np.max(np.abs(np.asarray(recorded[i]) - values)))
            if diff > _PROBE_TOLERANCE:
                raise ModelLoadError(
                    f"model {version.id} predicts differently from when it was trained ({key} differs by "
                    f"{diff:.1e} on probe {i}): check the library versions in its metadata"
                )


def _why(exc: BaseException) -> str:
    """Why a load failed: our own errors are sentences already; anything else is named by its type."""
    return str(exc) if isinstance(exc, RegistryError | ModelLoadError) else f"{type(exc).__name__}: {exc}"


class MLService:
    """Loads, verifies, serves and hot-reloads the three models (plus the category model).

    Failure never stops it serving: a version that does not load (whatever it raises, at start-up, on a
    reload, on following the pointer, or as a trial's candidate) is logged at ERROR, counted in
    ``load_failures`` and named in ``last_error``, and the set that was serving keeps serving.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        trainer: Trainer | None = None,
        auto_train: bool | None = None,
        keep_versions: int = 5,
    ) -> None:
        if model_path is None or auto_train is None:  # unset: the environment's (engine/settings.py)
            env = EngineSettings.from_env()
            model_path = env.model_path if model_path is None else model_path
            auto_train = env.auto_train if auto_train is None else auto_train
        self.model_path = Path(model_path)
        self.registry = ModelRegistry(self.model_path, keep=keep_versions)
        self._trainer = trainer if trainer is not None else builtin_trainer()
        self.auto_train = auto_train
        self._models: ModelSet = _fallback_set("not initialized")
        self._lock = asyncio.Lock()
        # Why the active version (key "active") or the trial's candidate ("trial") is not serving.
        self._errors: dict[str, str] = {}
        self.last_reload: ReloadResult | None = None
        self.reloads_ok = 0
        #: Failed loads by where they happened: startup, reload, trial, pointer (for /metrics).
        self.load_failures: Counter[str] = Counter()
        self.initialized = False
        # The active version that failed to load: the follower does not retry it until the pointer moves.
        self._failed_active: str | None = None
        # A trial (registry.trial()): the candidate's models, loaded beside the active ones.
        self.trial: dict[str, Any] | None = None
        self.candidate: ModelSet | None = None
        self._candidate_failed: str | None = None

    @property
    def last_error(self) -> str | None:
        """Why the active version (or else the trial's candidate) is not serving; None when all is well."""
        return self._errors.get("active") or self._errors.get("trial")

    @property
    def degraded(self) -> bool:
        """Something is not as the registry says it should be: see ``last_error``."""
        return self.last_error is not None

    @property
    def reloads_failed(self) -> int:
        return self.load_failures["reload"]

    def _failed(self, stage: str, message: str, key: str = "active") -> None:
        log.error("model load failed (%s): %s", stage, message)
        self.load_failures[stage] += 1
        self._errors[key] = message

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def initialize(self) -> None:
        """Load the active version. With none on disk, train the built-in one (or fall back to rules); if it
        does not load, serve the newest version that does, else train the built-in one (or the rules)."""
        async with self._lock:
            try:
                self._models = await asyncio.to_thread(self._load_active)
                self._errors.pop("active", None)
            except NoModels as exc:
                if self.auto_train and self._trainer is not None:
                    log.info("no model in %s: training the built-in model", self.model_path)
                    await asyncio.to_thread(self._trainer, self.model_path)
                    self._models = await asyncio.to_thread(self._load_active)
                else:
                    self._set_fallback(str(exc))
            except Exception as exc:  # whatever the bad version raised: the service must come up
                self._failed_active = self._active_or_none()
                self._failed("startup", _why(exc))
                self._models = await asyncio.to_thread(self._load_last_good, _why(exc))
            self.initialized = True

    async def load_models(self) -> ModelSet:
        """Load the active version and serve it; raises (and keeps serving what it had) on failure."""
        async with self._lock:
            models = await asyncio.to_thread(self._load_active)
            self._models = models
            self._errors.pop("active", None)
            self.initialized = True
            return models

    async def reload_models(self) -> ReloadResult:
        """Load the active version aside, swap it in only if it passes; else keep serving and say why."""
        async with self._lock:
            old = self._models.version
            try:
                models = await asyncio.to_thread(self._load_active)
            except Exception as exc:  # any failure at all leaves the old set serving
                self._failed_active = self._active_or_none()
                result = ReloadResult(False, old, None, f"{_why(exc)} (still serving {old})")
                self._failed("reload", result.error or "")
            else:
                self._models = models  # one reference assignment: readers see the old set or the new one
                self._errors.pop("active", None)
                self._failed_active = None
                self.reloads_ok += 1
                result = ReloadResult(True, old, models.version)
                log.info("reloaded models: %s -> %s", old, models.version)
            self.last_reload = result
            return result

    async def follow_active(self, interval: float | None = None) -> None:
        """Serve whatever the registry's active pointer names, checking every ``interval`` seconds
        (default $ML_FOLLOW_SECONDS or 1): a promote, rollback or new training run on any process that
        shares the model directory reaches every replica without a restart. A version that fails to load
        is not retried until the pointer moves again; the old models keep serving meanwhile. Nothing it
        meets ends it: an unexpected error is logged and the next check runs. Runs until cancelled."""
        if interval is None:
            interval = EngineSettings.from_env().follow_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self._follow_once()
            except Exception:  # a bug must not silence the follower: every later promotion would be missed
                log.exception("following the model pointer failed; still serving %s", self._models.version)

    async def _follow_once(self) -> None:
        try:
            active = await asyncio.to_thread(self.registry.active_id)
        except RegistryError as exc:
            message = f"{exc} (still serving {self._models.version})"
            if self._errors.get("active") != message:  # once per distinct problem, not every second
                self._failed("pointer", message)
            return
        await self.sync_trial()
        if active == self._models.version:
            if self._errors.pop("active", None):  # the pointer is back on what serves
                log.info("the active pointer names the serving version %s again", active)
            self._failed_active = None
        elif active is not None and active != self._failed_active:
            await self.reload_models()

    async def sync_trial(self) -> None:
        """Load (or drop) the trial's candidate as the registry says; a candidate that fails to load is
        logged and not retried until the trial names another version."""
        try:
            trial = await asyncio.to_thread(self.registry.trial)
        except RegistryError as exc:
            if self._errors.get("trial") != str(exc):
                self._failed("trial", str(exc), key="trial")
            return
        if trial is None or trial["version"] == self._candidate_failed:
            if trial is None:
                self._errors.pop("trial", None)
            self.trial, self.candidate = None, None
            return
        if self.candidate is None or self.candidate.version != trial["version"]:
            try:
                version = self.registry.get(trial["version"])
                self.candidate = await asyncio.to_thread(load_model_set, version)
            except Exception as exc:  # any failure: no candidate, the active version answers everything
                why = f"trial candidate {trial['version']} does not load: {_why(exc)}"
                self._failed("trial", why, key="trial")
                self._candidate_failed, self.trial, self.candidate = trial["version"], None, None
                return
            self._errors.pop("trial", None)
        self.trial = trial

    def _load_active(self) -> ModelSet:
        return load_model_set(self.registry.active())

    def _active_or_none(self) -> str | None:
        try:
            return self.registry.active_id()
        except RegistryError:
            return None

    def _load_last_good(self, error: str) -> ModelSet:
        """The active version is broken: serve the newest other version that loads; with none, train the
        built-in model (or answer with the rules)."""
        active = self._active_or_none()
        try:
            versions = self.registry.list_versions()
        except OSError as exc:
            versions = []
            error = f"{error}; no other version could be listed: {exc}"
        for version in reversed(versions):
            if version.id == active:
                continue
            try:
                models = load_model_set(version)
            except Exception as exc:  # a second bad version: look further back
                log.warning("version %s does not load either: %s", version.id, _why(exc))
                continue
            log.warning("serving last good version %s instead of %s", version.id, active)
            return models
        if self.auto_train and self._trainer is not None:
            log.warning("no version loads: training the built-in model")
            try:
                self._trainer(self.model_path)
                return self._load_active()
            except Exception as exc:  # the rules answer rather than nothing
                error = f"{error}; training the built-in model failed: {_why(exc)}"
        reason = f"no loadable model ({error}); answering with keyword rules"
        self._errors["active"] = reason
        return _fallback_set(reason)

    def _set_fallback(self, reason: str) -> None:
        log.warning("serving the rule-based fallback: %s", reason)
        self._errors["active"] = reason
        self._models = _fallback_set(reason)

    # -- predictions --------------------------------------------------------------------------------------
    @property
    def models(self) -> ModelSet:
        return self._models

    def predict(self, text: str, candidate: bool = False) -> Prediction:
        """All three predictions from one feature pass, made by one consistent model set (the trial's
        candidate with ``candidate``)."""
        models = self.candidate if candidate else self._models
        if models is None:
            raise ModelLoadError("no trial candidate is loaded")
        return predict_text(models, text)

    def predict_many(self, texts: Sequence[str], top_actions: int | None = None) -> list[Prediction]:
        """Predictions for many texts (with the ``top_actions`` best actions, default all)."""
        return [p for chunk in self.predict_chunks(texts, top_actions) for p in chunk.predictions()]

    def predict_chunks(
        self, texts: Sequence[str], top_actions: int | None = None, chunk: int = BATCH_CHUNK
    ) -> Iterator[ScoredBatch]:
        """Predictions for many texts, a chunk at a time, all from one model set. While the caller works
        on one chunk, a worker thread scores the next (in C, without the GIL, on every core)."""
        models = self._models
        scorer = models.scorer
        if not texts:
            return
        # A small first chunk: the caller has nothing to do until it is scored.
        first = min(chunk, FIRST_CHUNK)
        parts = [list(texts[:first])]
        parts += [list(texts[i : i + chunk]) for i in range(first, len(texts), chunk)]
        if len(parts) <= 1:
            for part in parts:
                yield _scored(models, scorer, *scorer.calibrated(part), top=top_actions)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="oncall-score") as pool:
            pending = pool.submit(scorer.calibrated, parts[0])
            for following in [*parts[1:], None]:
                scored = pending.result()
                if following is not None:
                    pending = pool.submit(scorer.calibrated, following)
                yield _scored(models, scorer, *scored, top=top_actions)

    # -- the Model Integration Guide's API: coroutines over the synchronous scoring above, with no thread hop
    # (a prediction takes about 100 µs: handing it to a thread would cost more than it frees the loop)
    async def predict_incident_severity(self, text: str) -> tuple[str, float]:
        p = self.predict(text)
        return p.severity, p.severity_confidence

    async def predict_incident_category(self, text: str) -> tuple[str, float]:
        p = self.predict(text)
        return p.category, p.category_confidence

    async def recommend_action(self, text: str) -> tuple[str, float]:
        """The best action and its confidence."""
        return self.predict(text).actions[0]

    async def recommend_actions(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` best actions with their confidences, best first."""
        return self.predict(text).actions[:k]

    # The guide's model attributes, for "is it loaded?" checks: the object that serves that model (one
    # scorer compiled from all of them), None when it is not loaded. Serving never loads the scikit-learn
    # objects (pickles): NotebookMLService.load_models(trust_pickles=True) gives them to whoever trusts them.
    @property
    def incident_classifier(self) -> Any:
        return self._serving("incident_classifier")

    @property
    def action_recommender(self) -> Any:
        return self._serving("action_recommender")

    @property
    def text_vectorizer(self) -> Any:
        return self._serving("text_vectorizer")

    def _serving(self, name: str) -> Any:
        models = self._models
        return models.scorer if models.loaded.get(name) else None

    def explain(self, prediction: Prediction, top: int = 5) -> list[tuple[str, float]]:
        if prediction.scores is None:
            return []
        models = (
            self.candidate if self.candidate and prediction.model_version == self.candidate.version else None
        )
        return (models or self._models).scorer.explain(prediction.scores, prediction.severity, top)

    # -- introspection ------------------------------------------------------------------------------------
    @property
    def model_metadata(self) -> dict[str, dict[str, Any]]:
        models = self._models
        sets = measured(models.metadata)

        def held_out(label: str, key: str) -> tuple[float | None, str | None]:
            """The score on the first set that measured it (real rows come first) and what that set was."""
            for m in sets:
                part = m.metrics.get(label) or {}
                if part.get("n"):
                    return float(part[key]), f"{m.brief()} (n={part['n']})"
            return None, None

        scores = {
            "incident_classifier": held_out("severity", "accuracy"),
            "category_classifier": held_out("category", "accuracy"),
            "action_recommender": held_out("actions", "top3"),
            "text_vectorizer": (None, None),
        }
        return {
            name: {
                "loaded": models.loaded.get(name, False),
                "accuracy": scores[name][0],
                "measured_on": scores[name][1],
                "trained_at": models.metadata.get("trained_at"),
                "version": models.version,
            }
            for name in MODEL_NAMES
        }

    def health(self) -> dict[str, Any]:
        models = self._models
        if models.fallback:
            status = "fallback"
        elif self.last_error:
            status = "degraded"
        else:
            status = "ok"
        active = None
        try:
            active = self.registry.active_id()
        except RegistryError as exc:
            active = f"unreadable: {exc}"
        return {
            "status": status,
            "degraded": self.degraded,
            "ready": self.initialized,
            "serving_version": models.version,
            "active_version": active,
            "load_failures": dict(self.load_failures),
            "flat_layout": models.version == FLAT_VERSION,
            "scorer": models.scorer_kind,
            "loaded_at": models.loaded_at,
            "load_seconds": round(models.load_seconds, 4),
            "warnings": list(models.warnings),
            "last_error": self.last_error,
            "last_reload": None if self.last_reload is None else asdict(self.last_reload),
            "models": self.model_metadata,
            "quality": [
                {**m.to_dict(), "numbers": {name: {"value": v, "n": n} for name, v, n in m.numbers()}}
                for m in measured(models.metadata)
            ],
        }


def _scored(
    models: ModelSet,
    scorer: Any,
    sev: np.ndarray,
    cat: np.ndarray | None,
    acts: np.ndarray,
    top: int | None = None,
) -> ScoredBatch:
    """A batch from probability rows (with the ``top`` actions, default all); the argmax and the ranking
    are done for all rows at once."""
    n = sev.shape[0]
    rows = np.arange(n)
    sev_i = sev.argmax(axis=1)
    if cat is not None and len(scorer.category_classes):
        cat_i = cat.argmax(axis=1)
        categories = [scorer.category_classes[i] for i in cat_i.tolist()]
        cat_conf = cat[rows, cat_i].tolist()
    else:
        categories, cat_conf = ["unknown"] * n, [0.0] * n
    order = np.argsort(-acts, axis=1, kind="stable")[:, :top]
    ranked = np.take_along_axis(acts, order, axis=1).tolist()
    return ScoredBatch(
        models.version,
        models.fallback,
        [scorer.severity_classes[i] for i in sev_i.tolist()],
        sev[rows, sev_i].tolist(),
        categories,
        cat_conf,
        tuple(scorer.action_classes),
        order.tolist(),
        ranked,
    )
