"""MLService: consistency with training, hot reload, failed reloads, rollback, concurrency, fallback."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from engine.decision import AIDecisionEngine
from engine.fallback import FALLBACK_VERSION
from engine.incident import IncidentCreate
from engine.ml_service import MLService
from engine.probes import PROBE_TEXTS
from engine.registry import SERVING_FILE, IntegrityError, ModelRegistry
from engine.scorer import FusedScorer, dump_serving, serving_scorer
from tests.conftest import small_config
from training.dataset import LabeledIncident
from training.synthetic import generate_incidents
from training.train import fit_models, split_rows, train

TEXTS = [r.text for r in generate_incidents(60, seed=99)] + [
    "checkout is throwing 500s for everyone service:checkout",
    "",
    "x" * 5000,
    "ünïcödé 🚨 <!channel> service:payments",
]


def _probs(ml: MLService, text: str) -> np.ndarray:
    s = ml.predict(text).scores
    return np.concatenate([s.severity, s.category, s.actions])


def _service(path: Path) -> MLService:
    ml = MLService(path, auto_train=False)
    asyncio.run(ml.initialize())
    return ml


@pytest.mark.slow
def test_training_side_and_served_predictions_are_identical(tmp_path: Path) -> None:
    rows: list[LabeledIncident] = generate_incidents(1500, seed=5)
    train_rows, _ = split_rows(rows, 0.2, 5)
    models = fit_models(train_rows, small_config(5))
    fused = serving_scorer(models.scorer(), PROBE_TEXTS)[0]
    assert isinstance(fused, FusedScorer)
    registry = ModelRegistry(tmp_path)
    version = registry.write_version(models.artifacts(), {"trained_at": "now"}, dump_serving(fused))
    registry.promote(version.id)
    ml = _service(tmp_path)  # serves the artifact: no scikit-learn object is loaded
    assert ml.models.version == version.id and ml.models.scorer_kind == "fused"
    reference = models.scorer().score_many(TEXTS)  # the objects training produced, before any save
    for text, expected in zip(TEXTS, reference, strict=True):
        served = ml.predict(text).scores
        np.testing.assert_allclose(served.severity, expected.severity, rtol=0, atol=1e-9)
        np.testing.assert_allclose(served.category, expected.category, rtol=0, atol=1e-9)
        np.testing.assert_allclose(served.actions, expected.actions, rtol=0, atol=1e-9)
    batch = ml.predict_many(TEXTS)
    assert [p.severity for p in batch] == [ml.predict(t).severity for t in TEXTS]


def test_failed_reload_keeps_the_old_version_serving(models_dir: Path, registry_two_versions) -> None:
    _, first, second = registry_two_versions
    ml = _service(models_dir)
    before = [_probs(ml, t) for t in TEXTS[:5]]
    registry = ModelRegistry(models_dir)
    registry.promote(first.version)
    victim = registry.get(first.version).path / SERVING_FILE
    victim.write_bytes(victim.read_bytes()[:100])  # truncated, as a crashed copy would leave it
    result = asyncio.run(ml.reload_models())
    assert not result.ok and result.old_version == second.version and result.new_version is None
    assert "sha256" in result.error and f"still serving {second.version}" in result.error
    assert ml.models.version == second.version
    assert all(np.array_equal(b, _probs(ml, t)) for b, t in zip(before, TEXTS[:5], strict=True))
    assert ml.health()["status"] == "degraded" and ml.health()["last_reload"]["ok"] is False


def test_rollback_restores_the_previous_versions_predictions(models_dir: Path, registry_two_versions) -> None:
    _, first, second = registry_two_versions
    ml = _service(models_dir)
    registry = ModelRegistry(models_dir)
    registry.rollback()
    assert asyncio.run(ml.reload_models()).new_version == first.version
    on_first = [_probs(ml, t) for t in TEXTS]
    registry.promote(second.version)
    asyncio.run(ml.reload_models())
    on_second = [_probs(ml, t) for t in TEXTS]
    assert any(not np.allclose(a, b) for a, b in zip(on_first, on_second, strict=True)), (
        "versions must differ"
    )
    registry.rollback()
    result = asyncio.run(ml.reload_models())
    assert result.ok and result.old_version == second.version and result.new_version == first.version
    assert all(np.array_equal(a, _probs(ml, t)) for a, t in zip(on_first, TEXTS, strict=True))


def test_reload_while_predicting_concurrently_never_raises(models_dir: Path, registry_two_versions) -> None:
    _, first, second = registry_two_versions
    ml = _service(models_dir)
    registry = ModelRegistry(models_dir)
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def predict_forever() -> None:
        i = 0
        while not stop.is_set():
            try:
                p = ml.predict(TEXTS[i % len(TEXTS)])
                seen.add(p.model_version)
                assert p.severity in ("critical", "high", "medium", "low")
                assert abs(sum(p.scores.severity) - 1) < 1e-9
            except BaseException as exc:  # the point of the test: record anything at all
                errors.append(exc)
            i += 1

    workers = [threading.Thread(target=predict_forever) for _ in range(3)]
    for w in workers:
        w.start()

    async def flip() -> list[bool]:
        results = []
        for i in range(6):
            registry.promote(first.version if i % 2 == 0 else second.version)
            results.append((await ml.reload_models()).ok)
        return results

    try:
        oks = asyncio.run(flip())
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert errors == []
    assert all(oks)
    assert seen == {first.version, second.version}


def test_no_model_and_no_auto_training_answers_with_the_labeled_fallback(tmp_path: Path) -> None:
    ml = _service(tmp_path / "empty")
    p = ml.predict("database is down for all users service:payments")
    assert p.model_version == FALLBACK_VERSION and p.fallback
    assert ml.health()["status"] == "fallback" and "oncall train" in ml.health()["last_error"]
    decision = AIDecisionEngine(ml).analyze(
        IncidentCreate("database is down for all users", service="payments")
    )
    assert decision.uncertain and decision.fallback and decision.model_version == FALLBACK_VERSION
    assert decision.severity == "critical" and decision.category == "database"


@pytest.mark.slow
def test_initialize_trains_the_builtin_model_when_the_directory_is_empty(tmp_path: Path) -> None:
    trained: list[str] = []

    def trainer(path: Path) -> str:
        version = train(small_config(3), path).version
        trained.append(version)
        return version

    ml = MLService(tmp_path / "models", trainer=trainer)
    asyncio.run(ml.initialize())
    assert trained and ml.models.version == trained[0] and not ml.models.fallback
    assert ml.health()["status"] == "ok"
    assert all(meta["loaded"] for name, meta in ml.model_metadata.items())


def test_a_broken_active_version_serves_the_last_good_one(models_dir: Path, registry_two_versions) -> None:
    first = registry_two_versions[1]
    active = ModelRegistry(models_dir).active()
    (active.path / SERVING_FILE).write_bytes(b"not an artifact")
    ml = _service(models_dir)
    assert ml.models.version == first.version
    assert ml.health()["status"] == "degraded" and "sha256" in ml.health()["last_error"]
    with pytest.raises(IntegrityError):
        asyncio.run(ml.load_models())
    assert ml.models.version == first.version


def test_decision_carries_three_actions_confidence_and_an_explanation(registry_two_versions) -> None:
    root, _, second = registry_two_versions
    engine = AIDecisionEngine(MLService(root, auto_train=False), uncertain_below=0.999)
    asyncio.run(engine.start())
    incident = IncidentCreate(
        "[FIRING:3] HighErrorRate payments (critical)",
        "error rate 38% for 14m on payments-7f9c in us-east-1, deployed v2.14.3 10 minutes ago",
        "payments",
    )
    d = engine.analyze(incident)
    assert d.model_version == second.version and not d.fallback
    assert (
        len(d.actions) == 3 and d.actions[0].confidence >= d.actions[1].confidence >= d.actions[2].confidence
    )
    assert d.explanation and all(isinstance(t, str) for t in d.explanation)
    assert d.severity_uncertain and d.category_uncertain, "a confidence below the threshold is flagged"
    assert d.uncertain and d.to_dict()["uncertain"]
    # The guide's coroutines give what the bot's synchronous decision says.
    assert asyncio.run(engine.predict_incident_category(incident)) == (d.category, d.category_confidence)
    assert asyncio.run(engine._recommend_action_types(incident)) == [a.action for a in d.actions]
    assert asyncio.run(engine.ml.predict_incident_severity(incident.text)) == (
        d.severity,
        d.severity_confidence,
    )
    assert asyncio.run(engine.ml.recommend_action(incident.text)) == (
        d.actions[0].action,
        d.actions[0].confidence,
    )
    # ... without a thread hop: the coroutine is done at its first step, it never yields to the event loop.
    with pytest.raises(StopIteration) as done:
        engine.ml.predict_incident_severity(incident.text).send(None)
    assert done.value.value == (d.severity, d.severity_confidence)


def test_a_large_batch_decides_exactly_as_one_alert_at_a_time(registry_two_versions) -> None:
    """The batch path (scored in C on several threads, in chunks, pipelined) against analyze()."""
    root = registry_two_versions[0]
    engine = AIDecisionEngine(_service(root))
    incidents = [IncidentCreate(r.title, r.description, r.service) for r in generate_incidents(8300, seed=8)]
    incidents += [IncidentCreate("", "", ""), IncidentCreate("x" * 9000, "ünïcödé 🚨", "payments")]
    batch = engine.analyze_many(incidents)
    assert len(batch) == len(incidents)
    flags = {(d.severity_uncertain, d.category_uncertain) for d in batch}
    assert {(True, False), (False, True)} <= flags  # each field is flagged on its own confidence
    for incident, got in zip(incidents, batch, strict=True):
        one = engine.analyze(incident)
        assert (got.severity, got.category, got.model_version) == (
            one.severity,
            one.category,
            one.model_version,
        )
        assert (got.severity_uncertain, got.category_uncertain) == (
            one.severity_uncertain,
            one.category_uncertain,
        )
        assert got.severity_confidence == pytest.approx(one.severity_confidence, abs=1e-12)
        assert [a.action for a in got.actions] == [a.action for a in one.actions]
        assert [a.confidence for a in got.actions] == pytest.approx(
            [a.confidence for a in one.actions], abs=1e-12
        )


def test_batches_scored_at_once_from_many_threads_agree_with_one_text_at_a_time(
    registry_two_versions,
) -> None:
    """Batch threads keep their scratch (with the character n-grams of the words they met) for the next
    batch, and take texts from a shared cursor: neither may mix two texts or two callers up."""
    features = _service(registry_two_versions[0]).models.scorer.features
    texts = [r.text for r in generate_incidents(1500, seed=12)] + ["", "ünïcödé 🚨 " * 700, "x" * 9000]
    first = features.scores(texts)  # cold scratch
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(lambda _: features.scores(texts), range(8)))
    for scores in again:
        assert np.array_equal(scores, first)
    for i in range(0, len(texts), 37):
        assert np.array_equal(features.row_and_scores(texts[i])[2], first[i])


def test_replicas_follow_the_active_pointer_and_keep_serving_through_a_bad_version(
    models_dir: Path, registry_two_versions
) -> None:
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)

    async def run() -> None:
        replicas = [MLService(models_dir, auto_train=False) for _ in range(2)]
        for ml in replicas:
            await ml.initialize()
        followers = [asyncio.create_task(ml.follow_active(0.05)) for ml in replicas]

        async def all_serve(version: str) -> None:
            deadline = time.monotonic() + 5
            while any(ml.models.version != version for ml in replicas):
                assert time.monotonic() < deadline, f"not every replica serves {version} within 5 s"
                await asyncio.sleep(0.02)

        try:
            await all_serve(second.version)
            registry.promote(first.version)  # as `oncall models promote` would, from another process
            await all_serve(first.version)
            broken = registry.get(second.version).path / SERVING_FILE
            broken.write_bytes(b"not a model")
            registry.promote(second.version)
            await asyncio.sleep(0.5)
            assert all(ml.models.version == first.version and "sha256" in ml.last_error for ml in replicas)
            assert all(ml.degraded and ml.load_failures["reload"] == 1 for ml in replicas), "tried once"
            registry.rollback()  # the pointer moves back to what serves: nothing is wrong any more
            await all_serve(first.version)
            await asyncio.sleep(0.2)
            assert all(ml.last_error is None and not ml.degraded for ml in replicas)
            assert not any(task.done() for task in followers)
        finally:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

    asyncio.run(run())
