"""The bot's parts on their own: settings, Block Kit rendering of hostile text, pacing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.pipeline.runbooks import load_runbooks
from bot.settings import ConfigError, load_settings, watches
from bot.slack.blocks import SECTION_TEXT_MAX, cut, decision_blocks, escape
from bot.slack.posting import ChannelPacer
from engine.decision import ActionScore, Decision


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN"),
        ({"ONCALL_PORT": "eighty"}, "ONCALL_PORT"),
        ({"ONCALL_PORT": "70000"}, "ONCALL_PORT"),
        ({"ONCALL_ADMINS": "alice"}, "ONCALL_ADMINS"),
        ({"ONCALL_CHANNELS": "Bad Channel!"}, "ONCALL_CHANNELS"),
        ({"ONCALL_DB_URL": "mysql://x"}, "ONCALL_DB_URL"),
        ({"ONCALL_DB_URL": "sqlite:///"}, "ONCALL_DB_URL"),
        ({"ONCALL_DB_URL": "postgresql://oncall:pw@db:port/oncall"}, "ONCALL_DB_URL"),
        ({"ONCALL_DB_URL": "postgresql://oncall:pw@db:5432/"}, "ONCALL_DB_URL"),
        ({"SLACK_API_URL": "not a url"}, "SLACK_API_URL"),
        ({"ONCALL_RUNBOOKS": "/nonexistent/runbooks.yml"}, "ONCALL_RUNBOOKS"),
        ({"ONCALL_METRICS_ADDR": "9100"}, "ONCALL_METRICS_ADDR"),
        ({"ONCALL_METRICS_ADDR": "0.0.0.0:metrics"}, "ONCALL_METRICS_ADDR"),
        ({"ONCALL_METRICS_ADDR": "127.0.0.1:70000"}, "ONCALL_METRICS_ADDR"),
    ],
)
def test_a_bad_setting_is_one_sentence_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    message = str(err.value)
    assert named in message and message.endswith(".") and "\n" not in message


def test_settings_modes_and_watched_channels() -> None:
    local = load_settings({})
    assert local.local and not local.socket_mode and local.port == 3000
    http = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "ONCALL_PORT": "8080"})
    assert not http.local and http.port == 8080
    assert load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}).socket_mode
    assert watches(local, "C1", "inc-2041-checkout") and watches(local, "C1", "alerts-prod")
    assert not watches(local, "C1", "general") and not watches(local, "C1", None)
    chosen = load_settings({"ONCALL_CHANNELS": "C0123ABC, #war-room"})
    assert watches(chosen, "C0123ABC", None) and watches(chosen, "C9", "war-room")
    assert not watches(chosen, "C9", "incidents")
    assert load_settings({"ONCALL_METRICS_ADDR": "0.0.0.0:9100"}).metrics_addr == ("0.0.0.0", 9100)
    assert load_settings({"ONCALL_METRICS_ADDR": "[::1]:9100"}).metrics_addr == ("::1", 9100)
    assert local.metrics_addr is None
    postgres = "postgresql://oncall:secret@db.internal:5432/oncall"
    assert load_settings({"ONCALL_DB_URL": postgres}).db_url == postgres


def test_a_bad_store_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"ONCALL_DB_URL": "postgresql://oncall:hunter2@db:port/oncall"})
    assert "hunter2" not in str(err.value) and "oncall:***@db" in str(err.value)


def test_runbooks_are_checked(tmp_path: Path) -> None:
    good = tmp_path / "runbooks.yml"
    good.write_text(
        "categories:\n  database: https://wiki/db\nactions:\n  rollback_deploy: https://wiki/rb\n"
    )
    assert load_runbooks(good)["actions"]["rollback_deploy"] == "https://wiki/rb"
    bad = tmp_path / "bad.yml"
    bad.write_text("actions:\n  reboot_the_world: https://wiki/x\n")
    with pytest.raises(ConfigError, match="unknown action 'reboot_the_world'"):
        load_runbooks(bad)
    bad.write_text("categories:\n  database: javascript:alert(1)\n")
    with pytest.raises(ConfigError, match="http"):
        load_runbooks(bad)


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


def test_a_channel_takes_a_burst_then_is_paced_in_order() -> None:
    async def run() -> tuple[list[int], list[float]]:
        pacer = ChannelPacer(burst=2, per_second=20.0)
        order: list[int] = []
        times: list[float] = []
        start = time.monotonic()

        async def post(i: int) -> None:
            async with pacer.turn("C1"):
                order.append(i)
                times.append(time.monotonic() - start)

        await asyncio.gather(*(post(i) for i in range(5)))
        async with pacer.turn("C2"):  # another channel is not held up
            times.append(time.monotonic() - start)
        return order, times

    order, times = asyncio.run(run())
    assert order == [0, 1, 2, 3, 4]
    assert times[1] < 0.04 <= times[2] and times[4] >= 0.14
    assert times[5] - times[4] < 0.04


def test_a_canary_takes_a_stable_share_of_the_alerts() -> None:
    from bot.pipeline.answer import canary_hit

    alerts = [("C1", f"1732600000.{i:06d}") for i in range(4000)]
    hits = [canary_hit(c, ts, 0.1) for c, ts in alerts]
    assert 0.08 < sum(hits) / len(hits) < 0.12
    assert hits == [canary_hit(c, ts, 0.1) for c, ts in alerts], "the same alert, the same answer"
    assert all(canary_hit(c, ts, 0.2) for (c, ts), hit in zip(alerts, hits, strict=True) if hit)
    assert not any(canary_hit(c, ts, 0.0) for c, ts in alerts) and all(
        canary_hit(c, ts, 1.0) for c, ts in alerts
    )


@pytest.mark.parametrize(
    ("title", "shown"),
    [  # the resolved titles of tests/test_alerts.py's sources, as parsed
        ("[RESOLVED] HighErrorRate (payments critical)", "HighErrorRate (payments critical)"),
        ("[RESOLVED:2] KubePodCrashLooping", "KubePodCrashLooping"),
        (":large_green_circle: Resolved #4821: Payments API p99 latency", "#4821: Payments API p99 latency"),
        ("Resolved: Checkout error rate", "Checkout error rate"),
        ("Recovered: [P1] High error rate on checkout", "[P1] High error rate on checkout"),
        ("[Recovered on {service:search,env:prod}] Elasticsearch heap", "Elasticsearch heap"),
        ("[OK] Checkout latency alert", "Checkout latency alert"),
        ('OK: "payments-api-HighCPU" in US East', '"payments-api-HighCPU" in US East'),
        ("Okta login failures", "Okta login failures"),
        ("Resolver pool exhausted", "Resolver pool exhausted"),
        ("RESOLVED", "RESOLVED"),
    ],
)
def test_the_resolved_note_drops_the_source_s_own_resolved_marker(title: str, shown: str) -> None:
    from bot.pipeline.answer import without_resolved_marker

    assert without_resolved_marker(title) == shown


def test_a_key_of_its_own_pace_and_how_long_a_turn_would_wait() -> None:
    async def run() -> list[float]:
        pacer = ChannelPacer(burst=1, per_second=100.0, limits={"reactions.add": (2, 1.0)})
        seen = [pacer.delay("reactions.add")]  # never used: no wait
        for _ in range(2):  # the burst of two
            async with pacer.turn("reactions.add"):
                pass
        seen.append(pacer.delay("reactions.add"))  # the bucket is empty: about a second
        async with pacer.turn("C1"):  # a channel keeps the default pace
            seen.append(pacer.delay("C1"))
        return seen

    fresh, empty, channel = asyncio.run(run())
    assert fresh == 0.0 and 0.9 < empty <= 1.0 and channel <= 0.01
