"""Logging for every `oncall` command: plain text for a terminal (the default), or with ONCALL_LOG_FORMAT=json
one JSON object per line for a log shipper. Its keys are stable: ``time`` (ISO 8601, UTC, milliseconds),
``level``, ``logger``, ``message``, then the event fields a log call passes with ``extra=`` (``EVENT_FIELDS``:
channel, alert_ts, alert_source, event_id, event_type, model_version, severity, latency_seconds, ...) and
``exception`` with the traceback. Secrets are masked in both formats (bot/ops/redact.py), event fields too."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bot.ops import redact

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The fields log calls pass with extra= (documented; any other extra key is written as well).
EVENT_FIELDS = (
    "channel",
    "alert_ts",
    "alert_source",
    "event_id",
    "event_type",
    "model_version",
    "severity",
    "category",
    "latency_seconds",
)
# What every LogRecord carries: anything else on a record came from extra=.
_RECORD_KEYS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call added with ``extra=``."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_KEYS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(event_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO", log_format: str = "text", secrets: Iterable[str] = ()) -> None:
    """Log to standard error at ``level`` in ``log_format`` (text or json), with the secrets masked. Like
    logging.basicConfig, it leaves a root logger that already has handlers alone (but for the masking)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    redact.install(secrets)
