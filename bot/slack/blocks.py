"""Block Kit for the bot's messages. Everything from an alert or a model is escaped (nothing a sender
writes may act as a mention or a link) and cut to Slack's limits, whatever the input."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.pipeline.similar import Similar
from engine.decision import Decision
from engine.taxonomy import ACTIONS, CATEGORIES, SEVERITIES

# Slack's limits (https://api.slack.com/reference/block-kit/blocks): we stay well inside them.
SECTION_TEXT_MAX = 3000
CONTEXT_TEXT_MAX = 2000
FALLBACK_TEXT_MAX = 3000  # notifications show little; Slack truncates at 40,000
BUTTON_TEXT_MAX = 75
SIMILAR_TITLE_MAX = 90  # a similar incident's title: one line each
MAX_SIMILAR = 3
SIMILAR_BLOCK = "similar"
SIMILAR_SKIPPED = ":mag: Similar past incidents not looked up this time: the bot was too busy."
MAX_ACTION_BUTTONS = 5  # one per recommended action (the "other action" menu has them all)
RATE_HINT = (
    "Rate this: react :+1: or :-1:, and :one: :two: :three: for the action that was right; "
    "or correct it below."
)


# Bidi overrides and isolates (they would reorder the bot's own words after them) and control characters
# (NUL and the like): dropped. A lone surrogate (from a payload that was not UTF-8) cannot be encoded.
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")

SEVERITY_EMOJI: dict[str, str] = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
    "low": ":white_circle:",
}


def plain(text: str) -> str:
    """Text for a plain_text field (never parsed as markup): only what reorders it or cannot be sent goes."""
    return _SURROGATE.sub("\ufffd", _INVISIBLE.sub("", text))


def escape(text: str) -> str:
    """Slack's three control characters: with them escaped, <!channel>, <@U…> and <url|label> are inert
    (and nothing that reorders or hides the bot's own text survives)."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, text: str) -> str:
    """A link the bot makes: a ``|`` in the URL would end it early and make the rest the label."""
    return f"<{escape(url).replace('|', '%7C')}|{escape(text)}>"


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, marked when cut (never in the middle of an escape like &amp;, nor of a
    link the bot made: half a ``<url|label>`` would swallow what follows)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    amp = head.rfind("&")
    if amp >= 0 and ";" not in head[amp:]:
        head = head[:amp]
    opened = head.rfind("<")  # escaped text has no raw <: any is the start of the bot's own link
    if opened > head.rfind(">"):
        head = head[:opened]
    return head + "…"


def label(name: str) -> str:
    return name.replace("_", " ")


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _confidence(value: float, uncertain: bool) -> str:
    """A field's confidence, with the marker inside when the model is unsure of that field (and only that
    one): ``(42%, uncertain)``, ``(91%)``."""
    return f"({_pct(value)}, uncertain)" if uncertain else f"({_pct(value)})"


def why_terms(terms: list[str]) -> list[str]:
    """The "why" terms once each: the same term in another case, spacing or with underscores, or quoted
    again, is shown once (the engine merges synonyms; nothing here adds a repeat)."""
    seen: set[str] = set()
    kept = []
    for term in terms:
        key = " ".join(term.replace("_", " ").strip("`'\" ").lower().split())
        if key and key not in seen:
            seen.add(key)
            kept.append(term)
    return kept


def decision_blocks(
    decision: Decision,
    runbooks: Mapping[str, Mapping[str, str]] | None = None,
    title: str | None = None,
    with_controls: bool = False,
    similar: list[Similar] | None = None,
    similar_skipped: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of a decision, as posted in the alert's thread (``with_controls``: and the
    controls to correct it; ``similar``: the similar past incidents, under the actions;
    ``similar_skipped``: they were not looked up, which it says rather than look like there are none)."""
    runbooks = runbooks or {}
    category_link = runbooks.get("categories", {}).get(decision.category)
    sev_conf = _confidence(decision.severity_confidence, decision.severity_uncertain)
    cat_conf = _confidence(decision.category_confidence, decision.category_uncertain)
    severity = (
        f"{SEVERITY_EMOJI.get(decision.severity, '')} *Severity:* {escape(decision.severity)} {sev_conf}"
    )
    category = f"*Category:* {escape(label(decision.category))} {cat_conf}"
    if category_link:
        category += f" · {link(category_link, 'runbook')}"
    header = f"{severity}   {category}"
    if decision.uncertain:
        flags = (("severity", decision.severity_uncertain), ("category", decision.category_uncertain))
        unsure = [field for field, uncertain in flags if uncertain]
        header += (
            f"\n:warning: *Uncertain:* the model is not confident of the {' and '.join(unsure)}; "
            "check before acting."
        )
    if decision.fallback:
        header += "\n:construction: Rule-based fallback: no trained model is loaded."
    lines = []
    for i, a in enumerate(decision.actions, start=1):
        name = escape(label(a.action))
        shown = f"*{name}*" if i == 1 else name  # the top action first, in bold
        line = f"{i}. {shown} ({_pct(a.confidence)})"
        runbook = runbooks.get("actions", {}).get(a.action)
        if runbook:
            line += f" · {link(runbook, 'runbook')}"
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
    if similar:
        blocks.append(similar_block(similar))
    elif similar_skipped:
        blocks.append(
            {
                "type": "context",
                "block_id": SIMILAR_BLOCK,
                "elements": [{"type": "mrkdwn", "text": SIMILAR_SKIPPED}],
            }
        )
    context = [f"model {escape(decision.model_version)}"]
    terms = why_terms(decision.explanation)
    if terms:
        context.append("why: " + ", ".join("`" + escape(t).replace("`", "'") + "`" for t in terms))
    elements = [{"type": "mrkdwn", "text": cut(" · ".join(context), CONTEXT_TEXT_MAX)}]
    if with_controls:  # a thread reply: it can be rated and corrected (an ephemeral answer cannot)
        elements.append({"type": "mrkdwn", "text": RATE_HINT})
    blocks.append({"type": "context", "elements": elements})
    if with_controls:
        blocks.append(correction_controls(decision))
    about = f" for {title}" if title else ""
    fallback = f"{decision.severity} {sev_conf}, {label(decision.category)} {cat_conf}{about}"
    if decision.actions:
        top, *rest = decision.actions
        fallback += f" — {label(top.action)} first ({_pct(top.confidence)})"
        if rest:
            fallback += ", then " + ", ".join(label(a.action) for a in rest)
    return cut(escape(fallback), FALLBACK_TEXT_MAX), blocks


def similar_block(similars: list[Similar]) -> dict[str, Any]:
    """A context block listing up to three similar past incidents, one line each: the title (linked to
    its thread when known), its final severity and category, and the action that fixed it."""
    lines = []
    for s in similars[:MAX_SIMILAR]:
        title = cut(plain(s.title).replace("\n", " "), SIMILAR_TITLE_MAX) or "(untitled)"
        line = f"• {link(s.link, title) if s.link else escape(title)}"
        labels = [escape(s.severity) if s.severity else "", escape(label(s.category)) if s.category else ""]
        known = ", ".join(x for x in labels if x)
        if known:
            line += f" — {known}" + ("" if s.confirmed else " (predicted, unconfirmed)")
        if s.action:
            line += f" · fixed by {escape(label(s.action))}"
        lines.append(line + f" · {_pct(s.similarity)} similar")
    text = ":mag: *Similar past incidents:*\n" + "\n".join(lines)
    return {
        "type": "context",
        "block_id": SIMILAR_BLOCK,
        "elements": [{"type": "mrkdwn", "text": cut(text, CONTEXT_TEXT_MAX)}],
    }


def text_blocks(text: str) -> list[dict[str, Any]]:
    """One section of (already escaped or trusted) mrkdwn, cut to the limit."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_TEXT_MAX)}}]


CORRECTIONS_BLOCK = "corrections"
CORRECTED_BLOCK = "corrected"


def _option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": label(value)}, "value": value}


def correction_controls(decision: Decision) -> dict[str, Any]:
    """The controls under a decision: what the severity or category should have been, which action
    fixed it (one button per recommended action, or another from the list)."""
    elements: list[dict[str, Any]] = [
        {
            "type": "static_select",
            "action_id": "correct_severity",
            "placeholder": {"type": "plain_text", "text": "Severity should be…"},
            "options": [_option(s) for s in SEVERITIES],
        },
        {
            "type": "static_select",
            "action_id": "correct_category",
            "placeholder": {"type": "plain_text", "text": "Category should be…"},
            "options": [_option(c) for c in CATEGORIES],
        },
    ]
    for i, a in enumerate(decision.actions[:MAX_ACTION_BUTTONS]):
        if a.action not in ACTIONS:  # a button carries only a value a click may store
            continue
        elements.append(
            {
                "type": "button",
                "action_id": f"fixed_action_{i}",
                "text": {"type": "plain_text", "text": cut(f"{label(a.action)} fixed it", BUTTON_TEXT_MAX)},
                "value": a.action,
            }
        )
    elements.append(
        {
            "type": "static_select",
            "action_id": "fixed_other",
            "placeholder": {"type": "plain_text", "text": "Other action fixed it…"},
            "options": [_option(a) for a in ACTIONS],
        }
    )
    return {"type": "actions", "block_id": CORRECTIONS_BLOCK, "elements": elements}


def with_corrections(blocks: list[dict[str, Any]], lines: list[str]) -> list[dict[str, Any]]:
    """The decision's blocks with a context line saying what was corrected and by whom (replacing the
    previous one), placed just above the controls."""
    kept = [b for b in blocks if b.get("block_id") != CORRECTED_BLOCK]
    if not lines:
        return kept
    note = {
        "type": "context",
        "block_id": CORRECTED_BLOCK,
        "elements": [
            {"type": "mrkdwn", "text": cut(":pencil2: Corrected: " + "; ".join(lines), CONTEXT_TEXT_MAX)}
        ],
    }
    at = next((i for i, b in enumerate(kept) if b.get("block_id") == CORRECTIONS_BLOCK), len(kept))
    return [*kept[:at], note, *kept[at:]]
