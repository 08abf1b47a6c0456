"""Block Kit rendering (bot/slack/blocks.py): nothing an alert says acts in the reply, the uncertain marker,
runbook links, and Slack's size limits whatever the input."""

from __future__ import annotations

from bot.slack.blocks import SECTION_TEXT_MAX, cut, decision_blocks, escape
from engine.decision import ActionScore, Decision


def _decision(**kw: object) -> Decision:
    base = {
        "severity": "critical",
        "severity_confidence": 0.91,
        "category": "deployment",
        "category_confidence": 0.42,
        "actions": [ActionScore("rollback_deploy", 0.8), ActionScore("restart_service", 0.3)],
        "severity_uncertain": False,
        "category_uncertain": True,
        "model_version": "v1",
        "explanation": ["<!channel>", "`x`"],
    }
    return Decision(**{**base, **kw})  # type: ignore[arg-type]


def test_nothing_an_alert_says_can_act_in_the_reply() -> None:
    hostile = "<!channel> <@U0ALICE> <https://evil.example|your bank> & *bold*"
    text, blocks = decision_blocks(_decision(model_version=hostile), title=hostile)
    rendered = text + str(blocks)
    for active in ("<!channel>", "<@U0ALICE>", "<https://evil"):
        assert active not in rendered
    assert "&lt;!channel&gt;" in rendered
    assert "Uncertain" in blocks[0]["text"]["text"]


def test_the_uncertain_marker_sits_on_the_field_that_is_uncertain() -> None:
    # The default: severity 91% is confident, category 42% is not.
    text, blocks = decision_blocks(_decision(), title="Deploy broke checkout")
    header = blocks[0]["text"]["text"]
    assert "*Severity:* critical (91%)   *Category:* deployment (42%, uncertain)" in header
    assert "not confident of the category;" in header
    assert text == (
        "critical (91%), deployment (42%, uncertain) for Deploy broke checkout — "
        "rollback deploy first (80%), then restart service"
    )

    unsure_severity = _decision(
        severity_confidence=0.38, category_confidence=0.88, severity_uncertain=True, category_uncertain=False
    )
    text, blocks = decision_blocks(unsure_severity)
    header = blocks[0]["text"]["text"]
    assert "*Severity:* critical (38%, uncertain)   *Category:* deployment (88%)\n" in header
    assert "not confident of the severity;" in header
    assert text.startswith("critical (38%, uncertain), deployment (88%) — rollback deploy first (80%)")

    both = _decision(severity_uncertain=True, category_uncertain=True, fallback=True)
    header = decision_blocks(both)[1][0]["text"]["text"]
    assert header.count(", uncertain)") == 2 and "of the severity and category;" in header

    sure = decision_blocks(_decision(category_uncertain=False))
    assert "uncertain" not in str(sure).lower()


def test_a_decision_reads_once_each_the_top_action_first_and_every_why_term_once() -> None:
    decision = _decision(
        explanation=["critical", "Critical", "severity_critical", "severity critical", "`critical`", "tier-3"]
    )
    text, blocks = decision_blocks(decision)
    actions = blocks[1]["text"]["text"].splitlines()
    assert actions == ["*Recommended actions:*", "1. *rollback deploy* (80%)", "2. restart service (30%)"]
    why = next(
        e["text"] for b in blocks if b["type"] == "context" for e in b["elements"] if "why:" in e["text"]
    )
    assert why == "model v1 · why: `critical`, `severity_critical`, `tier-3`"
    assert text.count("(") == 3, "severity, category and the top action each carry one confidence"


def test_replies_stay_within_slacks_limits_whatever_the_input() -> None:
    long = "x" * 50_000
    text, blocks = decision_blocks(_decision(explanation=[long] * 5, model_version=long), title=long)
    assert len(text) <= 3000 and len(blocks) <= 50
    for block in blocks:
        for piece in [block.get("text", {}), *block.get("elements", [])]:
            assert len(piece.get("text", "")) <= SECTION_TEXT_MAX
    assert cut(escape("a&b" * 2000), 100).endswith("…") and "&am…" not in cut(escape("a&b" * 2000), 100)


def test_runbook_links_show_beside_their_action() -> None:
    runbooks = {
        "categories": {"deployment": "https://wiki/deploys"},
        "actions": {"rollback_deploy": "https://wiki/rb"},
    }
    _, blocks = decision_blocks(_decision(), runbooks)
    assert "<https://wiki/deploys|runbook>" in blocks[0]["text"]["text"]
    assert "1. *rollback deploy* (80%) · <https://wiki/rb|runbook>" in blocks[1]["text"]["text"]
