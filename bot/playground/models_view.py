"""What the playground's models page shows: every kept version with its held-out metrics (per class,
confusion, calibration) by the rows they were measured on (real labeled rows first, synthetic ones
labeled as such), which one serves, the ratings each has earned, and the trial under way."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.services import Services
from bot.store import StoreUnavailable
from engine.quality import Measured, measured
from engine.registry import ModelVersion, RegistryError

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
    }


async def models_summary(services: Services) -> dict[str, Any]:
    ml = services.engine.ml
    health = ml.health() if services.ready.is_set() else {"status": "loading models"}
    serving = str(health.get("serving_version") or "")
    try:
        active = await asyncio.to_thread(ml.registry.active_id)
        versions = await asyncio.to_thread(ml.registry.list_versions)
        registry_error = None
    except RegistryError as exc:
        active, versions, registry_error = None, [], str(exc)
    shown = [_version(v, active, serving) for v in reversed(versions)]  # newest first
    ratings_error = None
    try:
        for v in shown:
            v["ratings"] = await services.store.rating_counts(v["id"])
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
