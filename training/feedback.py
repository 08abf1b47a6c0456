"""What people said in Slack, as labeled incidents (the schema of docs/labeled-data.md).

For each rated decision, the final labels of ``engine.labels`` (a correction outranks a confirmation, a
:+1: without a :-1: confirms, confirmed actions are the actions taken). A :-1: without a correction says
the predicted label is wrong but not what is right: that field stays unknown for training, and the export
keeps the rejected label (``rejected_severity`` / ``rejected_category``, fields the loader ignores).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from engine.labels import Vote, final_labels
from training.dataset import LabeledIncident


class DecisionRecord(Protocol):
    """A stored decision, as the bot's feedback store keeps it (training never imports the bot)."""

    channel: str
    reply_ts: str
    incident_text: str
    severity: str
    category: str
    model_version: str


_SERVICE = re.compile(r"^(.*?)\s*service:(\S*)\s*$", re.DOTALL)


def labeled(decision: DecisionRecord, votes: Sequence[Vote]) -> tuple[LabeledIncident, dict[str, str]]:
    """The labeled incident a rated decision teaches, and the labels people rejected without correcting."""
    final = final_labels(decision.severity, decision.category, votes)
    refused = {f"rejected_{field}": value for field, value in final.rejected.items()}
    match = _SERVICE.match(decision.incident_text)
    title, service = (match.group(1), match.group(2) or None) if match else (decision.incident_text, None)
    row = LabeledIncident(
        title=title,
        service=None if service == "unknown" else service,
        severity=final.severity,
        category=final.category,
        actions=final.actions or None,
        source="feedback",
        id=f"slack:{decision.channel}:{decision.reply_ts}",
    )
    return row, refused


def rejected_labels(pairs: Sequence[tuple[DecisionRecord, Sequence[Vote]]]) -> list[tuple[str, str, str]]:
    """(incident text, field, rejected label) of every :-1: left without a correction: negatives, which the
    promotion gate uses (a new version must not repeat them more often than the active one)."""
    out = []
    for decision, votes in pairs:
        for key, value in labeled(decision, votes)[1].items():
            out.append((decision.incident_text, key.removeprefix("rejected_"), value))
    return out


def feedback_rows(pairs: Sequence[tuple[DecisionRecord, Sequence[Vote]]]) -> list[LabeledIncident]:
    """The rows that teach something (at least one label known)."""
    rows = [labeled(d, v)[0] for d, v in pairs]
    return [r for r in rows if r.severity or r.category or r.actions]


def export_line(decision: DecisionRecord, votes: Sequence[Vote]) -> dict[str, Any]:
    """One JSONL object in the labeled-data schema (plus what was rejected, and where it came from)."""
    row, refused = labeled(decision, votes)
    return {
        "id": row.id,
        "title": row.title,
        "description": row.description,
        "service": row.service,
        "severity": row.severity,
        "category": row.category,
        "actions": list(row.actions) if row.actions else None,
        "source": "feedback",
        "model_version": decision.model_version,
        **refused,
    }


def split_feedback(
    pairs: Sequence[tuple[DecisionRecord, Sequence[Vote]]],
) -> tuple[list[LabeledIncident], list[LabeledIncident], list[tuple[str, str, str]]]:
    """Rated decisions (oldest first) as (rows to train on, rows for the promotion gate, rejected labels).

    The newest fifth is held out of training and judged by the gate instead, with the labels people
    rejected there: a new version must also not be worse on what people said most recently, nor repeat
    what they refused more often than the active one."""
    cut = len(pairs) - len(pairs) // 5
    return feedback_rows(pairs[:cut]), feedback_rows(pairs[cut:]), rejected_labels(pairs[cut:])
