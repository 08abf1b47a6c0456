"""Prometheus metrics in the text exposition format, without a client library: counters and a latency
histogram are all the bot needs, and the label sets are small and fixed."""

from __future__ import annotations

import bisect
from collections import defaultdict

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


class Metrics:
    """Every metric the bot exports."""

    def __init__(self) -> None:
        self.events = Counter("oncall_events_total", "Slack events received, by type and outcome.")
        self.alerts = Counter("oncall_alerts_total", "Messages decided on, by alert source.")
        self.skipped = Counter("oncall_messages_skipped_total", "Messages not treated as alerts, by reason.")
        self.replies = Counter("oncall_replies_total", "Replies posted, by kind.")
        self.reply_errors = Counter("oncall_reply_errors_total", "Replies Slack refused after retries.")
        self.duplicates = Counter("oncall_duplicate_events_total", "Re-delivered events answered only once.")
        self.commands = Counter("oncall_commands_total", "Slash commands, by command and subcommand.")
        self.ratings = Counter("oncall_ratings_total", "Ratings stored or withdrawn, by kind.")
        self.decide_seconds = Histogram("oncall_decision_seconds", "Alert received to reply posted.")

    def render(self, model_version: str, ready: bool) -> str:
        lines: list[str] = []
        for metric in (
            self.events,
            self.alerts,
            self.skipped,
            self.replies,
            self.reply_errors,
            self.duplicates,
            self.commands,
            self.ratings,
            self.decide_seconds,
        ):
            lines += metric.render()
        lines += [
            "# HELP oncall_model_info The model version serving.",
            "# TYPE oncall_model_info gauge",
            f"oncall_model_info{_labels((('version', model_version),))} 1",
            "# HELP oncall_ready 1 once the models are loaded.",
            "# TYPE oncall_ready gauge",
            f"oncall_ready {int(ready)}",
        ]
        return "\n".join(lines) + "\n"
