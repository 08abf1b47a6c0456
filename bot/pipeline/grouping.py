"""Alert grouping: in a storm, related alerts join the thread of the first one instead of each getting a
decision of its own.

An alert joins a channel's open group when it is a duplicate (the same source fingerprint: Alertmanager's
group key, a Datadog monitor, a Sentry issue; or the same text once numbers are masked), or when it is
related within the window: the same service, or text similar enough — the share of the alert's words
(alert-source boilerplate such as "firing" or "critical" left out) that the group's alerts use, each
counted by how many of them use it. A group closes when its alerts resolve, or after a quiet period.
Groups are kept in the store and loaded at start: a restart does not split one.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from bot.alerts import Alert
from bot.settings import GroupingSettings
from engine.taxonomy import SEVERITIES

_WORD = re.compile(r"[a-z][a-z0-9_.\-]*[a-z0-9]|[a-z]")
_NUMBER = re.compile(r"\d+")
# Words that say nothing about the cause: what alert sources' templates write around it (Alertmanager,
# Grafana, Datadog, Sentry, CloudWatch, PagerDuty) and common English. Shorter words count for nothing too.
BOILERPLATE = frozenset(
    {
        "firing",
        "resolved",
        "triggered",
        "recovered",
        "acknowledged",
        "alert",
        "alerts",
        "alarm",
        "alarms",
        "critical",
        "warning",
        "warn",
        "error",
        "errors",
        "high",
        "low",
        "medium",
        "info",
        "severity",
        "status",
        "monitor",
        "ok",
        "the",
        "and",
        "for",
        "are",
        "was",
        "with",
        "from",
        "not",
        "has",
        "have",
        "this",
        "that",
        "description",
        "details",
        "summary",
        "service",
        "labels",
        "annotations",
        "alertname",
        "value",
        "values",
        "instance",
        "job",
        "grafana",
        "folder",
        "source",
        "silence",
        "dashboard",
        "panel",
        "last",
        "minutes",
        "slack-incidents",
        "pagerduty",
        "urgency",
        "priority",
        "assigned",
        "red_circle",
        "rotating_light",
        "environment",
        "production",
        "staging",
        "release_id",
        "via",
        "app",
        "call",
        "level",
        "issue",
        "issues",
        "cloudwatch",
        "amazon",
        "aws",
        "account",
        "state",
        "threshold",
        "threshold_crossed",
        "datapoint",
        "datapoints",
        "greater",
        "less",
        "than",
        "us-east",
        "us-west",
        "eu-west",
        "region",
    }
)
KEPT_TITLES = 5
MAX_GROUPS_PER_CHANNEL = 200


def words(alert: Alert) -> frozenset[str]:
    """The words that may name the cause: not boilerplate, not the service (related by its own rule)."""
    incident = alert.incident
    text = _NUMBER.sub("#", f"{incident.title} {incident.description[:2000]}".lower())
    service = (incident.service or "").lower()
    return frozenset(w for w in _WORD.findall(text) if len(w) > 2 and w not in BOILERPLATE and w != service)


def normalized(alert: Alert) -> str:
    return " ".join(_NUMBER.sub("#", alert.incident.title.lower()).split())


def rank(severity: str) -> int:
    """critical 3 ... low 0."""
    return len(SEVERITIES) - 1 - SEVERITIES.index(severity) if severity in SEVERITIES else -1


@dataclass
class Group:
    id: str
    channel: str
    thread_ts: str  # the first alert's: the thread every later one is shown in
    severity: str
    title: str
    opened_at: float
    last_seen: float
    decision_ts: str | None = None  # the decision message, once posted
    update_ts: str | None = None  # the "+N related alerts" message, once posted
    count: int = 1
    fingerprints: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    resolved: set[str] = field(default_factory=set)
    word_counts: Counter[str] = field(default_factory=Counter)
    titles: deque[str] = field(default_factory=lambda: deque(maxlen=KEPT_TITLES))
    alerts: set[str] = field(default_factory=set)  # the ts of the alerts that joined (a retry joins once)
    noted: set[str] = field(default_factory=set)  # the joined alerts shown their sign (a retry: once)
    permalink: str | None = None  # the link to thread_ts, once asked (the joined alerts' notes point there)
    closed: bool = False
    raised_by: Any = None  # the Decision that raised the severity, until the decision message shows it

    def state(self) -> dict[str, Any]:
        return {
            "severity": self.severity, "title": self.title, "opened_at": self.opened_at,
            "decision_ts": self.decision_ts, "update_ts": self.update_ts, "count": self.count,
            "fingerprints": sorted(self.fingerprints), "texts": sorted(self.texts)[-200:],
            "services": sorted(self.services), "resolved": sorted(self.resolved),
            "words": dict(self.word_counts.most_common(300)), "titles": list(self.titles),
            "alerts": sorted(self.alerts)[-2000:], "noted": sorted(self.noted)[-2000:],
            "permalink": self.permalink,
        }  # fmt: skip

    @classmethod
    def from_state(
        cls, group_id: str, channel: str, thread_ts: str, state: dict[str, Any], seen: float
    ) -> Group:
        group = cls(group_id, channel, thread_ts, state["severity"], state["title"], state["opened_at"], seen)
        group.decision_ts, group.update_ts, group.count = (
            state["decision_ts"],
            state["update_ts"],
            state["count"],
        )
        group.fingerprints, group.texts = set(state["fingerprints"]), set(state["texts"])
        group.services, group.resolved = set(state["services"]), set(state["resolved"])
        group.word_counts = Counter(state["words"])
        group.titles.extend(state["titles"])
        group.alerts = set(state["alerts"])
        group.noted = set(state.get("noted") or ())  # older stored states lack these two
        group.permalink = state.get("permalink")
        return group


@dataclass
class _Channel:
    groups: OrderedDict[str, Group] = field(default_factory=OrderedDict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    notes: deque[float] = field(default_factory=deque)  # when grouped alerts' notes were posted, last minute


class Grouper:
    """The open groups of every channel, in memory (loaded from and written through to the store)."""

    def __init__(self, settings: GroupingSettings) -> None:
        self.settings = settings
        self._channels: dict[str, _Channel] = {}

    def channel(self, channel: str) -> _Channel:
        return self._channels.setdefault(channel, _Channel())

    def lock(self, channel: str) -> asyncio.Lock:
        """Held while an alert finds or opens its group: the second alert of a storm sees the first's."""
        return self.channel(channel).lock

    def restore(self, group: Group) -> None:
        state = self.channel(group.channel)
        state.groups[group.id] = group
        state.groups.move_to_end(group.id)

    def find(self, channel: str, alert: Alert, now: float) -> Group | None:
        """The open group this alert belongs to, or None."""
        state = self.channel(channel)
        self._close_quiet(state, now)
        fingerprint, text, service = alert.fingerprint, normalized(alert), alert.incident.service
        seen = words(alert)
        best, best_score = None, self.settings.similarity
        for group in reversed(state.groups.values()):
            if (fingerprint and fingerprint in group.fingerprints) or text in group.texts:
                return group
            if now - group.last_seen > self.settings.window:
                continue
            if service and service in group.services:
                return group
            score = similarity(seen, group)
            if score >= best_score:
                best, best_score = group, score
        return best

    def open(self, channel: str, alert_ts: str, alert: Alert, severity: str, now: float) -> Group:
        group = Group(f"g{secrets.token_hex(8)}", channel, alert_ts, severity, alert.incident.title, now, now)
        state = self.channel(channel)
        state.groups[group.id] = group
        while len(state.groups) > MAX_GROUPS_PER_CHANNEL:
            state.groups.popitem(last=False)
        remember(group, alert)
        return group

    def join(self, group: Group, alert_ts: str, alert: Alert, now: float) -> None:
        group.alerts.add(alert_ts)
        group.count += 1
        group.last_seen = now
        self.channel(group.channel).groups.move_to_end(group.id)
        remember(group, alert)

    def note_allowed(self, channel: str, now: float, per_minute: int) -> bool:
        """May a grouped alert in ``channel`` get its threaded note? Yes (and counted) while fewer than
        ``per_minute`` were posted there in the last minute; in a storm, no: the reaction alone."""
        notes = self.channel(channel).notes
        while notes and now - notes[0] >= 60.0:
            notes.popleft()
        if len(notes) >= per_minute:
            return False
        notes.append(now)
        return True

    def with_fingerprint(self, channel: str, fingerprint: str) -> Group | None:
        return next(
            (g for g in reversed(self.channel(channel).groups.values()) if fingerprint in g.fingerprints),
            None,
        )

    def close(self, group: Group) -> None:
        group.closed = True
        self.channel(group.channel).groups.pop(group.id, None)

    def _close_quiet(self, state: _Channel, now: float) -> None:
        for group_id in [g.id for g in state.groups.values() if now - g.last_seen > self.settings.quiet]:
            state.groups[group_id].closed = True
            del state.groups[group_id]


def remember(group: Group, alert: Alert) -> None:
    group.word_counts.update(words(alert))
    group.texts.add(normalized(alert))
    group.titles.append(alert.incident.title)
    if alert.fingerprint:
        group.fingerprints.add(alert.fingerprint)
    if alert.incident.service:
        group.services.add(alert.incident.service)


def similarity(seen: frozenset[str], group: Group) -> float:
    """How much of the alert the group's alerts say: each of its words counts by the share of the group's
    alerts that use it (so one odd alert in a big group does not pull in everything it mentions)."""
    if not seen:
        return 0.0
    members = max(1, group.count)
    return sum(min(1.0, group.word_counts.get(w, 0) / members) for w in seen) / len(seen)
