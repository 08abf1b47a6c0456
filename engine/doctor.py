"""`oncall doctor`: the troubleshooting steps in one place, each with a plain verdict."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sklearn

from engine.incident import incident_text
from engine.ml_service import load_model_set
from engine.registry import ModelRegistry, RegistryError, model_key
from engine.taxonomy import SEVERITIES


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
    checks.extend(plausibility(models.scorer))
    return checks


# -- plausibility -----------------------------------------------------------------------------------------
# Texts whose severity nobody would argue about, and that severity. The first is the test prediction shown.
PLAUSIBILITY_PROBES: tuple[tuple[str, str], ...] = (
    (incident_text("[FIRING:1] HighErrorRate checkout", "error rate 12% for 10m", "checkout"), "critical"),
    (
        incident_text(
            "[FIRING:3] HighErrorRate payments (critical)",
            "error rate 34.5% for 12m on payments-7f9c",
            "payments",
        ),
        "critical",
    ),
    (
        incident_text(
            "checkout is down for all customers", "every request returns 503 since the deploy", "checkout"
        ),
        "critical",
    ),
    (incident_text("Certificate for api.example.com expires in 30 days", "", "api-gateway"), "low"),
    (incident_text("nightly report job finished 4 minutes late", "", "reporting"), "low"),
)
IMPLAUSIBLE_DISTANCE = 2  # severities apart (critical, high, medium, low): critical -> medium is implausible


@dataclass(frozen=True, slots=True)
class ProbeResult:
    text: str
    expected: str
    predicted: str
    confidence: float

    @property
    def distance(self) -> int:
        order = list(SEVERITIES)
        if self.predicted not in order or self.expected not in order:
            return len(order)
        return abs(order.index(self.predicted) - order.index(self.expected))

    @property
    def plausible(self) -> bool:
        return self.distance < IMPLAUSIBLE_DISTANCE

    def describe(self) -> str:
        said = f"{self.text!r} -> {self.predicted} ({self.confidence:.2f})"
        return said if self.plausible else f"{said}, but it is written as {self.expected}"

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "expected": self.expected,
            "predicted": self.predicted,
            "confidence": round(self.confidence, 4),
            "plausible": self.plausible,
        }


def probe(scorer: Any) -> list[ProbeResult]:
    """The scorer's severity for each plausibility probe."""
    results = []
    for text, expected in PLAUSIBILITY_PROBES:
        severity = scorer.score(text).severity
        top = int(severity.argmax())
        results.append(ProbeResult(text, expected, str(scorer.severity_classes[top]), float(severity[top])))
    return results


def plausibility(scorer: Any) -> list[Check]:
    """The test prediction and whether the model's severities are plausible on texts nobody would argue
    about. A probe is implausible when its severity is two or more steps from what it is written as (a
    critical outage called medium or low, an expiry a month away called high or critical). One or a few
    implausible probes are a warning: the model serves, and is worth a look (retrain, or roll back); more
    than half of them fail the check, as a model that gets most of the obvious ones wrong (labels swapped,
    trained on the wrong data) should not serve."""
    results = probe(scorer)
    first, wrong = results[0], [r for r in results if not r.plausible]
    checks = [Check("test prediction", True, first.describe(), warning=not first.plausible)]
    if not wrong:
        detail = f"{len(results)} probe texts of known severity, each within one step of it"
        checks.append(Check("plausibility", True, detail))
        return checks
    failed = len(wrong) * 2 > len(results)
    what = "retrain (`oncall train`) or roll back (`oncall models rollback`)"
    detail = (
        f"{len(wrong)} of {len(results)} probe texts of known severity come out implausible: "
        + "; ".join(r.describe() for r in wrong)
        + f": {what}"
    )
    checks.append(Check("plausibility", not failed, detail, warning=not failed))
    return checks
