"""`oncall doctor`: the troubleshooting steps in one place, each with a plain verdict."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import sklearn

from engine.incident import incident_text
from engine.ml_service import load_model_set
from engine.registry import ModelRegistry, RegistryError, model_key


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # passes, but worth a look


def run_checks(model_path: str | Path) -> list[Check]:
    """Directory, active version, serving artifact, checksums and signature, load, and a test prediction.
    Reads the serving artifact only: nothing is unpickled."""
    root = Path(model_path)
    checks: list[Check] = []
    if not root.is_dir():
        return [
            Check("model directory", False, f"{root} does not exist: run `oncall train --model-path {root}`")
        ]
    checks.append(Check("model directory", True, str(root.resolve())))
    registry = ModelRegistry(root)
    try:
        version = registry.active()
    except RegistryError as exc:
        checks.append(Check("active version", False, str(exc)))
        return checks
    layout = "flat layout" if version.is_flat else f"versions/{version.id}"
    kept = len(registry.list_versions())
    checks.append(Check("active version", True, f"{version.id} ({layout}); {kept} version(s) kept"))
    legacy = version.legacy()
    checks.append(Check("serving artifact", not legacy, legacy or "present (arrays and JSON, no pickle)"))
    if legacy:
        return checks
    try:
        version.check_permissions()
    except RegistryError as exc:
        checks.append(Check("permissions", False, str(exc)))
        return checks
    checks.append(Check("permissions", True, "only the owner (or root) can write the model files"))
    try:
        key = model_key(root)
    except RegistryError as exc:
        checks.append(Check("signing key", False, str(exc)))
        return checks
    problems = registry.verify(version, key)
    signed = ", signed" if version.signed_with(key) else ""
    matched = f"every artifact matches metadata.json{signed}"
    checks.append(Check("checksums", not problems, "; ".join(problems) or matched))
    sk = version.metadata.get("versions", {}).get("scikit-learn", "unknown")
    checks.append(
        Check(
            "library versions",
            True,
            f"joblib files from scikit-learn {sk}, running {sklearn.__version__} (serving reads none)",
            warning=sk.split(".")[:2] != sklearn.__version__.split(".")[:2],
        )
    )
    started = time.perf_counter()
    try:
        models = load_model_set(version)
    except Exception as exc:  # the verdict must say why, whatever the file made the loader raise
        checks.append(Check("loadable", False, str(exc) or type(exc).__name__))
        return checks
    checks.append(
        Check(
            "loadable",
            True,
            f"loaded in {(time.perf_counter() - started) * 1000:.0f} ms, scorer: {models.scorer_kind}",
        )
    )
    text = incident_text("[FIRING:1] HighErrorRate checkout", "error rate 12% for 10m", "checkout")
    scores = models.scorer.score(text)
    sev = models.scorer.severity_classes[int(scores.severity.argmax())]
    checks.append(Check("test prediction", True, f"{text!r} -> {sev} ({scores.severity.max():.2f})"))
    return checks
