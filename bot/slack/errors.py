"""Which failed Slack calls are worth trying again: the one rule every caller of the Web API follows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError

# Errors Slack reports (with any HTTP status) when it failed, not when it refused.
_SLACK_FAILING = frozenset({"internal_error", "fatal_error", "request_timeout", "service_unavailable"})


@dataclass(frozen=True, slots=True)
class Transient:
    """A failure that passes: ``reason`` for logs, ``after`` the seconds Slack asked to wait (Retry-After)."""

    reason: str
    rate_limited: bool = False
    after: float | None = None


def transient(exc: BaseException) -> Transient | None:
    """A failure worth retrying (rate limited, Slack failing, the connection lost or timed out), or None
    for a refusal that will not change (not_in_channel, invalid_auth, ...) and for what is no Slack call's
    failure."""
    if isinstance(exc, SlackApiError):
        status, error = exc.response.status_code, str(exc.response.get("error") or "")
        if status == 429 or error == "ratelimited":
            after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            return Transient(
                f"rate limited ({error})", rate_limited=True, after=float(after) if after else None
            )
        if status >= 500 or error in _SLACK_FAILING:
            return Transient(f"Slack {status} {error}")
        return None
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return Transient(f"{type(exc).__name__}: {exc}")
    return None
