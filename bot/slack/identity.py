"""Who the bot is in Slack (auth.test: its team, user and bot ids), asked once at start and then kept: no
event waits for Slack, or for its rate limits, before it is acknowledged."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.errors import transient

log = logging.getLogger(__name__)
MAX_BACKOFF = 30.0


class SlackIdentity:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.known: AuthorizeResult | None = None
        self.url: str | None = None  # the workspace's, e.g. https://acme.slack.com/ (thread links)
        self._lock = asyncio.Lock()

    async def fetch(self) -> AuthorizeResult:
        """auth.test, once (concurrent callers share the answer); raises what Slack answered."""
        async with self._lock:
            if self.known is None:
                answer = await self.client.auth_test()
                self.url = answer.get("url")
                self.known = AuthorizeResult(
                    enterprise_id=answer.get("enterprise_id"),
                    team_id=answer.get("team_id"),
                    bot_id=answer.get("bot_id"),
                    bot_user_id=answer.get("user_id"),
                    bot_token=self.client.token,
                )
            return self.known

    async def fetch_until_known(self) -> AuthorizeResult:
        """At start: ask until Slack answers (it may be rate limiting or down); a token Slack refuses is
        logged as what to fix, and asked about again (it may be a token being rotated)."""
        backoff = 1.0
        while True:
            try:
                return await self.fetch()
            except Exception as exc:
                passing = transient(exc)
                if passing is not None:
                    log.warning("auth.test: %s; asking again in %.0f s", passing.reason, backoff)
                elif isinstance(exc, SlackApiError):
                    error = exc.response.get("error")
                    log.error("auth.test refused the bot token (%s): check SLACK_BOT_TOKEN", error)
                else:
                    raise
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)

    async def authorize(self, user_id: str | None = None) -> AuthorizeResult:
        """Bolt's authorize function: the known identity, with the request's user."""
        known = self.known or await self.fetch()
        return AuthorizeResult(
            enterprise_id=known.enterprise_id,
            team_id=known.team_id,
            bot_id=known.bot_id,
            bot_user_id=known.bot_user_id,
            bot_token=known.bot_token,
            user_id=user_id,
        )
