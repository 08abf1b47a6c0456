"""What the playground's models page shows: every kept version with its held-out metrics (per class,
confusion, calibration) by the rows they were measured on (real labeled rows first, synthetic ones
labeled as such), which one serves, the ratings each has earned, the trial under way, and what the
promotion gate says of each version that is not active (refused, with its reasons, or passed)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.ops.readiness import Readiness
from bot.slack.listeners.commands import ModelControls
from bot.store import StoreUnavailable
from engine.quality import Measured, measured
from engine.registry import ModelRegistry, ModelVersion, RegistryError

log = logging.getLogger(__name__)

_LABEL_METRICS = ("n", "accuracy", "macro_f1", "ece", "per_class", "confusion", "calibration", "by_provider")


def _measured(m: Measured) -> dict[str, Any]:
    """One held-out set: what it was (kind, label, rows, sources) and its numbers."""
    return {
        **m.to_dict(),
        "severity": {k: (m.metrics.get("severity") or {}).get(k) for k in _LABEL_METRICS},
        "category": {k: (m.metrics.get("category") or {}).get(k) for k in _LABEL_METRICS},
        "actions": m.metrics.get("actions") or {},
    }


def _version(v: ModelVersion, active: str | None, serving: str) -> dict[str, Any]:
    meta = v.metadata
    data = meta.get("data") or {}
    return {
        "id": v.id,
        "trained_at": v.trained_at,
        "active": v.id == active,
        "serving": v.id == serving,
        "seed": meta.get("seed"),
        "training_seconds": meta.get("training_seconds"),
        "rows_by_source": data.get("by_source") or {},
        "files": [f.get("path") if isinstance(f, dict) else f for f in data.get("files") or []],
        "quality": [_measured(m) for m in measured(meta)],  # real rows first
        "versions": meta.get("versions") or {},
        "forced": _forced(meta),
    }


def _forced(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The last promotion of this version, when it went past a gate that refused it (``forced`` in the
    metadata, as `oncall models promote --force` and the playground's *Promote anyway* record it)."""
    promotions = [p for p in meta.get("promotions") or [] if isinstance(p, dict)]
    if not promotions:
        return None
    last = promotions[-1]
    gate = last.get("gate") if isinstance(last.get("gate"), dict) else {}
    if last.get("forced"):
        return {"at": last.get("at"), "reasons": list(gate.get("reasons") or [])}
    return None


def _check(registry: ModelRegistry, version: str, active: str) -> dict[str, Any]:
    """The promotion gate's verdict on `version` against `active`, as `oncall models promote` checks it (its
    fixed validation set, no extra files)."""
    try:
        from training import gate  # the trainer's code, loaded only once the models page asks
    except ImportError as exc:
        error = f"the gate is not installed: {exc}"
        return {"passed": None, "against": active, "reasons": [], "error": error}
    try:
        result = gate.check(registry.get(version), registry.get(active))
    except Exception as exc:  # a version that does not load: no verdict, and the page says why
        log.warning("the promotion gate could not check %s: %s", version, exc)
        return {"passed": None, "against": active, "reasons": [], "error": f"{type(exc).__name__}: {exc}"}
    return {"passed": result.passed, "against": active, "reasons": list(result.reasons), "rows": result.rows}


class GateVerdicts:
    """What the gate says of each kept version against the active one, each pair checked once, in the
    background and one at a time (a check loads both versions and scores 2,000 rows: under a second)."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, str], dict[str, Any]] = {}
        self._running: dict[tuple[str, str], asyncio.Task[dict[str, Any]]] = {}
        self._one = asyncio.Lock()

    async def _run(self, registry: ModelRegistry, key: tuple[str, str]) -> dict[str, Any]:
        async with self._one:
            verdict = await asyncio.to_thread(_check, registry, *key)
        self._done[key] = verdict
        self._running.pop(key, None)
        return verdict

    def _task(self, registry: ModelRegistry, key: tuple[str, str]) -> asyncio.Task[dict[str, Any]]:
        task = self._running.get(key)
        if task is None:
            task = self._running[key] = asyncio.create_task(self._run(registry, key))
        return task

    def known(self, registry: ModelRegistry, version: str, active: str | None) -> dict[str, Any] | None:
        """The verdict if it is known (None for the active version); else starts the check and says so."""
        if active is None or version == active:
            return None
        key = (version, active)
        if key in self._done:
            return self._done[key]
        self._task(registry, key)
        return {"passed": None, "against": active, "reasons": [], "checking": True}

    async def verdict(self, registry: ModelRegistry, version: str) -> dict[str, Any] | None:
        """The verdict against the active version now (None when `version` is it, or nothing is)."""
        registry.get(version)  # RegistryError for a version that is not kept
        active = await asyncio.to_thread(registry.active_id)
        if active is None or active == version:
            return None
        key = (version, active)
        return self._done.get(key) or await asyncio.shield(self._task(registry, key))


async def models_summary(
    controls: ModelControls, readiness: Readiness, gate: GateVerdicts | None = None
) -> dict[str, Any]:
    ml = controls.ml
    health = ml.health() if readiness.is_set() else {"status": "loading models"}
    serving = str(health.get("serving_version") or "")
    try:
        active = await asyncio.to_thread(ml.registry.active_id)
        versions = await asyncio.to_thread(ml.registry.list_versions)
        registry_error = None
    except RegistryError as exc:
        active, versions, registry_error = None, [], str(exc)
    shown = [_version(v, active, serving) for v in reversed(versions)]  # newest first
    for v in shown:
        v["gate"] = gate.known(ml.registry, v["id"], active) if gate is not None else None
    ratings_error = None
    try:
        for v in shown:
            v["ratings"] = await controls.store.rating_counts(v["id"])
    except StoreUnavailable as exc:
        ratings_error = str(exc)
    return {
        "status": health.get("status"),
        "serving": serving or None,
        "active": active,
        "fallback": health.get("status") == "fallback",
        "last_error": health.get("last_error"),
        "trial": ml.trial,
        "versions": shown,
        "registry_error": registry_error,
        "ratings_error": ratings_error,
    }
