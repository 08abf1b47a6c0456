"""The labeled rule-based fallback: answers when no trained model can be loaded.

It is deliberately modest: keyword rules, low fixed confidences (so every answer is marked uncertain), and
every decision it makes carries the version ``fallback-rules`` so nobody mistakes it for a model.
"""

from __future__ import annotations

import re

import numpy as np

from engine.scorer import Scores
from engine.taxonomy import ACTIONS, CATEGORIES, SEVERITIES

FALLBACK_VERSION = "fallback-rules"
_TOP_PROBABILITY = 0.4

_SEVERITY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("critical", re.compile(r"\b(outage|down|unavailable|data loss|breach|all (users|customers|regions))\b")),
    ("high", re.compile(r"\b(5\d\d|errors?|failing|failed|timeouts?|critical|p1)\b")),
    ("medium", re.compile(r"\b(slow|latency|degraded|elevated|partial|warning)\b")),
)
_CATEGORY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("security", re.compile(r"\b(certificate|cert|credential|brute|attack|unauthori[sz]ed|leak|waf)\b")),
    ("deployment", re.compile(r"\b(deploy(ed|ment)?|release|rollout|canary)\b")),
    ("configuration", re.compile(r"\b(config(uration)?|feature flag|flag)\b")),
    ("database", re.compile(r"\b(database|db|postgres|mysql|replica(tion)?|deadlock|query)\b")),
    ("network", re.compile(r"\b(dns|network|packet|load balancer|tls|502|504|connection refused)\b")),
    ("resource_exhaustion", re.compile(r"\b(memory|oom\w*|disk|cpu|quota|exhausted|full)\b")),
    ("hardware", re.compile(r"\b(hardware|host down|power|cooling|ecc|raid)\b")),
    ("third_party", re.compile(r"\b(upstream|vendor|provider|stripe|twilio|third.party)\b")),
)
_ACTIONS_FOR: dict[str, tuple[str, ...]] = {
    "database": ("failover", "throttle_traffic", "restart_service"),
    "network": ("failover", "restart_service", "monitor"),
    "deployment": ("rollback_deploy", "deploy_hotfix", "monitor"),
    "configuration": ("revert_config", "rollback_deploy", "monitor"),
    "resource_exhaustion": ("scale_up", "throttle_traffic", "restart_service"),
    "software_bug": ("deploy_hotfix", "restart_service", "rollback_deploy"),
    "hardware": ("replace_hardware", "failover", "monitor"),
    "third_party": ("escalate_vendor", "failover", "monitor"),
    "security": ("rotate_credentials", "throttle_traffic", "monitor"),
}


def _one_hot(classes: tuple[str, ...], chosen: str) -> np.ndarray:
    rest = (1.0 - _TOP_PROBABILITY) / (len(classes) - 1)
    return np.array([_TOP_PROBABILITY if c == chosen else rest for c in classes])


class RuleScorer:
    """Keyword rules with the same interface as the model scorers."""

    severity_classes = SEVERITIES
    category_classes = CATEGORIES
    action_classes = ACTIONS

    def score(self, text: str) -> Scores:
        lowered = text.lower()
        severity = next((s for s, rule in _SEVERITY_RULES if rule.search(lowered)), "low")
        category = next((c for c, rule in _CATEGORY_RULES if rule.search(lowered)), "software_bug")
        ranked = _ACTIONS_FOR[category]
        actions = np.array([0.3 - 0.05 * ranked.index(a) if a in ranked else 0.05 for a in ACTIONS])
        return Scores(_one_hot(SEVERITIES, severity), _one_hot(CATEGORIES, category), actions)

    def score_many(self, texts: list[str]) -> list[Scores]:
        return [self.score(t) for t in texts]

    def calibrated(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores = self.score_many(texts)
        return tuple(np.array([getattr(s, k) for s in scores]) for k in ("severity", "category", "actions"))

    def explain(self, scores: Scores, severity: str, top: int = 5) -> list[tuple[str, float]]:
        return []
