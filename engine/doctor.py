"""`oncall doctor`: the troubleshooting steps in one place, each with a plain verdict."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import sklearn

from engine.incident import incident_text
from engine.ml_service import ModelLoadError, load_model_set
from engine.registry import REQUIRED_FILES, ModelRegistry, RegistryError


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # passes, but worth a look


def run_checks(model_path: str | Path, allow_unverified: bool = False) -> list[Check]:
    """Directory, active version, files, checksums, library versions, load, and a test prediction."""
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
    missing = [n for n in REQUIRED_FILES if not version.has(n)]
    checks.append(
        Check("files present", not missing, "missing " + ", ".join(missing) if missing else "all present")
    )
    if missing:
        return checks
    try:
        version.check_permissions()
    except RegistryError as exc:
        checks.append(Check("permissions", False, str(exc)))
        return checks
    checks.append(Check("permissions", True, "only the owner (or root) can write the model files"))
    problems = registry.verify(version)
    checks.append(
        Check("checksums", not problems, "; ".join(problems) or "every artifact matches metadata.json")
    )
    trained_with = version.metadata.get("versions", {})
    sk = trained_with.get("scikit-learn", "unknown")
    same_minor = sk.split(".")[:2] == sklearn.__version__.split(".")[:2]
    checks.append(
        Check(
            "library versions",
            sk.split(".")[:1] == sklearn.__version__.split(".")[:1],
            f"trained with scikit-learn {sk}, running {sklearn.__version__}",
            warning=not same_minor,
        )
    )
    started = time.perf_counter()
    try:
        models = load_model_set(version, allow_unverified=allow_unverified)
    except (RegistryError, ModelLoadError, OSError) as exc:
        checks.append(Check("loadable", False, str(exc)))
        return checks
    checks.append(
        Check(
            "loadable",
            True,
            f"loaded in {(time.perf_counter() - started) * 1000:.0f} ms, scorer: {models.scorer_kind}"
            + ("; " + "; ".join(models.warnings) if models.warnings else ""),
            warning=bool(models.warnings),
        )
    )
    text = incident_text("[FIRING:1] HighErrorRate checkout", "error rate 12% for 10m", "checkout")
    scores = models.scorer.score(text)
    sev = models.scorer.severity_classes[int(scores.severity.argmax())]
    checks.append(Check("test prediction", True, f"{text!r} -> {sev} ({scores.severity.max():.2f})"))
    return checks
