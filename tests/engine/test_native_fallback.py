"""The C scorer is an accelerator: without it (no compiler at install, or ONCALL_NATIVE=0) the same code in
NumPy (engine/_native_py.py) trains the same models and serves the same decisions, reading the versions
the other wrote. tests/engine/test_native.py runs the checks against scikit-learn on both implementations."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import engine
from engine import _native_py, native
from engine.decision import AIDecisionEngine
from engine.incident import IncidentCreate
from engine.ml_service import MLService, compile_pickles, load_model_set, reference_scorer
from engine.probes import PROBE_TEXTS
from engine.registry import ModelRegistry
from engine.scorer import FusedScorer, load_serving, verify_scorer
from engine.services import service_tier
from tests.conftest import small_config
from tests.native_impls import C, implementation
from training.synthetic import generate_incidents
from training.train import train

pytestmark = pytest.mark.slow  # trains with each implementation

REPO = Path(__file__).resolve().parents[2]
INCIDENTS = [IncidentCreate(r.title, r.description, r.service) for r in generate_incidents(120, seed=31)] + [
    IncidentCreate("", "", None),
    IncidentCreate("KubePodCrashLooping", "ÜBER-Straße 🚨 İstanbul ΟΔΟΣ 1/6 ready for 45 min", "payments"),
    IncidentCreate("x" * 9000, "ünïcödé 🚨 " * 300, "checkout"),
]
TEXTS = [i.text for i in INCIDENTS]


@pytest.fixture(scope="module")
def c_impl() -> ModuleType:
    if C is None:
        if os.environ.get("CI"):
            pytest.fail("engine._native is not built: CI tests the C extension as well as NumPy")
        pytest.skip("engine._native is not built (no C compiler): nothing to compare NumPy with")
    return C


@pytest.fixture(scope="module")
def trained(c_impl: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same small model trained with each implementation, each in a model directory of its own."""
    roots = {}
    for impl in (c_impl, _native_py):
        root = tmp_path_factory.mktemp(impl.__name__.replace(".", "-"))
        with implementation(impl):
            train(small_config(7, samples=400), root)
        roots[impl.__name__] = root
    return roots


def _served(root: Path, impl: ModuleType) -> tuple[MLService, AIDecisionEngine]:
    with implementation(impl):  # the featurizer is compiled as the version loads
        ml = MLService(root, auto_train=False)
        asyncio.run(ml.initialize())
    assert ml.models.scorer_kind == "fused"
    assert isinstance(ml.models.scorer.features._native, impl.Featurizer)
    return ml, AIDecisionEngine(ml)


def _probabilities(ml: MLService, texts: list[str]) -> np.ndarray:
    sev, cat, acts = ml.models.scorer.calibrated(texts)
    return np.hstack([sev, cat, acts])


def test_a_model_trained_without_c_equals_the_one_trained_with_it(trained: dict[str, Path], c_impl) -> None:
    """Same data, same seed: the same vocabularies and idf, and the same probabilities to 1e-6 (in fact
    to the last bit: the training matrices are equal bit for bit), before saving and once served."""
    with_c = ModelRegistry(trained[c_impl.__name__]).active()
    without = ModelRegistry(trained[_native_py.__name__]).active()
    probe_c, probe_py = with_c.metadata["probe"], without.metadata["probe"]  # recorded at training
    assert probe_c.keys() == probe_py.keys() and probe_c["texts"] == probe_py["texts"] == list(PROBE_TEXTS)
    for key in probe_c.keys() - {"texts"}:
        np.testing.assert_allclose(probe_py[key], probe_c[key], rtol=0, atol=1e-6)
    objects_c, _ = with_c.load_pickles(trust=True)
    objects_py, _ = without.load_pickles(trust=True)
    ref_c, ref_py = reference_scorer(objects_c), reference_scorer(objects_py)
    for block_c, block_py in zip(
        ref_c.vectorizer.steps[-1][1].transformer_list,
        ref_py.vectorizer.steps[-1][1].transformer_list,
        strict=True,
    ):
        inner_c, inner_py = (
            b[1].steps[-1][1] if hasattr(b[1], "steps") else b[1] for b in (block_c, block_py)
        )
        if hasattr(inner_c, "vocabulary_"):
            assert inner_c.vocabulary_ == inner_py.vocabulary_
            assert np.array_equal(inner_c.idf_, inner_py.idf_)
    texts = [*PROBE_TEXTS, *TEXTS]
    for got, want in zip(ref_py.calibrated(texts), ref_c.calibrated(texts), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    served_c, _ = _served(trained[c_impl.__name__], c_impl)
    served_py, _ = _served(trained[_native_py.__name__], _native_py)
    np.testing.assert_allclose(
        _probabilities(served_py, texts), _probabilities(served_c, texts), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("direction", ["c-to-numpy", "numpy-to-c"])
def test_a_version_saved_by_one_implementation_loads_and_serves_in_the_other(
    trained: dict[str, Path], c_impl: ModuleType, direction: str
) -> None:
    """The other implementation loads the version (its probe check against the probabilities recorded at
    training included), reproduces the scikit-learn objects on the probes, and decides as the one that
    trained it, one alert at a time and in batches."""
    writer, reader = (c_impl, _native_py) if direction == "c-to-numpy" else (_native_py, c_impl)
    root = trained[writer.__name__]
    version = ModelRegistry(root).active()
    with implementation(reader):
        load_model_set(version)  # raises unless the recorded probe probabilities come out
        objects, _ = version.load_pickles(trust=True)
        compiled = compile_pickles(version, objects)  # compiled from the objects, checked on the probes
        assert verify_scorer(compiled, reference_scorer(objects), TEXTS) < 1e-9
    _, by_writer = _served(root, writer)
    ml, by_reader = _served(root, reader)
    assert ml.models.version == version.id
    for incident in INCIDENTS:
        want, got = by_writer.analyze(incident), by_reader.analyze(incident)
        assert (got.severity, got.category, got.model_version, got.explanation) == (
            want.severity,
            want.category,
            want.model_version,
            want.explanation,
        )
        assert got.severity_confidence == pytest.approx(want.severity_confidence, abs=1e-6)
        assert got.category_confidence == pytest.approx(want.category_confidence, abs=1e-6)
        assert [(a.action, pytest.approx(a.confidence, abs=1e-6)) for a in got.actions] == [
            (a.action, a.confidence) for a in want.actions
        ]
    batch_want, batch_got = by_writer.analyze_many(INCIDENTS), by_reader.analyze_many(INCIDENTS)
    for want, got, one in zip(batch_want, batch_got, (by_reader.analyze(i) for i in INCIDENTS), strict=True):
        assert (got.severity, got.category, [a.action for a in got.actions]) == (
            want.severity,
            want.category,
            [a.action for a in want.actions],
        )
        assert (got.severity, got.severity_confidence) == (
            one.severity,
            pytest.approx(one.severity_confidence),
        )
        assert got.severity_confidence == pytest.approx(want.severity_confidence, abs=1e-6)


@pytest.fixture(scope="module")
def scorers(trained: dict[str, Path], c_impl: ModuleType) -> tuple[FusedScorer, FusedScorer]:
    """One serving artifact read by each implementation."""
    data = ModelRegistry(trained[c_impl.__name__]).active().serving_bytes()
    with implementation(c_impl):
        with_c = load_serving(data)
    with implementation(_native_py):
        without = load_serving(data)
    return with_c, without


_WORDS = [
    "checkout",
    "500s",
    "error",
    "rate",
    "p99",
    "latency",
    "disk",
    "97%",
    "1/6",
    "45min",
    "service:payments",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=12)), max_size=40).map(" ".join))
@example("")
@example("ÜBER-Straße 🚨 İstanbul ΟΔΟΣ KubeAPIDown checkout_api 12,000 x" * 20)
def test_rows_and_raw_scores_are_the_same_to_the_last_bit(scorers: tuple, text: str) -> None:
    """Terms counted in C's order, squares and products added in C's order: not close, equal."""
    with_c, without = scorers
    for got, want in zip(
        without.features.row_and_scores(text), with_c.features.row_and_scores(text), strict=True
    ):
        assert np.array_equal(got, want)
    assert np.array_equal(without.features.scores([text, text[:7]]), with_c.features.scores([text, text[:7]]))
    assert (without.features.matrix([text]) != with_c.features.matrix([text])).nnz == 0


def test_both_refuse_a_vocabulary_whose_terms_share_a_hash_and_hash_alike() -> None:
    """The vocabulary is hashed as C hashes it (its refusals are the same); a known FNV-1a value."""
    keys = _native_py.term_keys(["", "a", "ab", "\U0001f6a8x", "a"])
    assert keys[1] == keys[4] and len(set(keys[:4].tolist())) == 4
    fnv = (0xCBF29CE484222325 ^ ord("a")) * 0x100000001B3 % 2**64  # FNV-1a of "a" before the finalizer
    h = fnv
    for shift, mul in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53), (33, None)):
        h ^= h >> shift
        h = h * mul % 2**64 if mul else h
    assert int(keys[1]) == h


def test_the_slow_path_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_native_py, "_reason", "ONCALL_NATIVE=0")
    monkeypatch.setattr(_native_py, "_announced", False)
    with caplog.at_level(logging.WARNING, logger="engine.native"):
        for _ in range(3):
            _native_py.numeric_features("disk 97%", "disk 97%", service_tier, ())
            _native_py.Featurizer([], None, None, 0, 1, service_tier, ())
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "ONCALL_NATIVE=0" in caplog.records[0].getMessage()


def test_oncall_native_chooses_the_implementation(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native.select("0") == (_native_py, "ONCALL_NATIVE=0")
    with pytest.raises(ValueError, match="ONCALL_NATIVE must be 0"):
        native.select("yes")
    if C is not None:
        assert native.select(None) == (C, None) and native.select("1") == (C, None)
    monkeypatch.delattr(engine, "_native", raising=False)
    monkeypatch.setitem(sys.modules, "engine._native", None)  # as if it were not built
    impl, reason = native.select(None)
    assert impl is _native_py and "cannot be imported" in str(reason)
    with pytest.raises(ImportError):
        native.select("1")
    # imported before the CLI checks its settings: a wrong value is no crash (bot/settings.py refuses it)
    ignored = _python("from engine import native; print(native.impl.__name__)", [], REPO, ONCALL_NATIVE="yes")
    assert ignored.returncode == 0 and "ONCALL_NATIVE must be 0" in ignored.stderr
    assert ignored.stdout.strip() == ("engine._native" if C is not None else "engine._native_py")


# The program a subprocess runs: engine and training import, and a trained version serves an alert.
_SERVE = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
import engine, engine.ml_service, engine.scorer, training.train
from engine import native
from engine.decision import AIDecisionEngine
from engine.incident import IncidentCreate
from engine.ml_service import MLService
import asyncio
ml = MLService(sys.argv[1], auto_train=False)
asyncio.run(ml.initialize())
decide = AIDecisionEngine(ml)
one = decide.analyze(IncidentCreate("error rate 35% on checkout", "p99 9s", "checkout"))
many = decide.analyze_many([IncidentCreate("disk 97% full", "", "backup")] * 3)
print(json.dumps({
    "engine": engine.__file__, "impl": native.impl.__name__, "reason": native.reason,
    "c_loaded": "engine._native" in sys.modules, "severity": one.severity,
    "confidence": one.severity_confidence, "batch": [d.severity for d in many],
}))
"""


# An editable install (this checkout's) finds engine._native in the checkout whatever the copy lacks:
# without its finder, the copy is what an install without the compiled module has.
_NO_EDITABLE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", type(f).__name__)]
"""


def _python(script: str, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c script args`` in ``cwd`` (first on sys.path: PYTHONSAFEPATH is dropped), ``env`` added."""
    environment = {k: v for k, v in os.environ.items() if k not in ("ONCALL_NATIVE", "PYTHONSAFEPATH")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _run(script: str, args: list[str], cwd: Path, **env: str) -> tuple[dict, str]:
    done = _python(script, args, cwd, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _slow_path_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "C scorer is not in use" in line]


def test_oncall_native_0_serves_without_loading_the_extension(registry_two_versions) -> None:
    root = registry_two_versions[0]
    out, stderr = _run(_SERVE, [str(root)], REPO, ONCALL_NATIVE="0")
    assert out["impl"] == "engine._native_py" and out["reason"] == "ONCALL_NATIVE=0"
    assert not out["c_loaded"]
    assert [line.split(":")[0] for line in _slow_path_lines(stderr)] == ["WARNING"]
    if C is not None:  # and it decides as the extension does
        with_c, stderr = _run(_SERVE, [str(root)], REPO)
        assert with_c["impl"] == "engine._native" and with_c["c_loaded"] and not _slow_path_lines(stderr)
        assert (out["severity"], out["batch"]) == (with_c["severity"], with_c["batch"])
        assert out["confidence"] == pytest.approx(with_c["confidence"], abs=1e-6)


def test_engine_and_training_import_and_serve_where_the_extension_was_never_built(
    registry_two_versions, tmp_path: Path
) -> None:
    """A copy of the packages without the compiled module (as an install whose compiler failed): engine and
    training import, the version serves, and one WARNING says the slow path is in use."""
    shutil.copytree(
        REPO / "engine",
        tmp_path / "engine",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"),
    )
    shutil.copytree(REPO / "training", tmp_path / "training", ignore=shutil.ignore_patterns("__pycache__"))
    assert not list((tmp_path / "engine").glob("_native.*"))
    out, stderr = _run(_NO_EDITABLE + _SERVE, [str(registry_two_versions[0])], tmp_path)
    assert Path(out["engine"]).resolve().parent == (tmp_path / "engine").resolve()
    assert out["impl"] == "engine._native_py" and "cannot be imported" in out["reason"]
    assert not out["c_loaded"]
    assert len(_slow_path_lines(stderr)) == 1
    assert out["severity"] in ("low", "medium", "high", "critical")
    required = _python(_NO_EDITABLE + "import engine.scorer", [], tmp_path, ONCALL_NATIVE="1")
    assert required.returncode != 0 and "ImportError" in required.stderr  # ONCALL_NATIVE=1 requires C
