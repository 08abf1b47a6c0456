"""Coverage-guided fuzzing (atheris / libFuzzer) of what reads a Slack payload and what renders a reply:
the input is a JSON body as Slack would post it, or a realistic message with fuzzed fields (some blown up
to a megabyte, nested deep); it goes through ``classify()`` and every parser, then the decision renderer.
A crash is an exception or a broken property (unbounded alert, blocks over Slack's limits, markup from
the input that would act, text that is not UTF-8).

    python fuzz/fuzz_alerts.py -max_total_time=300            # by hand, from the repository root
    python fuzz/fuzz_alerts.py fuzz/corpus -max_total_time=300  # keeping the inputs that found coverage
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.setrecursionlimit(5_000)  # deep nesting must be refused or bounded by the code, not by Python

from engine.decision import ActionScore, Decision  # noqa: E402 (not instrumented: numpy, scikit-learn)
from engine.taxonomy import ACTIONS, CATEGORIES  # noqa: E402

with atheris.instrument_imports():
    from bot.alerts import (
        SOURCES,
        alertmanager,
        classify,
        cloudwatch,
        datadog,
        flatten,
        grafana,
        human,
        pagerduty,
        sentry,
    )
    from bot.alerts.alert import MAX_TITLE
    from bot.alerts.slack_text import MAX_TEXT
    from bot.slack.blocks import decision_blocks, escape, with_corrections

PARSERS = (grafana, alertmanager, datadog, sentry, cloudwatch, pagerduty, human)
TEXT_BOUND = MAX_TITLE + MAX_TEXT + 200
ACTIVE = re.compile(r"[<>\u202a-\u202e\u2066-\u2069]")
RUNBOOKS = {
    "categories": {c: f"https://wiki.example/{c}" for c in CATEGORIES},
    "actions": {a: f"https://wiki.example/{a}|x" for a in ACTIONS},  # a | must not end the link
}
RUNBOOK_LINK = re.compile(r"<https://wiki\.example/[a-z_]+(?:%7Cx)?\|runbook>")  # the bot's own links
TEMPLATES: list[dict[str, Any]] = [
    {"type": "message", "user": "U0BOB", "ts": "1732600000.000100", "text": "{0}"},
    {
        "type": "message",
        "subtype": "bot_message",
        "username": "alertmanager",
        "attachments": [{"title": "[FIRING:2] {0}", "title_link": "http://am:9093/#/alerts", "text": "{1}"}],
    },
    {
        "type": "message",
        "username": "grafana",
        "attachments": [
            {"title": "[FIRING:1] {0}", "text": "Labels:\n - service = {1}", "footer": "Grafana"}
        ],
    },
    {
        "type": "message",
        "username": "Datadog",
        "attachments": [
            {"title": "Triggered: [P1] {0}", "title_link": "https://app.datadoghq.com/monitors/1"}
        ],
    },
    {
        "type": "message",
        "attachments": [
            {
                "title": "{0}",
                "title_link": "https://acme.sentry.io/issues/45/",
                "fields": [{"title": "level", "value": "{1}"}],
                "footer": "BACKEND-4Z via {1}",
            }
        ],
    },
    {
        "type": "message",
        "bot_profile": {"name": "AWS Chatbot"},
        "attachments": [{"title": "CloudWatch Alarm | {0} | us-east-1 | Account: 1", "text": "{1}"}],
    },
    {
        "type": "message",
        "bot_profile": {"name": "PagerDuty"},
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Triggered* <https://x.pagerduty.com/incidents/Q1|#4821: {0}>",
                },
            },
            {
                "type": "rich_text",
                "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "{1}"}]}],
            },
        ],
    },
]


def fill(template: Any, strings: list[str]) -> Any:
    if isinstance(template, str):
        return template.replace("{0}", strings[0]).replace("{1}", strings[1])
    if isinstance(template, dict):
        return {k: fill(v, strings) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, strings) for v in template]
    return template


def fuzzed_string(fdp: atheris.FuzzedDataProvider) -> str:
    """Unicode, or bytes as a bad decoder would give them (lone surrogates), sometimes blown up."""
    raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
    text = raw.decode("utf-8", "surrogateescape") if fdp.ConsumeBool() else fdp.ConsumeUnicode(100)
    text = text + raw.decode("latin-1")[:20]
    repeat = fdp.PickValueInList([1, 1, 1, 10, 1_000, (1 << 20) // max(1, len(text))])
    return text * repeat


def event_of(fdp: atheris.FuzzedDataProvider) -> Any:
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:  # a body as posted: whatever JSON it holds
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
        try:
            return json.loads(body.decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError):
            return {"type": "message", "text": body.decode("utf-8", "surrogateescape")}
    event = fill(fdp.PickValueInList(TEMPLATES), [fuzzed_string(fdp), fuzzed_string(fdp)])
    if mode == 2:  # deep nesting where apps put rich text
        leaf: Any = {"type": "text", "text": fuzzed_string(fdp)}
        for _ in range(fdp.ConsumeIntInRange(0, 1_500)):
            leaf = [leaf]
        event["blocks"] = [{"type": "rich_text", "elements": leaf}]
        event["attachments"] = [leaf, {"fields": leaf}]
    if mode == 3:  # a key dropped or given the wrong type
        key = fdp.PickValueInList(sorted(event))
        event[key] = fdp.PickValueInList([None, 5, 1.5, [], {}, "x", [None], {"text": None}])
    return event


def check_rendered(fallback: str, blocks: list[dict[str, Any]]) -> None:
    json.dumps({"text": fallback, "blocks": blocks}, ensure_ascii=False).encode("utf-8")
    assert 0 < len(fallback) <= 3000 and not ACTIVE.search(fallback), fallback[:200]
    assert len(blocks) <= 50
    for block in blocks:
        texts = [block["text"]] if "text" in block else []
        texts += [e for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
        for text in texts:
            assert len(text["text"]) <= (3000 if block["type"] == "section" else 2000)
            assert not ACTIVE.search(RUNBOOK_LINK.sub("", text["text"])), text["text"][:200]
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= 75


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    event = event_of(fdp)
    alert, reason = classify(event, bot_user_id="U0BOT", bot_id="B0BOT")
    if alert is not None:
        assert reason == alert.source in SOURCES and alert.status in ("firing", "resolved")
        assert len(alert.incident.title) <= MAX_TITLE and len(alert.incident.text) <= TEXT_BOUND
        assert "\x00" not in alert.incident.text
        alert.incident.text.encode("utf-8")
    if isinstance(event, dict):
        flat = flatten(event)
        for parser in PARSERS:
            parser.detect(event, flat)
            assert len(parser.parse(event, flat).incident.text) <= TEXT_BOUND
    words = [fdp.PickValueInList([*ACTIONS, *CATEGORIES, fuzzed_string(fdp)[:5_000]]) for _ in range(4)]
    decision = Decision(
        words[0],
        fdp.ConsumeProbability(),
        words[1],
        fdp.ConsumeProbability(),
        [ActionScore(w, fdp.ConsumeProbability()) for w in words],
        fdp.ConsumeBool(),
        fdp.ConsumeBool(),
        words[2],
        words,
        fdp.ConsumeBool(),
    )
    title = alert.incident.title if alert is not None else words[3]
    fallback, blocks = decision_blocks(decision, RUNBOOKS, title, with_controls=True)
    check_rendered(fallback, blocks)
    check_rendered(fallback, with_corrections(blocks, [escape(w) for w in words]))


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
