"""A message a person typed ("checkout is throwing 500s for everyone"): the first line is the title."""

from __future__ import annotations

import re
from typing import Any

from .alert import MAX_TITLE, Alert, make_alert
from .fields import catalog_service
from .slack_text import Flat

SOURCE = "human"
# "SEV1", "sev-2", "P1": the reporter's own call, kept as a hint.
_HINT = re.compile(r"\b(sev[ -]?[0-5]|p[0-5])\b", re.IGNORECASE)
_SERVICE_TAG = re.compile(r"\bservice[:=]\s*([\w.\-/]{1,100})", re.IGNORECASE)
_MENTIONS = re.compile(r"^(?:\s*@[\w.\-]+[,:]?)+\s*")  # "@here @oncall checkout is down"


def detect(message: dict[str, Any], flat: Flat) -> bool:
    return bool(flat.text.strip())


def parse(message: dict[str, Any], flat: Flat) -> Alert:
    lines = [line for line in flat.text.split("\n") if line.strip()] or [""]
    first = _MENTIONS.sub("", lines[0]) or lines[0]
    # A long first line is a paragraph, not a title: the title takes its start, the description all of it.
    title, body = (first, lines[1:]) if len(first) <= MAX_TITLE else (first[:MAX_TITLE], [first, *lines[1:]])
    hint = _HINT.search(flat.text[:2_000])
    tagged = _SERVICE_TAG.search(flat.text[:2_000])
    return make_alert(
        SOURCE,
        status="firing",
        title=title,
        description="\n".join(body),
        service=tagged.group(1) if tagged else catalog_service(flat.text),
        source_severity=hint.group(1) if hint else None,
    )
