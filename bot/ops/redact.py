"""Secrets never reach a log line: the configured tokens, signing secret and database password, and
anything shaped like a Slack token or a password in a URL, are masked before any handler writes a record
(slack_sdk, slack_bolt and aiohttp included: the filter sits on the handlers, which every logger reaches)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

MASK = "[redacted]"
_SHAPES = re.compile(
    r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]+"  # Slack bot, user, app and refresh tokens
    r"|(?<=://)[^:/@\s]*:[^@/\s]+(?=@)"  # user:password in a URL
)
SECRET_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")


def configured_secrets(env: Mapping[str, str]) -> list[str]:
    """The secret values in the environment: tokens, the signing secret, the database URL's password."""
    found = [env[name].strip() for name in SECRET_VARIABLES if env.get(name, "").strip()]
    try:
        password = urlsplit(env.get("ONCALL_DB_URL", "")).password
    except ValueError:
        password = None
    return found + ([password] if password else [])


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if len(secret) >= 4:  # a shorter one would mask half the log
            text = text.replace(secret, MASK)
    return _SHAPES.sub(MASK, text)


# What every LogRecord carries: anything else on a record came from a log call's extra= (bot/ops/logs.py).
_RECORD_KEYS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, its traceback and the text fields passed with extra= (which the JSON
    log format writes) with the secrets masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: the handler reports it, the filter must not raise
            return True
        record.msg, record.args = redact(message, self.secrets), None
        for key, value in list(record.__dict__.items()):
            if key not in _RECORD_KEYS and isinstance(value, str):
                setattr(record, key, redact(value, self.secrets))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def install(secrets: Iterable[str] = ()) -> None:
    """Put the filter on every handler of the root logger (call after logging is configured)."""
    redactor = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
