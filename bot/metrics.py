"""Prometheus metrics in the text exposition format, without a client library: counters and a latency
histogram are all the bot needs, and the label sets are small and fixed."""

from __future__ import annotations

import bisect
import time
from collections import Counter as Counter_
from collections import defaultdict, deque
from typing import Any

from engine.taxonomy import SEVERITIES

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self.values: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] += amount

    def value(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(k)} {v:g}" for k, v in sorted(self.values.items())]
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.help = help_text
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.sum += seconds

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        total = 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            total += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'{self.name}_bucket{{le="{le}"}} {total}')
        lines += [f"{self.name}_sum {self.sum:g}", f"{self.name}_count {total}"]
        return lines


class SeverityWindow:
    """The severities predicted over the last day (bounded), against the training distribution: a shift
    between the two is the first sign that the alerts no longer look like what the model learned from."""

    def __init__(self, seconds: float = 86_400.0, cap: int = 200_000) -> None:
        self.seconds = seconds
        self.recent: deque[tuple[float, str]] = deque(maxlen=cap)

    def add(self, severity: str) -> None:
        self.recent.append((time.time(), severity))

    def shares(self) -> dict[str, float]:
        cutoff = time.time() - self.seconds
        while self.recent and self.recent[0][0] < cutoff:
            self.recent.popleft()
        counts = Counter_(s for _, s in self.recent)
        total = sum(counts.values())
        return {s: counts.get(s, 0) / total for s in SEVERITIES} if total else {}


def training_shares(metadata: dict[str, Any]) -> dict[str, float]:
    """The severity distribution of the version's held-out validation rows (recorded at training)."""
    per_class = (metadata.get("metrics", {}).get("severity") or {}).get("per_class") or {}
    support = {s: float(per_class.get(s, {}).get("support", 0)) for s in SEVERITIES}
    total = sum(support.values())
    return {s: n / total for s, n in support.items()} if total else {}


def _gauge(name: str, help_text: str, values: list[tuple[tuple[tuple[str, str], ...], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    return lines + [f"{name}{_labels(k)} {v:g}" for k, v in values]


class Metrics:
    """Every metric the bot exports."""

    def __init__(self) -> None:
        self.events = Counter("oncall_events_total", "Slack events received, by type and outcome.")
        self.alerts = Counter("oncall_alerts_total", "Messages decided on, by alert source.")
        self.skipped = Counter("oncall_messages_skipped_total", "Messages not treated as alerts, by reason.")
        self.replies = Counter("oncall_replies_total", "Replies posted, by kind.")
        self.grouped = Counter("oncall_alerts_grouped_total", "Alerts that joined a group, by alert source.")
        self.reply_errors = Counter("oncall_reply_errors_total", "Replies Slack refused after retries.")
        self.refused = Counter(
            "oncall_requests_refused_total",
            "Requests refused (foreign team, malformed user or body), by kind and reason.",
        )
        self.duplicates = Counter("oncall_duplicate_events_total", "Re-delivered events answered only once.")
        self.commands = Counter("oncall_commands_total", "Slash commands, by command and subcommand.")
        self.ratings = Counter("oncall_ratings_total", "Ratings stored or withdrawn, by kind.")
        self.store_unavailable = Counter(
            "oncall_store_unavailable_total", "Operations that found the store locked or down, by operation."
        )
        self.similar_skipped = Counter(
            "oncall_similar_skipped_total",
            "Decisions posted without looking up similar incidents (busy: the event loop was overloaded; "
            "slow: the search overran its budget), by reason.",
        )
        self.decide_seconds = Histogram("oncall_decision_seconds", "Alert received to reply posted.")
        self.predictions = Counter(
            "oncall_predictions_total", "Decisions posted, by model version and predicted severity."
        )
        self.severities = SeverityWindow()

    def predicted(self, version: str, severity: str) -> None:
        self.predictions.inc(version=version, severity=severity)
        self.severities.add(severity)

    def render(
        self,
        model_version: str,
        ready: bool,
        *,
        acceptance: dict[str, float] | None = None,
        reloads: dict[str, int] | None = None,
        load_failures: dict[str, int] | None = None,
        training: dict[str, float] | None = None,
        reliability: dict[str, tuple[str, float]] | None = None,
    ) -> str:
        lines: list[str] = []
        for metric in (
            self.events,
            self.alerts,
            self.skipped,
            self.replies,
            self.grouped,
            self.reply_errors,
            self.duplicates,
            self.refused,
            self.commands,
            self.ratings,
            self.store_unavailable,
            self.similar_skipped,
            self.decide_seconds,
            self.predictions,
        ):
            lines += metric.render()
        lines += _gauge(
            "oncall_rating_acceptance",
            "Share of :+1: among :+1: and :-1: on a version's decisions.",
            [((("version", v),), a) for v, a in sorted((acceptance or {}).items())],
        )
        lines += _gauge(
            "oncall_model_reloads",
            "Model reloads since start, by outcome.",
            [((("outcome", k),), n) for k, n in sorted((reloads or {}).items())],
        )
        lines += _gauge(
            "oncall_model_load_failures",
            "Model loads that failed since start, by where: startup, reload, pointer, trial.",
            [((("stage", k),), n) for k, n in sorted((load_failures or {}).items())],
        )
        recent, trained = self.severities.shares(), training or {}
        shares = [((("severity", s), ("window", "24h")), p) for s, p in recent.items()]
        shares += [((("severity", s), ("window", "training")), p) for s, p in trained.items()]
        lines += _gauge("oncall_severity_share", "Predicted severities, last day vs training.", shares)
        if recent and trained:  # total variation distance: 0 the same, 1 nothing in common
            drift = sum(abs(recent[s] - trained.get(s, 0.0)) for s in SEVERITIES) / 2
            lines += _gauge(
                "oncall_severity_drift", "Distance between the two distributions above.", [((), drift)]
            )
        for name, (help_text, value) in (reliability or {}).items():
            lines += _gauge(name, help_text, [((), value)])
        lines += [
            "# HELP oncall_model_info The model version serving.",
            "# TYPE oncall_model_info gauge",
            f"oncall_model_info{_labels((('version', model_version),))} 1",
            "# HELP oncall_ready 1 once the models are loaded.",
            "# TYPE oncall_ready gauge",
            f"oncall_ready {int(ready)}",
        ]
        return "\n".join(lines) + "\n"
