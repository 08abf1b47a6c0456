"""CloudWatch alarms: AWS Chatbot (Amazon Q Developer in chat applications) and SNS-to-Slack relays.

AWS Chatbot titles ``CloudWatch Alarm | HighCPU | us-east-1 | Account: 123456789012`` with the alarm
description and the state reason (``Threshold Crossed: 1 datapoint [97.5 (...)] was greater than the
threshold (80.0)``) as text; it says OK by colour, emoji and a reason that "was not greater than".
Relays post the SNS subject (``ALARM: "HighCPU" in US East (N. Virginia)``, ``OK: ...``), fields such as
``Alarm Name`` / ``Current State``, or the raw SNS JSON (``AlarmName``, ``NewStateValue``, ``Region``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .alert import Alert, make_alert
from .fields import as_description, parse_labels, remove_line
from .slack_text import Flat

SOURCE = "cloudwatch"
_CHATBOT = re.compile(
    r"^.{0,40}?CloudWatch Alarm\s*\|\s*(?P<name>[^|\n]{1,255}?)\s*\|\s*(?P<region>[^|\n]{1,60}?)\s*(?:\||$)",
    re.IGNORECASE | re.MULTILINE,
)
_SNS = re.compile(
    r"^\W{0,10}(?P<state>ALARM|OK|INSUFFICIENT_DATA)\s*:\s*\"(?P<name>[^\"\n]{1,255})\"\s+in\s+(?P<region>[^\n]{1,60})$",
    re.MULTILINE,
)
_STATE_KEYS = ("current_state", "new_state", "state", "newstatevalue")  # never "old_state"
_STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")
_NOT_CROSSED = re.compile(r"\bwas not (?:greater|less)\b|\bno longer\b", re.IGNORECASE)
_OK_EMOJI = (":white_check_mark:", ":large_green_circle:", ":heavy_check_mark:", "✅")
_DIMENSIONS = (  # the resource an alarm watches, most specific first
    "ServiceName",
    "FunctionName",
    "DBInstanceIdentifier",
    "DBClusterIdentifier",
    "CacheClusterId",
    "QueueName",
    "TableName",
    "LoadBalancer",
    "TargetGroup",
    "AutoScalingGroupName",
    "ClusterName",
    "InstanceId",
)
_DIMENSION = re.compile(r"\b(" + "|".join(_DIMENSIONS) + r")\b\W{0,6}(?:value\W{1,6})?([\w.\-/]{1,200})")
_RESOURCE_ID = re.compile(r"[\w.\-/]{1,200}")
_REGIONS = {  # SNS subjects name regions, Chatbot uses codes: the same alarm must fingerprint the same
    "us east (n. virginia)": "us-east-1",
    "us east (ohio)": "us-east-2",
    "us west (n. california)": "us-west-1",
    "us west (oregon)": "us-west-2",
    "eu (ireland)": "eu-west-1",
    "europe (ireland)": "eu-west-1",
    "eu - ireland": "eu-west-1",
    "eu (london)": "eu-west-2",
    "europe (london)": "eu-west-2",
    "eu (paris)": "eu-west-3",
    "europe (paris)": "eu-west-3",
    "eu (frankfurt)": "eu-central-1",
    "europe (frankfurt)": "eu-central-1",
    "europe (stockholm)": "eu-north-1",
    "asia pacific (tokyo)": "ap-northeast-1",
    "asia pacific (seoul)": "ap-northeast-2",
    "asia pacific (singapore)": "ap-southeast-1",
    "asia pacific (sydney)": "ap-southeast-2",
    "asia pacific (mumbai)": "ap-south-1",
    "canada (central)": "ca-central-1",
    "south america (sao paulo)": "sa-east-1",
}


def _region(name: str) -> str:
    key = " ".join(name.lower().split())
    return _REGIONS.get(key, key)


def _sns_json(text: str) -> dict[str, Any]:
    """The SNS message when a relay posted it raw, else {} (bounded: the text is already capped)."""
    start = text.find("{")
    if start < 0 or '"AlarmName"' not in text:
        return {}
    try:
        data = json.loads(text[start : text.rfind("}") + 1])
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def detect(message: dict[str, Any], flat: Flat) -> bool:
    head = flat.head
    return (
        bool(_CHATBOT.search(head) or _SNS.search(head))
        or ('"AlarmName"' in flat.text[:2_000] and '"NewStateValue"' in flat.text)
        or any("console.aws.amazon.com/cloudwatch" in u for u in flat.urls)
    )


def _watched(data: dict[str, Any]) -> str | None:
    """The most specific dimension's value in an SNS message's JSON. Read from the parsed objects, not
    the text: AWS writes a dimension name-first or value-first, and the text pattern only reads the first."""
    trigger = data.get("Trigger")
    dims = trigger.get("Dimensions") if isinstance(trigger, dict) else None
    found = {
        d.get("name"): d.get("value")
        for d in (dims if isinstance(dims, list) else [])
        if isinstance(d, dict) and isinstance(d.get("name"), str) and isinstance(d.get("value"), str)
    }
    # the characters the text pattern accepts: a resource ID, not free text
    return next((found[k] for k in _DIMENSIONS if _RESOURCE_ID.fullmatch(found.get(k) or "")), None)


def parse(message: dict[str, Any], flat: Flat) -> Alert:
    lines = flat.text.split("\n")
    labels = parse_labels(lines)
    data = _sns_json(flat.text)
    chatbot, sns = _CHATBOT.search(flat.head), _SNS.search(flat.head)
    found = sns or chatbot
    name = str(data.get("AlarmName") or (found.group("name") if found else labels.get("alarm_name", "")))
    region = str(data.get("Region") or (found.group("region") if found else labels.get("region", "")))
    named = (labels.get(key, "").upper() for key in _STATE_KEYS)
    state = (sns.group("state") if sns else None) or str(data.get("NewStateValue") or "").upper()
    state = state if state in _STATES else next((s for s in named if s in _STATES), "")
    if not state:  # Chatbot says it without words
        ok = "good" in flat.colors or any(e in flat.head for e in _OK_EMOJI) or _NOT_CROSSED.search(flat.text)
        state = "OK" if ok else "ALARM"
    if found:  # the whole line: Chatbot's goes on with "| Account: ..."
        title_line = next((line for line in lines if found.group(0).strip() in line), lines[0])
    else:
        title_line = f"{state}: {name}" if name else lines[0]
    rest = remove_line(lines, title_line) if found else lines
    watched = _watched(data)
    if not watched and (dimension := _DIMENSION.search(flat.text[:5_000])):  # Chatbot and relay texts
        watched = dimension.group(2)
    description = as_description(rest)
    if f"state={state}" not in description.replace(" ", ""):
        description += f"\nstate={state}"
    return make_alert(
        SOURCE,
        status="resolved" if state == "OK" else "firing",
        title=title_line,
        description=description,
        service=watched or name or None,
        fingerprint=f"{SOURCE}:{name.strip().lower()}|{_region(region)}" if name else None,
        source_severity=None,  # CloudWatch has no severity: an alarm is in ALARM or it is not
        url=next((u for u in flat.urls if "console.aws.amazon.com" in u), next(iter(flat.urls), None)),
    )
