"""The versioned registry: complete metadata, atomic pointer, promote/rollback, pruning, flat layout.
(Pickles, trust and signatures: tests/engine/test_untrusted_models.py.)"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import joblib
import pytest
import sklearn

from engine.ml_service import load_model_set
from engine.registry import (
    ARTIFACT_FILES,
    REQUIRED_FILES,
    SERVING_FILE,
    SEVERITY_FILE,
    IncompatibleVersion,
    IntegrityError,
    LegacyVersion,
    ModelRegistry,
    RegistryError,
    UntrustedPickles,
    sha256_file,
)
from tests.conftest import small_config
from training.train import ValidationFailed, train


def test_training_writes_a_loadable_version_with_complete_metadata(registry_two_versions) -> None:
    root, _, second = registry_two_versions
    registry = ModelRegistry(root)
    version = registry.active()
    assert version.id == second.version
    meta = version.metadata
    for key in (
        "version",
        "trained_at",
        "seed",
        "data",
        "metrics",
        "feature_config",
        "versions",
        "artifacts",
    ):
        assert key in meta, key
    assert meta["seed"] == 8
    assert meta["data"]["by_source"] and sum(meta["data"]["by_source"].values()) == meta["data"]["rows"]
    assert set(meta["versions"]) >= {"python", "scikit-learn", "numpy", "joblib"}
    assert meta["versions"]["scikit-learn"] == sklearn.__version__
    for label in ("severity", "category"):
        m = meta["metrics"][label]
        assert m["n"] > 0 and 0 < m["accuracy"] <= 1 and 0 < m["macro_f1"] <= 1 and 0 <= m["ece"] < 1
        assert set(m["per_class"]) and "matrix" in m["confusion"]
    assert 0 < meta["metrics"]["actions"]["top3"] <= 1
    for name in (SERVING_FILE, *REQUIRED_FILES):
        assert meta["artifacts"][name]["sha256"] == sha256_file(version.path / name)
    assert registry.verify(version) == []
    assert "signature" not in meta, "no key configured: nothing to sign with"
    objects, warnings = version.load_pickles(trust=True)
    assert set(objects) >= set(REQUIRED_FILES) and warnings == []


@pytest.mark.slow
def test_input_files_are_recorded_with_their_sha256(tmp_path: Path) -> None:
    data = tmp_path / "history.jsonl"
    rows = [
        {
            "title": f"Disk full on db-{i}",
            "description": "disk 99%",
            "severity": "high",
            "category": "resource_exhaustion",
            "actions": ["scale_up"],
        }
        for i in range(30)
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = train(small_config(samples=300, min_macro_f1=0.0, data_files=[data]), tmp_path / "models")
    files = ModelRegistry(tmp_path / "models").get(result.version).metadata["data"]["files"]
    assert files == [{"path": str(data), "sha256": sha256_file(data), "rows": 30, "bad_lines": 0}]
    assert result.data["by_source"]["history"] == 30


def test_promote_and_rollback_move_the_pointer(models_dir: Path, registry_two_versions) -> None:
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)
    assert registry.active_id() == second.version
    assert registry.rollback().id == first.version
    assert registry.active_id() == first.version
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    registry.promote(second.version)
    assert registry.active_id() == second.version
    assert registry.history() == [first.version]
    with pytest.raises(RegistryError, match="no model version"):
        registry.promote("does-not-exist")
    pointer = json.loads((models_dir / "active.json").read_text())
    assert pointer["version"] == second.version
    assert not list(models_dir.glob(".active.json.*")), "the temp file of the atomic write was left behind"


@pytest.mark.slow
def test_prune_keeps_the_newest_versions_the_active_one_and_its_rollback_target(tmp_path: Path) -> None:
    root = tmp_path / "models"
    floorless = {"min_macro_f1": 0.0, "min_action_top3": 0.0}  # bookkeeping under test, not quality
    made = [
        train(small_config(seed, samples=300, **floorless), root, activate=False).version
        for seed in (1, 2, 3)
    ]
    registry = ModelRegistry(root, keep=1)
    for version in made[1:]:
        registry.promote(version)
    registry.promote(made[0])  # active: the oldest; rollback target: the newest
    assert registry.prune() == [made[1]]
    assert [v.id for v in registry.list_versions()] == [made[0], made[2]]
    assert registry.rollback().id == made[2]


@pytest.mark.slow
def test_validation_floor_refuses_a_weak_model_and_saves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "models"
    with pytest.raises(ValidationFailed, match="below the floor") as info:
        train(small_config(samples=300, min_macro_f1=0.995), root)
    assert info.value.metrics["severity"]["macro_f1"] < 0.995
    assert ModelRegistry(root).list_versions() == []
    assert not (root / "active.json").exists()


@pytest.mark.parametrize("name", [SERVING_FILE, "incident_classifier.joblib"])
def test_a_tampered_artifact_is_refused_before_it_is_read(models_dir: Path, name: str) -> None:
    version = ModelRegistry(models_dir).active()
    target = version.path / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    if name == SERVING_FILE:
        with pytest.raises(IntegrityError, match="sha256"):
            version.serving_bytes()
    else:
        with pytest.raises(IntegrityError, match="sha256"):
            version.load_pickles(trust=True)  # trusting the pickles is no reason to load a changed one
        load_model_set(version)  # serving never reads a joblib file
    assert ModelRegistry(models_dir).verify(version) == [f"{version.id}: {name} checksum mismatch"]


def test_a_foreign_pickle_with_the_right_name_is_refused(models_dir: Path, tmp_path: Path) -> None:
    version = ModelRegistry(models_dir).active()
    marker = tmp_path / "pwned"
    import pickle

    class Exploit:
        def __reduce__(self):  # what a malicious pickle does on load: here, create the marker
            return (open, (str(marker), "w"))

    (version.path / "action_recommender.joblib").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(IntegrityError):
        version.load_pickles(trust=True)
    assert not marker.exists(), "the file was unpickled despite the checksum mismatch"


def test_sklearn_major_mismatch_refuses_the_pickles_not_the_serving_artifact(models_dir: Path) -> None:
    registry = ModelRegistry(models_dir)
    meta_path = registry.active().path / "metadata.json"
    meta = json.loads(meta_path.read_text())
    major, minor = (int(x) for x in sklearn.__version__.split(".")[:2])
    meta["versions"]["scikit-learn"] = f"{major - 1}.24.2"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IncompatibleVersion, match="scikit-learn"):
        registry.active().load_pickles(trust=True)
    assert load_model_set(registry.active()).scorer_kind == "fused"  # arrays: no scikit-learn involved
    [check] = [c for c in registry.check_all() if c.name == registry.active_id()]
    assert check.verdict == "ok" and "serving does not read them" in check.detail
    meta["versions"]["scikit-learn"] = f"{major}.{minor + 1}.0"
    meta_path.write_text(json.dumps(meta))
    _, warnings = registry.active().load_pickles(trust=True)
    assert any("scikit-learn" in w for w in warnings)


def test_a_flat_layout_serves_only_with_a_serving_artifact(models_dir: Path, tmp_path: Path) -> None:
    source = ModelRegistry(models_dir).active()
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in source.path.iterdir():  # a version's folder copied flat: its serving artifact comes along
        shutil.copy(path, flat / path.name)
    registry = ModelRegistry(flat)
    assert registry.active_id() == "flat"
    assert load_model_set(registry.active()).scorer_kind == "fused"
    (flat / SERVING_FILE).unlink()
    (flat / "metadata.json").unlink()  # the guide's layout: three joblib files and nothing else
    with pytest.raises(LegacyVersion, match=f"oncall models import {flat} --trust-pickles"):
        load_model_set(registry.active())
    with pytest.raises(UntrustedPickles, match="--trust-pickles"):
        registry.active().load_pickles()
    objects, _ = registry.active().load_pickles(trust=True)  # no checksums: the trust covers them
    assert set(objects) >= set(REQUIRED_FILES)


def test_artifacts_are_plain_joblib_files(registry_two_versions) -> None:
    """Anyone who trusts them can open a saved model with joblib, as the guide's tools do."""
    version = ModelRegistry(registry_two_versions[0]).active()
    objects, _ = version.load_pickles(trust=True)
    for name in REQUIRED_FILES:
        assert type(joblib.load(version.path / name)) is type(objects[name])


# -- models/<artifact>: links to the active version ---------------------------------------------------------
def assert_linked(root: Path, version: str) -> None:
    """Each artifact of ``version`` is reachable as ``root/<name>``: a relative link (the directory may
    move) that joblib opens, and `verify` agrees."""
    registry = ModelRegistry(root)
    assert registry.linked() == list(ARTIFACT_FILES)
    for name in ARTIFACT_FILES:
        assert os.readlink(root / name) == f"versions/{version}/{name}"
        assert joblib.load(root / name) is not None
    assert not list(root.glob(".*.joblib.*")), "a temporary link was left behind"
    assert registry.flat() is None, "the links are no flat layout"
    assert {c.name: c.verdict for c in registry.check_all()}["links"] == "ok"


def test_promotion_and_rollback_switch_the_links_to_the_active_version(
    registry_two_versions, models_dir: Path
) -> None:
    root, first, second = registry_two_versions
    assert_linked(root, second.version)  # as training left them
    # models_dir was copied following the links: plain copies, which the pointer still names as links.
    registry = ModelRegistry(models_dir)
    assert not (models_dir / SEVERITY_FILE).is_symlink()
    assert registry.flat() is None and registry.active_id() == second.version
    assert all(c.verdict == "ok" for c in registry.check_all())
    registry.rollback()
    assert_linked(models_dir, first.version)
    registry.promote(second.version)
    assert_linked(models_dir, second.version)


def test_links_that_are_not_the_active_versions_fail_verify_until_promoted_again(
    registry_two_versions, models_dir: Path
) -> None:
    _, first, second = registry_two_versions
    registry = ModelRegistry(models_dir)
    (models_dir / SEVERITY_FILE).unlink()
    os.symlink(f"versions/{first.version}/{SEVERITY_FILE}", models_dir / SEVERITY_FILE)
    [check] = [c for c in registry.check_all() if c.name == "links"]
    assert check.verdict == "BAD" and f"oncall models promote {second.version}" in check.detail
    registry.promote(second.version)
    assert_linked(models_dir, second.version)


def test_a_flat_layouts_plain_files_are_never_replaced_by_links(models_dir: Path, tmp_path: Path) -> None:
    version = ModelRegistry(models_dir).active()
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in version.path.iterdir():
        shutil.copy(path, flat / path.name)
    (flat / SEVERITY_FILE).write_bytes(b"the seed's own file")
    shutil.copytree(version.path, flat / "versions" / version.id)
    registry = ModelRegistry(flat)
    assert registry.active_id() == "flat"
    registry.promote(version.id)
    assert registry.linked() == [] and not (flat / SEVERITY_FILE).is_symlink()
    assert (flat / SEVERITY_FILE).read_bytes() == b"the seed's own file"


def test_a_failed_write_with_no_active_version_says_so_in_words(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(RegistryError) as caught:
        ModelRegistry(tmp_path / "file" / "models").check_writable()
    assert str(caught.value).endswith("nothing changed, no version is active")
