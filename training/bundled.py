"""Real labeled rows shipped inside the package: what the built-in model knows of real alerts.

Only ``data/alert_rules_mixins.jsonl`` is shipped: 807 Prometheus alerting rules of the monitoring
mixins (Apache-2.0; ``data/NOTICE`` says where they come from). Synthetic text teaches the shapes and
causes of incidents; these rules teach how the people who write alerts grade them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from training.dataset import LabeledIncident, load_jsonl

DATA_DIR = Path(__file__).resolve().parent / "data"
ALERT_RULES = DATA_DIR / "alert_rules_mixins.jsonl"


@functools.cache
def _load() -> tuple[tuple[LabeledIncident, ...], str]:
    loaded = load_jsonl(ALERT_RULES)
    if loaded.bad_lines:  # a packaging fault, not a user's file: say so rather than train on less
        raise ValueError(f"bundled alert rules are damaged: {loaded.bad_lines[0]}")
    return tuple(loaded.rows), loaded.sha256


def alert_rules() -> list[LabeledIncident]:
    """The bundled alerting rules, each with its author's severity (``source`` ``alertrules/mixins``)."""
    return list(_load()[0])


def alert_rules_sha256() -> str:
    return _load()[1]
