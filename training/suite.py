"""The plain-language suite: one-line messages as incident channels receive them, with the answers an
experienced SRE would accept.

Held-out metrics on long status-page prose say little about a terse ``db is down???``; this suite asks
the question the bot is for, on the texts it will see. Each row gives *sets* of acceptable answers
(``critical`` or ``high`` are both fine for a payments outage), so a row fails only on an answer a
person would reject. The file is data (``training/data/plain_language.jsonl``) written by hand for the
project, not drawn from any training source.

Row schema: ``{"text": str, "severity": [acceptable severities], "category": [acceptable categories]
or null, "actions": [actions, one of which must be in the top 3] or null, "note": optional why}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sklearn.metrics import roc_auc_score

from engine.incident import incident_text
from engine.taxonomy import ACTIONS, CATEGORIES, SEVERITIES
from training.dataset import json_reason

SUITE_PATH = Path(__file__).resolve().parent / "data" / "plain_language.jsonl"
TOP_ACTIONS = 3  # the bot posts three actions: an acceptable one must be among them
PAGE = frozenset({"critical", "high"})  # "should this page someone now?"


def page_columns(severity_classes: Sequence[str]) -> list[int]:
    """The columns of a severity probability row whose sum is P(critical or high)."""
    return [j for j, c in enumerate(severity_classes) if c in PAGE]


class Scorer(Protocol):
    """What the suite needs of a model: engine.scorer's FusedScorer and SklearnScorer, or a baseline."""

    severity_classes: Sequence[str]
    category_classes: Sequence[str]
    action_classes: Sequence[str]

    def score_many(self, texts: Sequence[str]) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class SuiteRow:
    """One message and the answers a person would accept (``None``: not asked for this row)."""

    text: str
    severity: tuple[str, ...]
    category: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = None
    note: str | None = None
    line: int = 0


def _labels(obj: dict[str, Any], key: str, allowed: Iterable[str], required: bool) -> tuple[str, ...] | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, list) or not value:
        need = "a non-empty list" if required else "a non-empty list or null"
        raise ValueError(f"{key} must be {need}, got {value!r}")
    allowed = tuple(allowed)
    bad = [v for v in value if v not in allowed]
    if bad:
        raise ValueError(f"unknown {key} {bad[0]!r} (allowed: {', '.join(allowed)})")
    return tuple(value)


def parse_row(obj: object, line: int = 0) -> SuiteRow:
    """One JSON object to a SuiteRow; a ValueError names the problem (the caller adds the line)."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    note = obj.get("note")
    if note is not None and not isinstance(note, str):
        raise ValueError("note must be a string or null")
    unknown = set(obj) - {"text", "severity", "category", "actions", "note"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
    return SuiteRow(
        text=text.strip(),
        severity=_labels(obj, "severity", SEVERITIES, required=True),  # type: ignore[arg-type]
        category=_labels(obj, "category", CATEGORIES, required=False),
        actions=_labels(obj, "actions", ACTIONS, required=False),
        note=note,
        line=line,
    )


def load_suite(path: str | Path = SUITE_PATH) -> list[SuiteRow]:
    """Every row of the suite file. Unlike training data, a bad line is fatal: a suite that silently
    loses rows measures something else. The ValueError names the file and line."""
    path = Path(path)
    rows: list[SuiteRow] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                rows.append(parse_row(json.loads(raw), lineno))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: {json_reason(exc)}") from exc
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def _share(flags: Sequence[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def run_suite(scorer: Scorer, rows: Sequence[SuiteRow], top_actions: int = TOP_ACTIONS) -> dict[str, Any]:
    """Score every row as ``oncall predict TEXT`` does (the text is the title, no service) and report
    the share of rows with an acceptable severity, category (rows that give one) and an acceptable
    action in the top ``top_actions`` (rows that give actions), the page ranking (``page_auc``), with
    per-row details.

    ``scorer`` is anything with ``score_many`` and the three class tuples (a loaded version's
    ``ModelSet.scorer``, ``TrainedModels.scorer()``, a baseline).
    """
    scores = scorer.score_many([incident_text(r.text) for r in rows]) if rows else []
    paging = page_columns(scorer.severity_classes)
    details: list[dict[str, Any]] = []
    for row, s in zip(rows, scores, strict=True):
        severity = str(scorer.severity_classes[int(np.argmax(s.severity))])
        category = None
        if s.category is not None and len(scorer.category_classes):
            category = str(scorer.category_classes[int(np.argmax(s.category))])
        order = np.argsort(-np.asarray(s.actions), kind="stable")[:top_actions]
        actions = [str(scorer.action_classes[j]) for j in order]
        ok = {
            "severity": severity in row.severity,
            "category": None if row.category is None else category in row.category,
            "actions": None if row.actions is None else bool(set(actions) & set(row.actions)),
        }
        details.append(
            {
                "line": row.line,
                "text": row.text,
                "predicted": {"severity": severity, "category": category, "actions": actions},
                "page_probability": float(np.sum(np.asarray(s.severity)[paging])),
                "acceptable": {
                    "severity": list(row.severity),
                    "category": None if row.category is None else list(row.category),
                    "actions": None if row.actions is None else list(row.actions),
                },
                "ok": ok,
            }
        )
    out: dict[str, Any] = {"n": len(details)}
    for key in ("severity", "category", "actions"):
        flags = [d["ok"][key] for d in details if d["ok"][key] is not None]
        out[key] = _share(flags)
        out[f"{key}_n"] = len(flags)
        out[f"{key}_ok"] = int(sum(flags))
    out["page_auc"] = page_auc(details)
    out["rows"] = details
    return out


def page_auc(details: Sequence[dict[str, Any]]) -> float | None:
    """How well P(critical or high) ranks the rows a person would page on (every acceptable severity
    critical or high) above those they would not (none is): ROC AUC, ties counting half. Rows that
    accept both sides are left out; None without rows on each side.

    Separates ranking from level: a model can order messages as a person would and still page at
    another threshold than theirs, which the share of acceptable severities alone cannot tell apart.
    """
    sides = [(set(d["acceptable"]["severity"]), d["page_probability"]) for d in details]
    ranked = [(accept <= PAGE, p) for accept, p in sides if accept <= PAGE or not accept & PAGE]
    if len({page for page, _ in ranked}) < 2:
        return None
    return float(roc_auc_score([page for page, _ in ranked], [p for _, p in ranked]))


def failures(result: dict[str, Any], key: str | None = None) -> list[dict[str, Any]]:
    """The rows that got ``key`` (or any asked-for answer) wrong."""
    keys = (key,) if key else ("severity", "category", "actions")
    return [d for d in result["rows"] if any(d["ok"][k] is False for k in keys)]


def format_row(detail: dict[str, Any]) -> str:
    """One failing row in a line a person can judge: what was said, what was acceptable."""
    p, a, ok = detail["predicted"], detail["acceptable"], detail["ok"]
    parts = []
    if not ok["severity"]:
        parts.append(f"severity {p['severity']} not in {'/'.join(a['severity'])}")
    if ok["category"] is False:
        parts.append(f"category {p['category']} not in {'/'.join(a['category'])}")
    if ok["actions"] is False:
        parts.append(f"top-3 {','.join(p['actions'])} has none of {'/'.join(a['actions'])}")
    return f"{detail['text']!r}: " + "; ".join(parts)


def summary_line(result: dict[str, Any]) -> str:
    """``severity 0.871 (61/70)  category 0.830 ...``: the three shares with their counts."""
    cells = []
    for key in ("severity", "category", "actions"):
        if result[f"{key}_n"]:
            cells.append(f"{key} {result[key]:.3f} ({result[f'{key}_ok']}/{result[f'{key}_n']})")
    return "  ".join(cells)
