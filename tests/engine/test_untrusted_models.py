"""Model files that cannot run code: serving reads only serving.npz (arrays and JSON), and the joblib files
beside it are unpickled only under explicit trust or a valid signature. The attack of issue 18 (a pickle
whose sha256 is rewritten in metadata.json) reaches no command and no service; a failed load of any kind
leaves the good version serving and says why; old versions and the guide's flat folder come in only by an
explicit `oncall models convert|import --trust-pickles`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import pickle
import shutil
import time
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest

from engine.doctor import run_checks
from engine.ml_service import MLService, load_model_set, reference_scorer
from engine.registry import (
    ACTIONS_FILE,
    KEY_FILE_VAR,
    KEY_VAR,
    REQUIRED_FILES,
    SERVING_FILE,
    VECTORIZER_FILE,
    ModelRegistry,
    RegistryError,
    UntrustedPickles,
    model_key,
    sha256_file,
)
from engine.scorer import ArtifactError, compile_scorer, load_serving
from tests.conftest import small_config
from tests.engine.test_ml_service import TEXTS
from tests.engine.test_model_faults import oncall, one_line_error
from training import NotebookMLService
from training.train import train

KEY = "0123456789abcdef-test-signing-key"


class Exploit:
    """What a malicious pickle does: run code on load. Here the code only creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def plant(version_dir: Path, name: str, payload: bytes) -> None:
    """Replace one artifact and rewrite its sha256 in metadata.json, as anyone who can write the directory
    can."""
    (version_dir / name).write_bytes(payload)
    meta_path = version_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["artifacts"][name]["sha256"] = sha256_file(version_dir / name)
    meta_path.write_text(json.dumps(meta))


def npz_holding_a_pickle(marker: Path) -> bytes:
    """A real .npz whose member is an object array: numpy would unpickle it if allowed."""
    out = io.BytesIO()
    np.savez(out, spec=np.array([Exploit(marker)], dtype=object))
    return out.getvalue()


def _service(path: Path) -> MLService:
    ml = MLService(path, auto_train=False)
    asyncio.run(ml.initialize())
    return ml


@pytest.mark.parametrize("payload", ["pickle", "npz-with-a-pickle"])
def test_a_malicious_serving_artifact_with_a_rewritten_checksum_never_runs(
    models_dir: Path, registry_two_versions, tmp_path: Path, payload: str
) -> None:
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)
    marker = tmp_path / "pwned"
    evil = registry.versions_dir / "zz-evil"
    shutil.copytree(registry.versions_dir / first.version, evil)
    planted = pickle.dumps(Exploit(marker)) if payload == "pickle" else npz_holding_a_pickle(marker)
    plant(evil, SERVING_FILE, planted)
    why = f"model zz-evil's {SERVING_FILE} is unusable"

    promote = oncall("models", "promote", "zz-evil", "--force", "--model-path", models_dir)
    assert why in one_line_error(promote) and registry.active_id() == second.version
    verify = oncall("models", "verify", "--model-path", models_dir)
    assert verify.returncode == 1 and f"BAD      zz-evil: {SERVING_FILE} is unusable" in verify.stdout
    ml = _service(models_dir)
    registry.promote("zz-evil")  # the pointer moved by hand, as an attacker (or a slash command) could
    result = asyncio.run(ml.reload_models())
    assert not result.ok and why in (result.error or "") and ml.models.version == second.version
    assert ml.degraded and why in (ml.last_error or "") and ml.load_failures["reload"] == 1
    restarted = _service(models_dir)  # start-up with the pointer on it: the newest good version serves
    health = restarted.health()
    assert (health["serving_version"], health["active_version"]) == (second.version, "zz-evil")
    assert health["status"] == "degraded" and why in health["last_error"]
    assert restarted.predict("checkout 5xx at 40%").model_version == second.version
    assert not marker.exists(), "the planted pickle ran"


def test_a_malicious_joblib_file_is_never_unpickled_by_any_command(
    models_dir: Path, registry_two_versions, tmp_path: Path
) -> None:
    """The joblib files are the guide's, and no command or service reads them: with a planted pickle in the
    active version, everything works from its serving artifact and the marker never appears."""
    _, first, _ = registry_two_versions
    registry = ModelRegistry(models_dir)
    marker = tmp_path / "pwned"
    plant(registry.versions_dir / first.version, VECTORIZER_FILE, pickle.dumps(Exploit(marker)))
    data = tmp_path / "labeled.jsonl"
    data.write_text(json.dumps({"title": "disk 97% on db-prod-3", "severity": "high"}) + "\n")
    for command in (
        ("models", "promote", first.version, "--force"),
        ("models", "verify"),
        ("models", "list"),
        ("models", "status"),
        ("doctor",),
        ("predict", "disk 97% on db-prod-3"),
        ("evaluate", "--data", data),
    ):
        result = oncall(*command, "--model-path", models_dir)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    ml = _service(models_dir)
    assert ml.models.version == first.version and ml.health()["status"] == "ok"
    with pytest.raises(UntrustedPickles, match="--trust-pickles"):
        registry.get(first.version).load_pickles()  # asked for without trust: refused, not run
    service = NotebookMLService(models_dir)
    service.load_or_train_models()  # the guide's call: predictions, no scikit-learn objects
    assert service.version == first.version and service.text_vectorizer is None
    assert not marker.exists(), "the planted pickle ran"


def test_serving_and_every_check_run_without_unpickling_anything(
    models_dir: Path, registry_two_versions, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, first, second = registry_two_versions

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("something was unpickled")

    for module, name in ((pickle, "loads"), (pickle, "load"), (joblib, "load")):
        monkeypatch.setattr(module, name, refuse)
    registry = ModelRegistry(models_dir)
    ml = _service(models_dir)
    registry.start_trial(first.version, "shadow")
    asyncio.run(ml.sync_trial())
    assert ml.candidate is not None and ml.candidate.version == first.version
    registry.end_trial()
    registry.promote(first.version)
    assert asyncio.run(ml.reload_models()).ok and ml.predict(TEXTS[0]).model_version == first.version
    assert all(c.ok for c in run_checks(models_dir))
    assert all(c.verdict == "ok" for c in registry.check_all())
    service = NotebookMLService(models_dir)
    service.load_models()
    assert service.incident_classifier is None
    for text in TEXTS:
        notebook, served = service.predict(text), ml.predict(text)
        assert notebook.severity_confidence == served.severity_confidence
        assert notebook.actions == served.actions
    registry.rollback()
    assert asyncio.run(ml.reload_models()).new_version == second.version


def test_the_serving_artifact_is_the_fused_scorer_exactly(registry_two_versions) -> None:
    version = ModelRegistry(registry_two_versions[0]).active()
    objects, _ = version.load_pickles(trust=True)
    reference = reference_scorer(objects)
    compiled = compile_scorer(reference.vectorizer, reference.severity, reference.category, reference.actions)
    served = load_serving(version.serving_bytes())  # what training wrote beside the objects
    for text in TEXTS:
        want, got = compiled.score(text), served.score(text)
        assert np.array_equal(want.severity, got.severity) and np.array_equal(want.actions, got.actions)
        assert np.array_equal(want.category, got.category)
        severity = compiled.severity_classes[int(want.severity.argmax())]
        assert served.explain(got, severity) == compiled.explain(want, severity)
    batch_want, batch_got = compiled.calibrated(TEXTS), served.calibrated(TEXTS)
    assert all(np.array_equal(a, b) for a, b in zip(batch_want, batch_got, strict=True))


def test_anything_but_a_stored_npz_of_plain_arrays_is_refused(registry_two_versions, tmp_path: Path) -> None:
    good = ModelRegistry(registry_two_versions[0]).active().serving_bytes()
    marker = tmp_path / "pwned"
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    arrays = dict(np.load(io.BytesIO(good), allow_pickle=False))
    doc = json.loads(arrays["spec"].tobytes())
    cases = {
        "a pickle": (pickle.dumps(Exploit(marker)), "not an .npz"),
        "an object array": (npz_holding_a_pickle(marker), "allow_pickle=False"),
        "deflated members": (deflated.getvalue(), "compressed members"),
        "another format": (_npz(arrays, {**doc, "format": 99}), "format 99"),
        "weights too short": (_npz({**arrays, "weights": arrays["weights"][:-1]}, doc), "weight rows"),
        "unknown number rules": (
            _npz(arrays, {**doc, "features": {**doc["features"], "number_rules": 3}}),
            "number rules 3",
        ),
        "number rules as text": (
            _npz(arrays, {**doc, "features": {**doc["features"], "number_rules": "2"}}),
            "number rules '2'",
        ),
        "columns outside the weights": (
            _npz(arrays, {**doc, "severity": {**doc["severity"], "cols": [0, 10_000]}}),
            "severity",
        ),
    }
    for case, (data, why) in cases.items():
        with pytest.raises(ArtifactError, match=why):
            load_serving(data)
        assert not marker.exists(), case


def _npz(arrays: dict[str, np.ndarray], doc: dict[str, object]) -> bytes:
    out = io.BytesIO()
    spec = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    np.savez(out, **{**arrays, "spec": spec})
    return out.getvalue()


@pytest.mark.slow
def test_a_signed_version_loads_its_pickles_only_with_the_right_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "models"
    monkeypatch.setenv(KEY_VAR, KEY)
    version = ModelRegistry(root).get(train(small_config(4, samples=300), root).version)
    assert version.signed_with(KEY.encode()) and not version.signed_with(b"another key of 16+ bytes")
    [check] = [c for c in ModelRegistry(root).check_all(KEY.encode()) if c.name == version.id]
    assert check.verdict == "ok" and "signed" in check.detail
    signed = NotebookMLService(root)
    signed.load_models()  # no flag: the signature vouches for the files
    assert signed.incident_classifier is not None and signed.text_vectorizer is not None

    monkeypatch.setenv(KEY_VAR, "not-the-key-that-signed-them")
    other = NotebookMLService(root)
    other.load_models()
    assert other.incident_classifier is None, "another key's signature is no signature"
    monkeypatch.delenv(KEY_VAR)

    marker = tmp_path / "pwned"
    plant(version.path, ACTIONS_FILE, pickle.dumps(Exploit(marker)))  # checksum matches, signature does not
    tampered = ModelRegistry(root).get(version.id)
    with pytest.raises(UntrustedPickles):
        tampered.load_pickles(key=KEY.encode())
    [check] = [c for c in ModelRegistry(root).check_all(KEY.encode()) if c.name == version.id]
    assert check.verdict == "BAD" and "signature" in check.detail
    monkeypatch.setenv(KEY_VAR, KEY)
    after = NotebookMLService(root)
    after.load_models()
    assert after.incident_classifier is None and not marker.exists()
    assert load_model_set(tampered).version == version.id, "serving never needed the pickles"


def test_the_key_file_must_live_outside_the_model_directory_and_be_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.delenv(KEY_VAR, raising=False)
    assert model_key(root) is None
    inside, outside = root / "key", tmp_path / "secrets" / "key"
    outside.parent.mkdir()
    for path in (inside, outside):
        path.write_text(KEY + "\n")
        path.chmod(0o600)
    monkeypatch.setenv(KEY_FILE_VAR, str(inside))
    with pytest.raises(RegistryError, match="inside the model directory"):
        model_key(root)
    monkeypatch.setenv(KEY_FILE_VAR, str(outside))
    assert model_key(root) == KEY.encode()
    outside.chmod(0o644)
    with pytest.raises(RegistryError, match=f"chmod 600 {outside}"):
        model_key(root)
    monkeypatch.setenv(KEY_VAR, "short")
    with pytest.raises(RegistryError, match="shorter than 16 bytes"):
        model_key(root)


def test_the_guides_flat_folder_comes_in_only_by_an_explicit_import(
    registry_two_versions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects, _ = ModelRegistry(registry_two_versions[0]).active().load_pickles(trust=True)
    monkeypatch.chdir(tmp_path)
    flat = Path("models")  # as the guide keeps them: three joblib files, no metadata
    flat.mkdir(mode=0o755)
    for name in REQUIRED_FILES:
        joblib.dump(objects[name], flat / name)

    refused = oncall("models", "import", flat.resolve(), "--model-path", flat.resolve())
    assert "--trust-pickles" in one_line_error(refused) and not (flat / "versions").exists()
    ml = _service(flat)  # what the bot does meanwhile: says how, answers with the rules
    assert ml.health()["status"] == "fallback" and "oncall models import" in (ml.last_error or "")

    imported = oncall("models", "import", flat.resolve(), "--trust-pickles", "--model-path", flat.resolve())
    assert imported.returncode == 0, imported.stderr
    version = ModelRegistry(flat).active_id()
    assert version and f"active version is now {version}" in imported.stdout
    assert all(not (flat / name).is_symlink() for name in REQUIRED_FILES), "the guide's files stay theirs"
    ml = _service(flat)
    assert ml.models.version == version and ml.health()["status"] == "ok"
    expected = reference_scorer({n: objects[n] for n in REQUIRED_FILES}).score_many(TEXTS)
    for text, want in zip(TEXTS, expected, strict=True):
        got = ml.predict(text).scores
        np.testing.assert_allclose(got.severity, want.severity, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.actions, want.actions, rtol=0, atol=1e-9)
    assert ml.predict(TEXTS[0]).category == "unknown", "the guide's three files have no category model"


def test_a_version_saved_before_serving_artifacts_is_refused_in_one_sentence_until_converted(
    models_dir: Path, registry_two_versions
) -> None:
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)
    old = registry.versions_dir / "zz-old"
    shutil.copytree(registry.versions_dir / first.version, old)
    (old / SERVING_FILE).unlink()  # what every version looked like before this change
    meta = json.loads((old / "metadata.json").read_text())
    del meta["artifacts"][SERVING_FILE]
    (old / "metadata.json").write_text(json.dumps(meta))
    how = "convert it with `oncall models convert zz-old --trust-pickles`"

    promote = one_line_error(oncall("models", "promote", "zz-old", "--model-path", models_dir))
    assert how in promote and promote.count(". ") == 0, "one sentence"
    registry.promote("zz-old")
    ml = _service(models_dir)
    assert ml.models.version == second.version and how in (ml.last_error or "")
    assert "--trust-pickles" in one_line_error(oncall("models", "convert", "--model-path", models_dir))
    converted = oncall("models", "convert", "--trust-pickles", "--model-path", models_dir)
    assert converted.returncode == 0 and "converted zz-old" in converted.stdout, converted.stderr
    assert asyncio.run(ml.reload_models()).ok and ml.models.version == "zz-old" and not ml.degraded
    reference = load_model_set(registry.get(first.version))
    for text in TEXTS:
        assert np.array_equal(ml.predict(text).scores.severity, reference.scorer.score(text).severity)
    assert oncall("models", "verify", "--model-path", models_dir).returncode == 0


def test_the_follower_survives_any_error_and_still_follows(
    models_dir: Path, registry_two_versions, caplog: pytest.LogCaptureFixture
) -> None:
    """A trial file naming a version with a mapping makes the registry raise TypeError, which no handler
    foresaw; the follower logs it at ERROR, keeps the active version serving, and picks up the next
    promotion."""
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)
    caplog.set_level(logging.ERROR)

    async def run() -> None:
        ml = MLService(models_dir, auto_train=False)
        await ml.initialize()
        follower = asyncio.create_task(ml.follow_active(0.05))
        try:
            registry.trial_path.write_text(json.dumps({"version": {"not": "a name"}, "mode": "shadow"}))
            deadline = time.monotonic() + 5
            while "TypeError" not in (ml.last_error or ""):
                assert time.monotonic() < deadline, "the failed trial load was never reported"
                await asyncio.sleep(0.02)
            assert ml.degraded and ml.load_failures["trial"] == 1 and ml.models.version == second.version
            registry.end_trial()
            registry.promote(first.version)
            while ml.models.version != first.version:
                assert time.monotonic() < deadline + 5, "the follower stopped following"
                await asyncio.sleep(0.02)
            assert not follower.done() and ml.last_error is None
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)

    asyncio.run(run())
    assert any("TypeError" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
