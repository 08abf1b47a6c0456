"""Pickles brought in under explicit trust: a version saved before serving artifacts gets its
``serving.npz``, and a flat folder of joblib files (the guide's ``models/``) becomes a version.

Both unpickle, so both need the trust of whoever runs them (``--trust-pickles``, ML_TRUST_PICKLES=1) or a
valid signature; serving then reads only the artifact written here. Both check that it reproduces the
scikit-learn objects' probabilities before it can serve.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.ml_service import compile_pickles, load_model_set, probe_record, reference_scorer
from engine.registry import REQUIRED_FILES, ModelRegistry, ModelVersion, RegistryError
from engine.scorer import dump_serving

# What a flat folder's metadata.json (when it has one) may say about its models, carried into the version.
_CARRIED = ("trained_at", "seed", "data", "metrics", "feature_config", "model_config", "floor")


def convert_version(registry: ModelRegistry, version_id: str, trust: bool, key: bytes | None) -> ModelVersion:
    """Give ``version_id``, saved before serving artifacts, the serving artifact of its pickles."""
    version = registry.get(version_id)
    if version.legacy() is None:
        raise RegistryError(f"model {version_id} has its serving artifact already")
    objects, _ = version.load_pickles(trust, key)
    converted = registry.add_serving(version, dump_serving(compile_pickles(version, objects)), key)
    load_model_set(converted)  # it serves now, and reproduces the probes recorded at training
    return converted


def import_flat(registry: ModelRegistry, source: Path, trust: bool, key: bytes | None) -> ModelVersion:
    """A new version (not active) of the joblib files straight in ``source``: the objects saved again, with
    their serving artifact and checksums (and a signature with ``key``)."""
    flat = ModelRegistry(source).flat()
    if flat is None:
        raise RegistryError(
            f"{source} holds no flat layout to import: {', '.join(REQUIRED_FILES)} as plain files"
        )
    objects, _ = flat.load_pickles(trust, key)
    scorer = compile_pickles(flat, objects)
    metadata = {name: flat.metadata[name] for name in _CARRIED if name in flat.metadata}
    metadata.update(
        imported={"from": str(source.resolve()), "at": datetime.now(UTC).isoformat(timespec="seconds")},
        probe=probe_record(reference_scorer(objects)),
    )
    version = registry.write_version(objects, metadata, dump_serving(scorer), key)
    load_model_set(version)  # what was written serves
    return version
