"""Seeded synthetic incidents: labeled data to train on before a team has its own history.

Labels come from hidden causes (scenario, magnitude, service tier, customer impact, breadth, duration), and
the text shows them only indirectly: numbers, host and region names, phrasing, in nine message styles.
Severity is a noisy score over all of them, so no keyword decides it and a model must combine evidence, as it
must on real alerts. Label noise is drawn from its own random stream after the clean labels, so a seed gives
the same text at every noise level and the noisy rows at a lower level are a subset of those at a higher one.
The scenarios and the words around them are data, in ``data/scenarios.yaml`` and ``data/wording.yaml``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from engine.services import SERVICES
from engine.taxonomy import ACTIONS, CATEGORIES, SEVERITIES
from training.dataset import LabeledIncident

T = TypeVar("T")

STYLES: tuple[str, ...] = (
    "alertmanager",
    "grafana",
    "datadog",
    "sentry",
    "cloudwatch",
    "pagerduty",
    "human",
    "statuspage",
    "postmortem",
    "rule",
    "oneliner",
)


@dataclass(frozen=True, slots=True)
class _Scenario:
    """One way a category shows up: its alert, metric, wording, likely root causes and usual fixes.

    Read from ``data/scenarios.yaml``, which describes the fields; templates use the placeholders of
    ``_Fields``.
    """

    key: str
    category: str
    alert: str
    headline: str
    metric: str
    unit: str
    lo: float
    hi: float
    symptoms: tuple[str, ...]
    human: tuple[str, ...]
    exceptions: tuple[str, ...]
    causes: tuple[str, ...]
    actions: tuple[str, ...]
    kinds: tuple[str, ...]
    cloudwatch: tuple[str, str]
    kind_score: float = 0.0


_SCENARIO_FILE = Path(__file__).parent / "data" / "scenarios.yaml"
_UNITS = frozenset({"rate", "pct", "ms", "s", "count", "temp", "ready", "cert"})
_TEXT_FIELDS = ("symptoms", "human", "exceptions", "causes")
_REQUIRED = tuple(f for f in _Scenario.__dataclass_fields__ if f not in ("category", "kind_score"))


def _texts(block: dict[str, object], field: str, allowed: Collection[str] | None = None) -> tuple[str, ...]:
    value = block[field]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{field} must be a non-empty list of non-empty strings")
    unknown = [v for v in value if allowed is not None and v not in allowed]
    if unknown:
        raise ValueError(f"unknown {field}: {', '.join(unknown)}")
    return tuple(value)


def _number(block: dict[str, object], field: str) -> float:
    value = block.get(field, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} must be a number, got {value!r}")
    return float(value)


def _scenario(category: str, block: dict[str, object]) -> _Scenario:
    missing = [f for f in _REQUIRED if f not in block]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    extra = sorted(set(block) - set(_REQUIRED) - {"kind_score"})
    if extra:
        raise ValueError(f"unknown field(s): {', '.join(extra)}")
    for field in ("key", "alert", "headline", "metric"):
        if not isinstance(block[field], str) or not block[field]:
            raise ValueError(f"{field} must be a non-empty string")
    if block["unit"] not in _UNITS:
        raise ValueError(f"unknown unit {block['unit']!r} (one of {', '.join(sorted(_UNITS))})")
    cloudwatch = _texts(block, "cloudwatch")
    if len(cloudwatch) != 2:
        raise ValueError("cloudwatch must be [namespace, metric name]")
    return _Scenario(
        key=str(block["key"]),
        category=category,
        alert=str(block["alert"]),
        headline=str(block["headline"]),
        metric=str(block["metric"]),
        unit=str(block["unit"]),
        lo=_number(block, "lo"),
        hi=_number(block, "hi"),
        symptoms=_texts(block, "symptoms"),
        human=_texts(block, "human"),
        exceptions=_texts(block, "exceptions"),
        causes=_texts(block, "causes"),
        actions=_texts(block, "actions", ACTIONS),
        kinds=_texts(block, "kinds", {s.kind for s in SERVICES.values()} | set(_PSEUDO_KINDS)),
        cloudwatch=(cloudwatch[0], cloudwatch[1]),
        kind_score=_number(block, "kind_score"),
    )


def load_scenarios(path: Path) -> tuple[_Scenario, ...]:
    """The scenarios in ``path``, a YAML mapping of category to scenario blocks, in file order.

    A bad entry raises ``ValueError`` naming the file and the scenario.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of category to a list of scenarios")
    scenarios: list[_Scenario] = []
    for category, blocks in data.items():
        if category not in CATEGORIES:
            raise ValueError(f"{path}: unknown category {category!r} (one of {', '.join(CATEGORIES)})")
        if not isinstance(blocks, list) or not blocks:
            raise ValueError(f"{path}: category {category!r} must hold a non-empty list of scenarios")
        for i, block in enumerate(blocks, 1):
            name = block.get("key") if isinstance(block, dict) else None
            where = f"{path}: scenario {name!r}" if name else f"{path}: scenario #{i} of {category}"
            if not isinstance(block, dict):
                raise ValueError(f"{where}: expected a mapping of fields")
            try:
                sc = _scenario(category, block)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            if any(s.key == sc.key for s in scenarios):
                raise ValueError(f"{where}: key used twice")
            scenarios.append(sc)
    return tuple(scenarios)


def _db_name(name: str) -> str:
    svc = SERVICES[name]
    if svc.kind == "datastore":
        return name
    return next((d for d in svc.depends_on if d.endswith("-db")), f"{name}-db")


_DB = {n: _db_name(n) for n in SERVICES}
# Kinds that are not in the catalog: services backed by a SQL database, and the ones that take money.
_PSEUDO_KINDS = {
    "sql": tuple(n for n in SERVICES if _DB[n].endswith("-db") and _DB[n] in SERVICES),
    "money": ("payments", "checkout", "billing", "orders"),
}
_SCENARIOS = load_scenarios(_SCENARIO_FILE)

# Severity = noisy score cut at fixed thresholds, so a row's label never depends on the rest of the batch.
# The thresholds are the 25/55/83% quantiles of the score (low 25%, medium 30%, high 28%, critical 17%).
# The kind of failure adds each scenario's kind_score (why: see data/scenarios.yaml).
_TIER_SCORE = {1: 0.55, 2: 0.1, 3: -0.3}
_THRESHOLDS = (0.94, 2.0, 3.06)
_SCORE_NOISE = 0.32
_HINT_AGREEMENT = 0.7

_BY_CATEGORY: dict[str, tuple[_Scenario, ...]] = {
    c: tuple(s for s in _SCENARIOS if s.category == c) for c in CATEGORIES
}
_ALL_SERVICES = tuple(SERVICES)
_SERVICES_BY_SCENARIO: dict[str, tuple[str, ...]] = {
    s.key: tuple(
        n
        for n, svc in SERVICES.items()
        if svc.kind in s.kinds or any(n in _PSEUDO_KINDS.get(k, ()) for k in s.kinds)
    )
    for s in _SCENARIOS
}
_KEBAB = {s.alert: re.sub(r"(?<!^)(?=[A-Z][a-z])", "-", s.alert).lower() for s in _SCENARIOS}

_REGIONS = (
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-west-2", "US West (Oregon)"),
    ("eu-west-1", "EU (Ireland)"),
    ("eu-central-1", "EU (Frankfurt)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
)
_VENDORS = ("Auth0", "Cloudflare", "Adyen", "Segment", "Algolia", "Shippo", "Avalara", "Plaid")
_MSG_VENDORS = ("Twilio", "SendGrid", "Mailgun", "Vonage")
_FLAGS = (
    "new_checkout_flow",
    "enable_async_capture",
    "use_v2_pricing",
    "search_rerank_v3",
    "batch_writes",
    "strict_token_audience",
    "edge_cache_bypass",
    "kafka_compression_zstd",
)
_CONFIG_KEYS = ("upstream_timeout_ms", "max_pool_size", "retry_budget", "worker_concurrency", "cache_ttl_s")
_QUOTAS = ("EC2 vCPU", "Lambda concurrency", "EBS gp3 storage", "NAT gateway", "DynamoDB write capacity")
_TOPICS = ("orders.v1", "payments.events", "user-signups", "inventory-updates", "email-outbox")
_TEAMS = ("platform", "payments", "identity", "core-api", "data", "growth", "sre")
_PEOPLE = ("Priya Natarajan", "Tom Becker", "Ana Souza", "Kenji Ito", "Fatima Zahra", "Luca Romano")
_METHODS = ("place", "handle", "process", "charge", "render", "validate", "sync")
_HEX = "0123456789abcdef"
_POD_CHARS = "bcdfghjklmnpqrstvwxz2456789"

_HINT_WORDS: dict[str, dict[str, str]] = {
    "alertmanager": {"critical": "critical", "high": "high", "medium": "warning", "low": "info"},
    "datadog": {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"},
    "sentry": {"critical": "fatal", "high": "error", "medium": "warning", "low": "info"},
    "pagerduty": {"critical": "high", "high": "high", "medium": "low", "low": "low"},
    "statuspage": {
        "critical": "major outage",
        "high": "partial outage",
        "medium": "degraded performance",
        "low": "degraded performance",
    },
}

_WORDING_FILE = Path(__file__).parent / "data" / "wording.yaml"
# Each table's shape: a number of levels (a list of phrases per level), the keys of a mapping (a list of
# phrases per key, or one sentence per key for the decoys), or None (one list of phrases).
_WORDING_SHAPES: dict[str, int | tuple[str, ...] | None] = {
    "impact": 3,
    "human_impact": 3,
    "status_impact": None,
    "breadth": 4,
    "human_breadth": 4,
    "alert_state": 3,
    "human_state": 3,
    "deploy_recent": None,
    "human_deploy_recent": None,
    "deploy_old": None,
    "config_change": None,
    "human_config_change": None,
    "decoys": CATEGORIES,
    "alert_circumstance": ("staging", "transient"),
    "human_circumstance": ("staging", "transient"),
    "planned": None,
    "human_openers": None,
    "human_resolved": None,
}


def _phrases(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a non-empty list of strings")
    return tuple(value)


def load_wording(path: Path) -> dict[str, Any]:
    """The word tables in ``path`` as tuples (and dicts of them), each checked against its shape.

    A bad table raises ``ValueError`` naming the file and the table.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) != set(_WORDING_SHAPES):
        have = set(data) if isinstance(data, dict) else set()
        missing, extra = sorted(set(_WORDING_SHAPES) - have), sorted(have - set(_WORDING_SHAPES))
        raise ValueError(
            f"{path}: tables missing: {', '.join(missing) or '-'}; unknown: {', '.join(extra) or '-'}"
        )
    tables: dict[str, Any] = {}
    for name, shape in _WORDING_SHAPES.items():
        value, what = data[name], f"{path}: table {name!r}"
        if shape is None:
            tables[name] = _phrases(value, what)
        elif isinstance(shape, int):
            if not isinstance(value, list) or len(value) != shape:
                raise ValueError(f"{what} must be a list of {shape} levels")
            tables[name] = tuple(_phrases(v, f"{what}, level {i}") for i, v in enumerate(value))
        else:
            if not isinstance(value, dict) or set(value) != set(shape):
                raise ValueError(f"{what} must have exactly the keys {', '.join(shape)}")
            if name == "decoys":
                if not all(isinstance(v, str) and v for v in value.values()):
                    raise ValueError(f"{what}: each key holds one sentence")
                tables[name] = dict(value)
            else:
                tables[name] = {k: _phrases(v, f"{what}, {k}") for k, v in value.items()}
    return tables


_WORDING = load_wording(_WORDING_FILE)
_IMPACT: tuple[tuple[str, ...], ...] = _WORDING["impact"]
_HUMAN_IMPACT: tuple[tuple[str, ...], ...] = _WORDING["human_impact"]
_STATUS_IMPACT: tuple[str, ...] = _WORDING["status_impact"]
_BREADTH: tuple[tuple[str, ...], ...] = _WORDING["breadth"]
_HUMAN_BREADTH: tuple[tuple[str, ...], ...] = _WORDING["human_breadth"]
_ALERT_STATE: tuple[tuple[str, ...], ...] = _WORDING["alert_state"]
_HUMAN_STATE: tuple[tuple[str, ...], ...] = _WORDING["human_state"]
_DEPLOY_RECENT: tuple[str, ...] = _WORDING["deploy_recent"]
_HUMAN_DEPLOY_RECENT: tuple[str, ...] = _WORDING["human_deploy_recent"]
_DEPLOY_OLD: tuple[str, ...] = _WORDING["deploy_old"]
_CONFIG_CHANGE: tuple[str, ...] = _WORDING["config_change"]
_HUMAN_CONFIG_CHANGE: tuple[str, ...] = _WORDING["human_config_change"]
_DECOYS: dict[str, str] = _WORDING["decoys"]
_ALERT_CIRCUMSTANCE: dict[str, tuple[str, ...]] = _WORDING["alert_circumstance"]
_HUMAN_CIRCUMSTANCE: dict[str, tuple[str, ...]] = _WORDING["human_circumstance"]
_PLANNED: tuple[str, ...] = _WORDING["planned"]
_HUMAN_OPENERS: tuple[str, ...] = _WORDING["human_openers"]
_HUMAN_RESOLVED: tuple[str, ...] = _WORDING["human_resolved"]
# Circumstances that make an alert minor whatever its numbers say, as an on-call engineer reads them: not
# production, already over, or announced in advance. "resolved": the notification a source sends when the
# alert clears, repeating what fired.
_CIRCUMSTANCES = ("staging", "transient", "planned", "resolved")
_CIRCUMSTANCE_SHARE = (0.06, 0.05, 0.025, 0.04)
_DEPLOY_AWARE = frozenset({"deployment", "software_bug", "database", "resource_exhaustion"})
_FAILOVER_AWARE = frozenset({"database", "hardware"})  # a standby to fail over to is usual for these


@dataclass(slots=True)
class _Row:
    """The hidden causes of one incident, and everything its text is rendered from."""

    sc: _Scenario
    svc: str
    tier: int
    sev: str
    hint: str
    impact: int
    breadth: int
    dur: int
    m: float
    raw: float
    deploy: str  # "recent", "old" or ""
    config: bool
    f: _Fields
    rng: random.Random
    circumstance: str = ""  # "", or one of _CIRCUMSTANCES

    def t(self, template: str) -> str:
        return template.format_map(self.f)

    def pick(self, options: tuple[str, ...]) -> str:
        return self.t(_choice(self.rng, options))


def _choice(rng: random.Random, seq: Sequence[T]) -> T:
    """``rng.choice`` at a third of the cost (one float per draw), which keeps 50k rows within seconds."""
    return seq[int(rng.random() * len(seq))]


def _int(rng: random.Random, a: int, b: int) -> int:
    return a + int(rng.random() * (b - a + 1))


def _token(rng: random.Random, alphabet: str, k: int) -> str:
    x = int(rng.random() * len(alphabet) ** k)
    out = []
    for _ in range(k):
        x, d = divmod(x, len(alphabet))
        out.append(alphabet[d])
    return "".join(out)


def _level(unit: str, lo: float, hi: float, m: float) -> float:
    """The metric at magnitude ``m``: log-scaled for rates, latencies and counts, linear for percentages."""
    if unit in ("rate", "ms", "s", "count"):
        return lo * (hi / lo) ** m
    return lo + (hi - lo) * m


def _fmt(unit: str, v: float) -> str:
    if unit == "rate":
        return f"{v:.2f}%" if v < 1 else f"{v:.1f}%"
    if unit == "pct":
        return f"{v:.1f}%"
    if unit == "ms":
        return f"{v:.0f}ms" if v < 1000 else f"{v / 1000:.1f}s"
    if unit == "s":
        return f"{v:.0f}s" if v < 120 else f"{v / 60:.0f} minutes"
    if unit == "temp":
        return f"{v:.0f}°C"
    return f"{v:,.0f}"


def _metric(sc: _Scenario, m: float, rng: random.Random) -> tuple[float, str, str, str]:
    """(raw value, its text, the alert threshold as text and as a bare number) for magnitude ``m``."""
    if sc.unit == "ready":
        n = _int(rng, 3, 12)
        ready = min(n - 1, max(0, round(n * (1 - m))))
        return ready, f"{ready}/{n}", str(n), str(n)
    if sc.unit == "cert":
        if m < 0.65:
            days = 1 + round(29 * (1 - m / 0.65))
            return days, f"expires in {days} days", "30 days", "30"
        hours = 1 + round((m - 0.65) * 140)
        return -hours / 24, f"expired {hours}h ago", "30 days", "30"
    v = _level(sc.unit, sc.lo, sc.hi, m)
    return v, _fmt(sc.unit, v), _fmt(sc.unit, sc.lo), f"{sc.lo:g}"


def _host(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return f"ip-10-{_int(rng, 0, 31)}-{_int(rng, 0, 255)}-{_int(rng, 2, 254)}.ec2.internal"
    if r < 0.75:
        return f"db-prod-{_int(rng, 1, 12)}"
    return f"gke-prod-pool-{_int(rng, 1, 4)}-{_token(rng, _HEX, 8)}-{_token(rng, _HEX, 4)}"


def _score(
    sc: _Scenario, m: float, tier: int, impact: int, breadth: int, dur: int, rng: random.Random
) -> float:
    """How bad it is: magnitude first, then the kind of failure, tier, customer impact, breadth and
    duration, plus noise."""
    return (
        2.0 * m
        + sc.kind_score
        + _TIER_SCORE[tier]
        + 0.45 * impact
        + 0.18 * breadth
        + 0.25 * math.log10(dur / 15)
        + rng.gauss(0.0, _SCORE_NOISE)
    )


def _severity(score: float) -> str:
    return SEVERITIES[3 - sum(score > t for t in _THRESHOLDS)]


def _hint(sev: str, rng: random.Random) -> str:
    """The source's own severity: right ~70% of the time, else one level off (as real routing rules are)."""
    if rng.random() < _HINT_AGREEMENT:
        return sev
    i = SEVERITIES.index(sev)
    if i == 0:
        return SEVERITIES[1]
    if i == 3:
        return SEVERITIES[2]
    return SEVERITIES[i + _choice(rng, (-1, 1))]


def _actions(r: _Row) -> tuple[str, ...]:
    """Ranked remediation: the scenario's fix, shaped by recent changes, severity and tier."""
    acts = list(r.sc.actions)
    if r.sc.key == "surge" and r.sev in ("critical", "high"):
        acts = ["throttle_traffic", "scale_up"]
    if r.deploy == "recent" and r.sc.category in _DEPLOY_AWARE:
        acts.insert(0, "rollback_deploy")
    if r.sev == "critical" and r.tier == 1 and r.sc.category in _FAILOVER_AWARE:
        acts.append("failover")
    if r.sev == "low" and r.rng.random() < 0.6:
        if acts[0] in ("rollback_deploy", "revert_config"):  # undoing a fresh change stays first
            acts = [acts[0], "monitor"]
        else:
            acts = ["monitor", acts[0]] if r.rng.random() < 0.5 else ["monitor"]
    return tuple(dict.fromkeys(acts))[:3]


def _typos(text: str, rng: random.Random) -> str:
    """Swap or drop a letter in ~5% of longer words, as people type in a hurry."""
    words = text.split(" ")
    for i, w in enumerate(words):
        if len(w) > 3 and w.isalpha() and rng.random() < 0.05:
            j = rng.randrange(1, len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
    return " ".join(words)


def _context(r: _Row) -> str:
    """The recent change (or its absence) that drives the ranked actions, as a sentence."""
    if r.config:
        return r.pick(_CONFIG_CHANGE)
    if r.deploy == "recent":
        return r.pick(_DEPLOY_RECENT)
    if r.deploy == "old":
        return r.pick(_DEPLOY_OLD)
    return ""


def _extras(r: _Row) -> str:
    """Impact words (when the source would say them), the change context, and sometimes a decoy."""
    parts = [r.pick(_ALERT_CIRCUMSTANCE[r.circumstance])] if r.circumstance in _ALERT_CIRCUMSTANCE else []
    if r.impact or r.rng.random() < 0.55:
        parts.append(r.pick(_IMPACT[r.impact]))
    ctx = _context(r)
    if ctx:
        parts.append(ctx)
    if r.rng.random() < 0.2:
        cat = _choice(r.rng, CATEGORIES)
        blocked = (
            r.sc.category == cat
            or (cat == "deployment" and r.deploy)
            or (cat == "configuration" and r.config)
        )
        if not blocked:
            parts.append(_DECOYS[cat])
    return " ".join(parts)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _state(r: _Row, words: tuple[tuple[str, ...], ...]) -> str:
    """How far gone it is, in the words people use (mild, worse, broken), by the magnitude shown; said
    in 60% of messages. They lean with severity, as the magnitude does, but never decide it."""
    if r.rng.random() >= 0.6:
        return ""
    return ", " + _choice(r.rng, words[0 if r.m < 0.35 else 1 if r.m < 0.7 else 2])


def _symptom(r: _Row) -> str:
    """What is wrong and where: the scenario's symptom with its magnitude, then the breadth and state."""
    return f"{_cap(r.pick(r.sc.symptoms))} {r.pick(_BREADTH[r.breadth])}{_state(r, _ALERT_STATE)}"


def _alertmanager(r: _Row) -> tuple[str, str]:
    firing = (1, _int(r.rng, 2, 4), _int(r.rng, 5, 12), _int(r.rng, 13, 40))[r.breadth]
    hint = _HINT_WORDS["alertmanager"][r.hint]
    env = "staging" if r.circumstance == "staging" else "prod"
    where = (
        f" - instance = {r.f['host']}:9100\n - pod = {r.f['pod']}"
        if r.breadth < 2
        else (f" - region = {r.f['region']}" if r.breadth == 2 else " - cluster = prod-global")
    )
    desc = (
        f"Labels:\n - alertname = {r.sc.alert}\n - severity = {hint}\n - service = {r.svc}\n"
        f" - namespace = {r.svc}-{env}\n{where}\nAnnotations:\n - summary = {_cap(r.t(r.sc.headline))}\n"
        f" - description = {_symptom(r)}, for {r.dur}m. {_extras(r)}\n"
        f" - runbook_url = https://runbooks.example.com/{_KEBAB[r.sc.alert]}\n"
        f"Source: http://prometheus-k8s-0.monitoring:9090/graph?g0.expr={r.sc.metric}%3E{r.f['thr_num']}"
    )
    return f"[FIRING:{firing}] {r.sc.alert} {r.svc} ({hint})", desc


def _grafana(r: _Row) -> tuple[str, str]:
    uid = _token(r.rng, _POD_CHARS, 9)
    folder = _choice(r.rng, ("Infrastructure", "Services", "SLOs", r.svc.title()))
    desc = (
        f"**Firing**\nValue: B0={r.raw:.1f}\nLabels:\n - alertname = {_cap(r.t(r.sc.headline))}\n"
        f" - grafana_folder = {folder}\n - service = {r.svc}\n - region = {r.f['region']}\nAnnotations:\n"
        f" - summary = {_symptom(r)} for {r.dur}m. {_extras(r)}\n"
        f"Source: https://grafana.example.com/alerting/grafana/{uid}/view\n"
        f"Dashboard: https://grafana.example.com/d/{uid}/{r.svc}-overview"
    )
    return f"[Alerting] {_cap(r.t(r.sc.headline))}", desc


def _datadog(r: _Row) -> tuple[str, str]:
    window = _choice(r.rng, (5, 10, 15))
    metric = r.sc.metric.replace("_", ".")
    query = f"avg(last_{window}m):avg:{metric}{{service:{r.svc},env:prod}} > {r.f['thr_num']}"
    desc = (
        f"{_symptom(r)}.\n"
        f"Value {r.f['v']} crossed the threshold {r.f['thr']}, triggered for {r.dur}m.\n{_extras(r)}\n"
        f"Query: {query}\n@slack-incidents @pagerduty-{r.svc}"
    )
    return f"[{_HINT_WORDS['datadog'][r.hint]}] Triggered: {_cap(r.t(r.sc.headline))}", desc


def _sentry(r: _Row) -> tuple[str, str]:
    events = max(3, round(10 ** (1 + 3.5 * r.m) * r.rng.uniform(0.6, 1.4)))
    users = r.f["users"] if r.impact else str(_int(r.rng, 0, 12))
    culprit = f"{r.svc.title().replace('-', '')}Service.{_choice(r.rng, _METHODS)}"
    short_id = f"{r.svc.upper()}-{_token(r.rng, _POD_CHARS.upper(), 3)}"
    desc = (
        f"level: {_HINT_WORDS['sentry'][r.hint]}\nevents: {events:,} in the last {r.dur}m\n"
        f"users affected: {users}\nrelease: {r.svc}@{r.f['ver'][1:]}\nculprit: {culprit}\n"
        f"environment: production\nserver_name: {r.f['pod']}\n"
        f"message: {_symptom(r)}. {_extras(r)}\n"
        f"https://acme.sentry.io/issues/{short_id}/"
    )
    return r.pick(r.sc.exceptions), desc


def _cloudwatch(r: _Row) -> tuple[str, str]:
    env = f"{_choice(r.rng, ('dev', 'staging'))}-" if r.circumstance == "staging" else ""
    alarm = f"{env}{r.svc}-{_KEBAB[r.sc.alert]}"
    code, name = r.f["region"], r.f["region_name"]
    namespace, metric = r.sc.cloudwatch
    crossed = (
        f"Threshold Crossed: 1 out of the last 1 datapoints [{r.raw:.1f} ({r.f['date']} {r.f['hhmm']}:00)] "
        f"was greater than or equal to the threshold ({r.f['thr_num']})."
    )
    desc = (
        f'You are receiving this email because your Amazon CloudWatch Alarm "{alarm}" in the {name} '
        f'region has entered the ALARM state, because "{crossed}"\nAlarm Details:\n- Name: {alarm}\n'
        f"- Description: {_symptom(r)}. {_extras(r)}\n"
        f"- State Change: OK -> ALARM\n- Reason for State Change: {crossed}\n"
        f"Monitored Metric:\n- MetricNamespace: {namespace}\n- MetricName: {metric}\n"
        f"- Dimensions: [Service = {r.svc}]\n- Period: 60 seconds\n- Statistic: Average"
    )
    return f'ALARM: "{alarm}" in {_choice(r.rng, (name, code))}', desc


def _pagerduty(r: _Row) -> tuple[str, str]:
    desc = (
        f"Urgency: {_HINT_WORDS['pagerduty'][r.hint]}\nService: {r.svc} (production)\n"
        f"Escalation policy: {_choice(r.rng, _TEAMS)} on-call\nAssigned to: {_choice(r.rng, _PEOPLE)}\n"
        f"Details: {_symptom(r)}, open for {r.dur} minutes. "
        f"{_extras(r)}\nAlert: {r.sc.alert}"
    )
    return f"[#{_int(r.rng, 10000, 99999)}] Triggered: {_cap(r.t(r.sc.headline))}", desc


def _human(r: _Row) -> tuple[str, str]:
    """A terse lower-case chat message: the symptom first, then whatever the person adds."""
    rng = r.rng
    title = _choice(rng, _HUMAN_OPENERS) + r.pick(r.sc.human)
    parts = [r.pick(_HUMAN_BREADTH[r.breadth]) + _state(r, _HUMAN_STATE)]
    if r.impact or rng.random() < 0.4:
        impact = r.pick(_HUMAN_IMPACT[r.impact])
        if rng.random() < 0.5:
            title = f"{title}, {impact}"
        else:
            parts.append(impact)
    if r.config:
        parts.append(r.pick(_HUMAN_CONFIG_CHANGE))
    elif r.deploy == "recent":
        parts.append(r.pick(_HUMAN_DEPLOY_RECENT))
    elif r.deploy == "old":
        parts.append(r.t("last deploy was {days} days ago"))
    if r.circumstance in _HUMAN_CIRCUMSTANCE:
        parts.append(r.pick(_HUMAN_CIRCUMSTANCE[r.circumstance]))
    rest = [f"been like this {r.dur} min", f"grafana: {r.f['v']}", "can someone look?"]
    rng.shuffle(rest)
    rng.shuffle(parts)
    return _typos(title.lower(), rng), _typos(", ".join(parts + rest[: _int(rng, 1, 3)]).lower(), rng)


def _rule(r: _Row) -> tuple[str, str]:
    """An alerting rule as a chat integration posts it: the rule's name, then its summary and a one-line
    description with the value; no labels block. Most real alerts are this short."""
    desc = f"{_cap(r.t(r.sc.headline))}. {_symptom(r)}"
    if r.rng.random() < 0.5:
        desc += f" for the last {r.dur} minutes"
    desc += "."
    if r.impact or r.rng.random() < 0.3:
        desc += " " + r.pick(_IMPACT[r.impact])
    if r.config or r.deploy == "recent":  # the change the actions undo: without it they are guesses
        desc += " " + _context(r)
    if r.circumstance in _ALERT_CIRCUMSTANCE:
        desc += " " + r.pick(_ALERT_CIRCUMSTANCE[r.circumstance])
    title = r.sc.alert
    if r.rng.random() < 0.3:  # rule authors often name the level in the alert ("...Critical", "...Warning")
        title += _cap(_HINT_WORDS["alertmanager"][r.hint])
    return title, desc


def _oneliner(r: _Row) -> tuple[str, str]:
    """One short line typed by a person: what broke, sometimes who is hit or what changed, nothing else."""
    rng = r.rng
    line = _choice(rng, _HUMAN_OPENERS) + r.pick(r.sc.human)
    if r.impact == 2 or rng.random() < 0.4:
        line += ", " + r.pick(_HUMAN_IMPACT[r.impact])
    if r.config and rng.random() < 0.6:
        line += ", " + r.pick(_HUMAN_CONFIG_CHANGE)
    elif r.deploy == "recent" and rng.random() < 0.6:
        line += ", " + r.pick(_HUMAN_DEPLOY_RECENT)
    line += _state(r, _HUMAN_STATE)
    if r.circumstance in _HUMAN_CIRCUMSTANCE:
        line += ", " + r.pick(_HUMAN_CIRCUMSTANCE[r.circumstance])
    return _typos(line if rng.random() < 0.5 else _cap(line), rng), ""


def _statuspage(r: _Row) -> tuple[str, str]:
    """Public status updates: vague impact words, the cause only once identified, no metrics."""
    name = r.svc.replace("-", " ").title()
    status = _HINT_WORDS["statuspage"][r.hint]
    titles = (
        f"Degraded performance for {name}",
        f"Incident with {name}",
        f"{name}: {status}",
        f"Issues with {name}",
    )
    where = "" if r.breadth < 2 else (f" in {r.f['region_name']}" if r.breadth == 2 else " in all regions")
    impact = _STATUS_IMPACT[r.impact + (r.breadth > 2)]
    lines = [f"Investigating - We are investigating reports of {impact} for {name}{where}."]
    if r.impact:
        lines.append(
            r.pick(("About {upct}% of requests are affected.", "Some customers may be unable to {verb}."))
        )
    if r.config or r.deploy == "recent":
        lines.append(f"Update - {_context(r)}")
    if r.rng.random() < 0.7:
        lines.append(
            f"Identified - The cause has been identified: {r.pick(r.sc.causes)}. A fix is being rolled out."
        )
    if r.rng.random() < 0.5:
        lines.append("Resolved - This incident has been resolved.")
    lines.append(f"Affected components: {name} ({status})")
    return _choice(r.rng, titles), "\n".join(lines)


def _postmortem(r: _Row) -> tuple[str, str]:
    """A written summary after the fact: impact and root cause spelled out, remediation left out."""
    kind = _choice(r.rng, ("Post-incident review", "Incident summary", "Postmortem"))
    desc = (
        f"Summary: starting {r.f['hhmm']} UTC, for {r.dur} minutes, {r.pick(r.sc.symptoms)} "
        f"{r.pick(_BREADTH[r.breadth])}.\nImpact: {r.pick(_IMPACT[r.impact])}\n"
        f"Trigger: {_context(r) or 'none identified.'}\nRoot cause: {r.pick(r.sc.causes)}.\n"
        f"Detection: {r.sc.alert} alert after {_int(r.rng, 1, 15)} minutes."
    )
    return f"{kind}: {r.t(r.sc.headline)}", desc


def _resolved(style: str, r: _Row, title: str, desc: str) -> tuple[str, str]:
    """The notice a source sends when the alert clears: its own resolved marker on what had fired (the
    sources repeat the firing annotations, so the symptom words stay)."""
    if style == "alertmanager":
        return re.sub(r"^\[FIRING:\d+\]", "[RESOLVED]", title), desc
    if style == "grafana":
        marker = _choice(r.rng, ("[OK]", "[RESOLVED]"))
        return title.replace("[Alerting]", marker), desc.replace("**Firing**", "**Resolved**")
    if style == "datadog":
        return title.replace("Triggered:", "Recovered:"), desc.replace("triggered for", "recovered after")
    if style == "cloudwatch":
        desc = desc.replace("the ALARM state", "the OK state").replace("OK -> ALARM", "ALARM -> OK")
        return title.replace("ALARM:", "OK:", 1), desc
    if style == "pagerduty":
        return title.replace("Triggered:", "Resolved:"), desc
    if style in ("human", "oneliner"):
        return title + r.pick(_HUMAN_RESOLVED), desc
    return f"Resolved: {title}" if style == "sentry" else f"[RESOLVED] {title}", desc


_RENDER = {
    "alertmanager": _alertmanager,
    "grafana": _grafana,
    "datadog": _datadog,
    "sentry": _sentry,
    "cloudwatch": _cloudwatch,
    "pagerduty": _pagerduty,
    "human": _human,
    "statuspage": _statuspage,
    "postmortem": _postmortem,
    "rule": _rule,
    "oneliner": _oneliner,
}


def _verb(svc: str) -> str:
    if svc in ("payments", "billing"):
        return "pay"
    if svc in ("checkout", "cart"):
        return "check out"
    if svc in ("auth", "login"):
        return "log in"
    return f"use {svc}"


class _Fields(dict[str, str]):
    """Template placeholders, each drawn the first time a template asks for it.

    Rows use a handful of the placeholders; drawing only those keeps 50k rows well within seconds.
    """

    __slots__ = ("impact", "m", "rng")

    def __init__(self, values: dict[str, str], m: float, impact: int, rng: random.Random) -> None:
        super().__init__(values)
        self.m, self.impact, self.rng = m, impact, rng

    def __missing__(self, key: str) -> str:
        value = _LAZY[key](self)
        self[key] = value
        return value


def _upct(f: _Fields) -> str:
    lo, hi = ((0.5, 3.0), (2.0, 20.0), (25.0, 100.0))[f.impact]
    u = f.rng.uniform(lo, hi)
    return f"{u:.0f}" if u >= 1 else f"{u:.1f}"


def _users(f: _Fields) -> str:
    lo, hi = ((1, 40), (30, 4000), (3000, 250000))[f.impact]
    return f"{_int(f.rng, lo, hi):,}"


_LAZY = {
    "host": lambda f: _host(f.rng),
    "node": lambda f: f["host"],
    "pod": lambda f: f"{f['svc']}-{_token(f.rng, _HEX, 9)}-{_token(f.rng, _POD_CHARS, 5)}",
    "az": lambda f: f"{f['region']}{_choice(f.rng, 'abc')}",
    "az2": lambda f: f"{f['region']}{_choice(f.rng, 'df')}",
    "n": lambda f: str(_int(f.rng, 6, 40)),
    "k": lambda f: str(_int(f.rng, 2, max(2, int(f["n"]) // 2))),
    "ver": lambda f: f"v{_int(f.rng, 1, 4)}.{_int(f.rng, 0, 30)}.{_int(f.rng, 0, 12)}",
    "mins": lambda f: str(_int(f.rng, 2, 45)),
    "days": lambda f: str(_int(f.rng, 2, 20)),
    "hhmm": lambda f: f"{_int(f.rng, 0, 23):02d}:{_int(f.rng, 0, 59):02d}",
    "date": lambda f: f"2024-{_int(f.rng, 1, 12):02d}-{_int(f.rng, 1, 28):02d}",
    "flag": lambda f: _choice(f.rng, _FLAGS),
    "key": lambda f: _choice(f.rng, _CONFIG_KEYS),
    "quota": lambda f: _choice(f.rng, _QUOTAS),
    "topic": lambda f: _choice(f.rng, _TOPICS),
    "rack": lambda f: f"{_choice(f.rng, 'ABCDEF')}{_int(f.rng, 1, 24)}",
    "vendor": lambda f: _choice(f.rng, _VENDORS),
    "msg_vendor": lambda f: _choice(f.rng, _MSG_VENDORS),
    "p99": lambda f: _fmt("ms", 150 * 60 ** min(1.0, f.m + f.rng.gauss(0, 0.1))),
    "waiting": lambda f: str(round(5 * 200**f.m)),
    "restarts": lambda f: str(1 + round(f.m * 25)),
    "throttled": lambda f: str(round(10 + 80 * f.m)),
    "mult": lambda f: f"{1.5 + 6 * f.m:.1f}",
    "lag": lambda f: f"{round(2000 * 1000**f.m):,}",
    "ips": lambda f: f"{round(3 * 3000**f.m):,}",
    "upct": _upct,
    "users": _users,
}


def _clean_row(i: int, seed: int, rng: random.Random) -> LabeledIncident:
    """One incident with clean labels, all drawn from ``rng``."""
    category = _choice(rng, CATEGORIES)
    sc = _choice(rng, _BY_CATEGORY[category])
    svc = _choice(rng, _SERVICES_BY_SCENARIO[sc.key] if rng.random() < 0.85 else _ALL_SERVICES)
    tier = SERVICES[svc].tier
    style = _choice(rng, STYLES)
    m = rng.random()
    p = 0.75 * m + 0.25 * rng.random() + (0.1 if tier == 1 else -0.15 if tier == 3 else 0.0)
    impact = 0 if p < 0.35 else 1 if p < 0.7 else 2
    q = 0.5 * m + 0.5 * rng.random()
    breadth = 0 if q < 0.3 else 1 if q < 0.5 else 2 if q < 0.72 else 3
    dur = max(1, min(600, round(math.exp(rng.gauss(2.6, 0.9)))))
    sev = fired = _severity(_score(sc, m, tier, impact, breadth, dur, rng))
    circumstance, u = "", rng.random()
    if style not in ("statuspage", "postmortem"):  # published after the fact, about production
        for name, share in zip(_CIRCUMSTANCES, _CIRCUMSTANCE_SHARE, strict=True):
            if u < share:
                # a resolved notice repeats the impact that fired; the others never had any
                circumstance, sev, impact = name, "low", impact if name == "resolved" else 0
                break
            u -= share
    config = category == "configuration"
    if category == "deployment":
        deploy = "recent"
    elif config:
        deploy = ""
    else:
        d = rng.random()
        p_recent = 0.12 if category in _DEPLOY_AWARE else 0.05
        deploy = "recent" if d < p_recent else "old" if d < p_recent + 0.2 else ""
    shown = min(1.0, max(0.0, m + rng.gauss(0.0, 0.05)))
    raw, v, thr, thr_num = _metric(sc, shown, rng)
    region, region_name = _choice(rng, _REGIONS)
    values = {
        "svc": svc,
        "v": v,
        "thr": thr,
        "thr_num": thr_num,
        "region": region,
        "region_name": region_name,
    }
    fields = _Fields({**values, "db": _DB[svc], "verb": _verb(svc)}, shown, impact, rng)
    r = _Row(
        sc,
        svc,
        tier,
        sev,
        _hint(fired if circumstance == "resolved" else sev, rng),  # a resolved notice keeps its level
        impact,
        breadth,
        dur,
        shown,
        raw,
        deploy,
        config,
        fields,
        rng,
        circumstance,
    )
    if circumstance == "planned":  # a person's announcement, not an alert: nothing to do but watch
        style, title, desc, actions = "oneliner", r.pick(_PLANNED), "", ("monitor",)
    else:
        actions = ("monitor",) if circumstance in ("transient", "resolved") else _actions(r)
        title, desc = _RENDER[style](r)
        if circumstance == "resolved":
            title, desc = _resolved(style, r, title, desc)
    tags = ("synthetic", "env:prod", f"region:{fields['region']}", f"team:{_choice(rng, _TEAMS)}")
    return LabeledIncident(
        title=title,
        description=desc,
        service=svc,
        severity=sev,
        category=category,
        actions=actions,
        source=f"synthetic/{style}",
        provider=None,
        id=f"syn-{seed}-{i}",
        tags=tags,
    )


def _noisy(row: LabeledIncident, label_noise: float, rng: random.Random) -> LabeledIncident:
    """Independently replace severity, category and actions with probability ``label_noise``.

    Every row draws the same numbers whatever ``label_noise`` is, so noise levels nest for a given seed.
    """
    u_sev, u_cat, u_act = rng.random(), rng.random(), rng.random()
    sev = SEVERITIES[(SEVERITIES.index(str(row.severity)) + _int(rng, 1, 3)) % len(SEVERITIES)]
    cat = CATEGORIES[(CATEGORIES.index(str(row.category)) + _int(rng, 1, 8)) % len(CATEGORIES)]
    acts = tuple(rng.sample(ACTIONS, _int(rng, 1, 3)))
    if min(u_sev, u_cat, u_act) >= label_noise:
        return row
    return replace(
        row,
        severity=sev if u_sev < label_noise else row.severity,
        category=cat if u_cat < label_noise else row.category,
        actions=acts if u_act < label_noise else row.actions,
    )


def generate_incidents(n: int, seed: int = 0, label_noise: float = 0.0) -> list[LabeledIncident]:
    """``n`` reproducible synthetic incidents; the first ``k`` rows are the same for any ``n >= k``."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError("label_noise must be in [0, 1]")
    rng = random.Random(seed)
    noise_rng = random.Random(f"{seed}:label-noise")
    rows = []
    for i in range(n):
        row = _clean_row(i, seed, rng)
        rows.append(_noisy(row, label_noise, noise_rng) if label_noise else row)
    return rows
