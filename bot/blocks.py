"""Block Kit for the bot's messages. Everything from an alert or a model is escaped (nothing a sender
writes may act as a mention or a link) and cut to Slack's limits, whatever the input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.decision import Decision
from engine.taxonomy import SEVERITY_EMOJI

# Slack's limits (https://api.slack.com/reference/block-kit/blocks): we stay well inside them.
SECTION_TEXT_MAX = 3000
CONTEXT_TEXT_MAX = 2000
FALLBACK_TEXT_MAX = 3000  # notifications show little; Slack truncates at 40,000
RATE_HINT = "Rate this: react :+1: or :-1:, and :one: :two: :three: for the action that was right."


def escape(text: str) -> str:
    """Slack's three control characters: with them escaped, <!channel>, <@U…> and <url|label> are inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, marked when cut (never in the middle of an escape like &amp;)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    amp = head.rfind("&")
    if amp >= 0 and ";" not in head[amp:]:
        head = head[:amp]
    return head + "…"


def label(name: str) -> str:
    return name.replace("_", " ")


def _pct(value: float) -> str:
    return f"{value:.0%}"


def decision_blocks(
    decision: Decision,
    runbooks: Mapping[str, Mapping[str, str]] | None = None,
    title: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of a decision, as posted in the alert's thread."""
    runbooks = runbooks or {}
    category_link = runbooks.get("categories", {}).get(decision.category)
    severity = (
        f"{SEVERITY_EMOJI.get(decision.severity, '')} *Severity:* {escape(decision.severity)} "
        f"({_pct(decision.severity_confidence)})"
    )
    category = f"*Category:* {escape(label(decision.category))} ({_pct(decision.category_confidence)})"
    if category_link:
        category += f" · <{escape(category_link)}|runbook>"
    header = f"{severity}   {category}"
    if decision.uncertain:
        header += "\n:warning: *Uncertain* — the model is not confident; check before acting."
    if decision.fallback:
        header += "\n:construction: Rule-based fallback: no trained model is loaded."
    lines = []
    for i, a in enumerate(decision.actions, start=1):
        line = f"{i}. {escape(label(a.action))} ({_pct(a.confidence)})"
        link = runbooks.get("actions", {}).get(a.action)
        if link:
            line += f" · <{escape(link)}|runbook>"
        lines.append(line)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(header, SECTION_TEXT_MAX)}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": cut("*Recommended actions:*\n" + "\n".join(lines), SECTION_TEXT_MAX),
            },
        },
    ]
    context = [f"model {escape(decision.model_version)}"]
    if decision.explanation:
        terms = ", ".join("`" + escape(t).replace("`", "'") + "`" for t in decision.explanation)
        context.append(f"why: {terms}")
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": cut(" · ".join(context), CONTEXT_TEXT_MAX)},
                {"type": "mrkdwn", "text": RATE_HINT},
            ],
        }
    )
    about = f" for {title}" if title else ""
    fallback = (
        f"{decision.severity} ({_pct(decision.severity_confidence)}), {label(decision.category)}"
        f"{' (uncertain)' if decision.uncertain else ''}{about}: "
        + ", ".join(label(a.action) for a in decision.actions)
    )
    return cut(escape(fallback), FALLBACK_TEXT_MAX), blocks


def text_blocks(text: str) -> list[dict[str, Any]]:
    """One section of (already escaped or trusted) mrkdwn, cut to the limit."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_TEXT_MAX)}}]
