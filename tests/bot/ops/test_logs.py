"""Logs an operator can ship: ONCALL_LOG_FORMAT=json gives one JSON object per line with stable keys (time,
level, logger, message, and the event fields a log call passes: channel, alert source, event id, model
version, latency, ...); plain text stays the default. Secrets are masked in both, event fields included."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.local.emulator import SlackEmulator
from bot.ops import logs, redact
from tests.integration.test_bot_hardening import PERSON, SIGNING, TOKEN, bot_process

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")
KEYS = ["time", "level", "logger", "message"]


@contextmanager
def captured(log_format: str) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the handler `oncall` sets up (its formatter and the secrets filter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logs.JsonFormatter() if log_format == "json" else logging.Formatter(logs.TEXT_FORMAT)
    )
    handler.addFilter(redact.RedactSecrets([SIGNING]))
    logger = logging.getLogger(f"oncall.test.{log_format}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def log_some(logger: logging.Logger) -> None:
    logger.info(
        "answered %s/%s with a token %s",
        "C0INCIDENTS",
        "1700000000.000100",
        TOKEN,
        extra={
            "channel": "C0INCIDENTS",
            "alert_source": "alertmanager",
            "event_id": "Ev0TEST",
            "model_version": "v1",
            "latency_seconds": 0.0421,
            "detail": f"signed with {SIGNING}",
        },
    )
    try:
        raise ConnectionError(f"Bearer {TOKEN}\nsecond line")
    except ConnectionError:
        logger.exception("the store went away")


def test_json_logs_are_one_object_per_line_with_stable_keys_and_no_secret() -> None:
    with captured("json") as (logger, stream):
        log_some(logger)
    text = stream.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2, "a traceback must stay inside its line"
    first, second = (json.loads(line) for line in lines)
    assert list(first)[:4] == KEYS and list(second)[:4] == KEYS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert (first["level"], first["logger"]) == ("INFO", "oncall.test.json")
    assert first["message"] == "answered C0INCIDENTS/1700000000.000100 with a token [redacted]"
    assert first["channel"] == "C0INCIDENTS" and first["alert_source"] == "alertmanager"
    assert first["event_id"] == "Ev0TEST" and first["model_version"] == "v1"
    assert first["latency_seconds"] == 0.0421 and first["detail"] == "signed with [redacted]"
    assert second["level"] == "ERROR" and "ConnectionError: Bearer [redacted]" in second["exception"]
    assert TOKEN not in text and SIGNING not in text


def test_text_stays_the_default_and_is_masked_too() -> None:
    with captured("text") as (logger, stream):
        log_some(logger)
    text = stream.getvalue()
    assert TEXT_LINE.match(text) and "answered C0INCIDENTS/1700000000.000100 with a token [redacted]" in text
    assert "Traceback" in text and TOKEN not in text and SIGNING not in text
    assert not text.lstrip().startswith("{")


@pytest.mark.asyncio
@pytest.mark.e2e
async def test_a_live_bot_logs_json_with_the_event_fields(models_dir: Path, tmp_path: Path) -> None:
    """`oncall serve` with ONCALL_LOG_FORMAT=json, at DEBUG (slack_sdk, aiohttp and Bolt log too): every log
    line is a JSON object, the decision's line carries its fields, and no secret is in any of them."""
    async with SlackEmulator(SIGNING, TOKEN) as emu:
        async with bot_process(
            emu, models_dir, tmp_path, ONCALL_LOG_FORMAT="json", ONCALL_LOG_LEVEL="DEBUG"
        ) as bot:
            alert = await emu.post_message(PERSON, "#incidents", "[FIRING:1] checkout 5xx at 40% for 10m")
            await emu.wait_for_bot_message(alert["channel"], thread_ts=alert["ts"], timeout=10)
            event_id = next(eid for eid, env in emu.events.items() if env["event"].get("ts") == alert["ts"])
            await emu.redeliver(event_id)
            await emu.settle()
        text = bot.log.read_text()
    records: list[dict[str, Any]] = []
    for line in text.splitlines():  # stdout (the banner) shares the file: it is not a log line
        assert not TEXT_LINE.match(line), f"a plain-text log line: {line}"
        if line.startswith("{"):
            records.append(json.loads(line))
            assert list(records[-1])[:4] == KEYS, line
    assert len(records) > 10, text[-2000:]
    (answered,) = [r for r in records if r["message"].startswith("answered ")]
    assert answered["logger"] == "bot.pipeline.answer" and answered["level"] == "INFO"
    assert answered["channel"] == alert["channel"] and answered["alert_ts"] == alert["ts"]
    assert isinstance(answered["alert_source"], str) and answered["alert_source"]
    assert answered["model_version"] and 0 < answered["latency_seconds"] < 10
    (again,) = [r for r in records if r["message"].startswith("already handled")]
    assert again["event_id"] == event_id and again["channel"] == alert["channel"]
    assert TOKEN not in text and SIGNING not in text
