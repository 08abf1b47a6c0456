"""What people said about a decision, reduced to its final labels: shared by training (feedback rows) and
the bot (similar past incidents show the corrected labels), so both read a vote the same way.

A correction outranks a confirmation (the latest correction of a field wins); a :+1: without a :-1:
confirms the predicted severity and category; a :-1: without a correction leaves the field unknown (and
says which label was rejected); actions confirmed by a reaction or a button are the actions taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Vote = tuple[str, str, str, str, float]  # user, kind, reaction or control, value, time


@dataclass(frozen=True, slots=True)
class FinalLabels:
    severity: str | None
    category: str | None
    actions: tuple[str, ...]  # confirmed to have fixed it, first confirmed first
    rejected: dict[str, str]  # field -> the predicted label people rejected without correcting


def final_labels(severity: str, category: str, votes: Sequence[Vote]) -> FinalLabels:
    """The labels a decision predicted as ``severity`` / ``category`` ends with, given its votes."""
    by_time = sorted(votes, key=lambda v: v[4])
    verdicts = {value for _, kind, _, value, _ in by_time if kind == "verdict"}
    confirmed = "confirm" in verdicts and "reject" not in verdicts
    labels: dict[str, str | None] = {}
    rejected: dict[str, str] = {}
    for field, predicted in (("severity", severity), ("category", category)):
        corrections = [value for _, kind, _, value, _ in by_time if kind == field]
        if corrections:
            labels[field] = corrections[-1]
        elif confirmed:
            labels[field] = predicted
        else:
            labels[field] = None
            if "reject" in verdicts:
                rejected[field] = predicted
    actions = tuple(dict.fromkeys(value for _, kind, _, value, _ in by_time if kind == "action"))
    return FinalLabels(labels["severity"], labels["category"], actions, rejected)
