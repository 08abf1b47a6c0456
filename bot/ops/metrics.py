"""Prometheus metrics, with ``prometheus_client``: each bot has a registry of its own (tests run several in
one process), holding the counters and the latency histogram the listeners update, the standard process,
platform and garbage-collector collectors, and what is read at scrape time (the outbox, the writes waiting
for the store, model loads, rating acceptance, the severity drift), which ``render`` is given."""

from __future__ import annotations

import time
from collections import Counter as Counter_
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.taxonomy import SEVERITIES

# The classic text format: what every Prometheus and promtool reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# A `_created` gauge beside every counter doubles the series for a timestamp no dashboard here reads.
disable_created_metrics()


class Counter:
    """A counter with a fixed set of label names (sorted: the exposition lists them in that order), counted
    with ``inc(**labels)`` and read back with ``value(**labels)``."""

    def __init__(
        self, name: str, help_text: str, registry: CollectorRegistry, labels: Iterable[str] = ()
    ) -> None:
        self.name = name if name.endswith("_total") else name + "_total"
        self.labelnames = tuple(sorted(labels))
        self._registry = registry
        self._counter = PromCounter(self.name, help_text, self.labelnames, registry=registry)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if self.labelnames:
            self._counter.labels(**labels).inc(amount)
        else:
            self._counter.inc(amount)

    def value(self, **labels: str) -> float:
        return self._registry.get_sample_value(self.name, labels) or 0.0

    @property
    def values(self) -> dict[tuple[tuple[str, str], ...], float]:
        """Every label set counted so far (its pairs sorted) and its count."""
        return {
            tuple(sorted(sample.labels.items())): sample.value
            for metric in self._counter.collect()
            for sample in metric.samples
            if sample.name == self.name
        }


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


@dataclass
class Scrape:
    """What the server reads from the bot's parts at scrape time."""

    model_version: str = "none"
    ready: bool = False
    acceptance: dict[str, float] = field(default_factory=dict)  # version -> share of :+1:
    reloads: dict[str, int] = field(default_factory=dict)  # outcome -> count since start
    load_failures: dict[str, int] = field(default_factory=dict)  # stage -> count since start
    training: dict[str, float] | None = None  # the serving version's severity distribution
    totals: dict[str, tuple[str, float]] = field(default_factory=dict)  # counter name -> (help, count)
    levels: dict[str, tuple[str, float]] = field(default_factory=dict)  # gauge name -> (help, value)


class _ScrapeCollector(Collector):
    """Turns the last ``Scrape`` into metric families: counts since start as counters, levels as gauges."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.scrape = Scrape()

    def describe(self) -> list[Metric]:
        return []  # collected only at scrape time: nothing to check for clashes at registration

    def collect(self) -> Iterator[Metric]:
        s = self.scrape
        family = GaugeMetricFamily(
            "oncall_rating_acceptance",
            "Share of :+1: among :+1: and :-1: on a version's decisions.",
            labels=["version"],
        )
        for version, share in sorted(s.acceptance.items()):
            family.add_metric([version], share)
        yield family
        counts = CounterMetricFamily(
            "oncall_model_reloads", "Model reloads since start, by outcome.", labels=["outcome"]
        )
        for outcome, n in sorted(s.reloads.items()):
            counts.add_metric([outcome], n)
        yield counts
        counts = CounterMetricFamily(
            "oncall_model_load_failures",
            "Model loads that failed since start, by where: startup, reload, pointer, trial.",
            labels=["stage"],
        )
        for stage, n in sorted(s.load_failures.items()):
            counts.add_metric([stage], n)
        yield counts
        recent, trained = self.metrics.severities.shares(), s.training or {}
        family = GaugeMetricFamily(
            "oncall_severity_share",
            "Predicted severities, last day vs training.",
            labels=["severity", "window"],
        )
        for severity, share in recent.items():
            family.add_metric([severity, "24h"], share)
        for severity, share in trained.items():
            family.add_metric([severity, "training"], share)
        yield family
        if recent and trained:  # total variation distance: 0 the same, 1 nothing in common
            drift = sum(abs(recent[sev] - trained.get(sev, 0.0)) for sev in SEVERITIES) / 2
            yield GaugeMetricFamily(
                "oncall_severity_drift", "Distance between the two distributions above.", drift
            )
        for name, (help_text, value) in s.totals.items():
            yield CounterMetricFamily(name, help_text, value)
        for name, (help_text, value) in s.levels.items():
            yield GaugeMetricFamily(name, help_text, value)
        family = GaugeMetricFamily("oncall_model_info", "The model version serving.", labels=["version"])
        family.add_metric([s.model_version], 1)
        yield family
        yield GaugeMetricFamily("oncall_ready", "1 once the models are loaded.", int(s.ready))


class Metrics:
    """Every metric the bot exports, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        # The standard collectors (process_*, python_info, python_gc_*), registered in this registry.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

        def counter(name: str, help_text: str, *labels: str) -> Counter:
            return Counter(name, help_text, registry, labels)

        self.events = counter(
            "oncall_events_total", "Slack events received, by type and outcome.", "type", "outcome"
        )
        self.alerts = counter("oncall_alerts_total", "Messages decided on, by alert source.", "source")
        self.skipped = counter(
            "oncall_messages_skipped_total", "Messages not treated as alerts, by reason.", "reason"
        )
        self.replies = counter("oncall_replies_total", "Replies posted, by kind.", "kind")
        self.grouped = counter(
            "oncall_alerts_grouped_total", "Alerts that joined a group, by alert source.", "source"
        )
        self.reply_errors = counter("oncall_reply_errors_total", "Replies Slack refused after retries.")
        self.duplicates = counter("oncall_duplicate_events_total", "Re-delivered events answered only once.")
        self.refused = counter(
            "oncall_requests_refused_total",
            "Requests refused (foreign team, malformed user or body), by kind and reason.",
            "kind",
            "reason",
        )
        self.commands = counter(
            "oncall_commands_total", "Slash commands, by command and subcommand.", "command", "sub"
        )
        self.ratings = counter(
            "oncall_ratings_total", "Ratings stored or withdrawn, by kind.", "kind", "change"
        )
        self.store_unavailable = counter(
            "oncall_store_unavailable_total",
            "Operations that found the store locked or down, by operation.",
            "operation",
        )
        self.similar_skipped = counter(
            "oncall_similar_skipped_total",
            "Decisions posted without looking up similar incidents (busy: the event loop was overloaded; "
            "slow: the search overran its budget), by reason.",
            "reason",
        )
        self.decide_seconds = PromHistogram(
            "oncall_decision_seconds",
            "Alert received to reply posted.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.predictions = counter(
            "oncall_predictions_total",
            "Decisions posted, by model version and predicted severity.",
            "version",
            "severity",
        )
        self.severities = SeverityWindow()
        self._scrape = _ScrapeCollector(self)
        registry.register(self._scrape)

    def predicted(self, version: str, severity: str) -> None:
        self.predictions.inc(version=version, severity=severity)
        self.severities.add(severity)

    def render(self, scrape: Scrape) -> bytes:
        """The exposition, with ``scrape`` as what was read from the bot's parts just now."""
        self._scrape.scrape = scrape
        return generate_latest(self.registry)
