"""Similar past incidents for each decision: the workspace's own history (imported with ``oncall history
import``, and every decision the bot made), searched by text, shown with the labels people settled on.

The index is built from the store in the background at start (alerts are answered meanwhile, with what is
indexed so far) and then follows the store every few seconds: new decisions and imports, by this replica
or any other sharing the store. A decision's labels are read from the store when it is shown, so a
correction made a second ago counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.store import DecisionRecord, PastIncident, Store, StoreUnavailable
from engine.labels import final_labels
from engine.memory import IncidentMemory

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)
REFRESH_SECONDS = 2.0
OVERLAP_SECONDS = 10.0  # re-read this far back: another replica's clock may be a little behind
TITLE_MAX = 200
VOTES_TIMEOUT = 0.5  # seconds to read a past decision's labels before showing its own, unconfirmed
_SERVICE_SUFFIX = re.compile(r"\s*service:\S*\s*$")


@dataclass(frozen=True, slots=True)
class Similar:
    """One similar past incident as shown under a decision (raw text: the renderer escapes it)."""

    title: str
    link: str | None  # its Slack thread, or the link its import carried
    severity: str | None  # the final label; None when nobody settled it
    category: str | None
    action: str | None  # the action people confirmed fixed it
    similarity: float
    confirmed: bool = True  # False: an unrated decision, whose labels are only the bot's prediction


def decision_key(channel: str, alert_ts: str) -> str:
    return f"slack:{channel}:{alert_ts}"


def thread_link(workspace_url: str | None, channel: str, ts: str) -> str | None:
    """Slack's permalink form for a message: https://<workspace>.slack.com/archives/<channel>/p<ts digits>."""
    if not workspace_url:
        return None
    return f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


def _title(text: str) -> str:
    first = _SERVICE_SUFFIX.sub("", text).strip().split("\n", 1)[0]
    return first[:TITLE_MAX]


class SimilarIncidents:
    """The memory the bot serves from; ``workspace_url`` says where thread links point (auth.test's url)."""

    def __init__(self, store: Store, workspace_url: Callable[[], str | None] = lambda: None) -> None:
        self.store = store
        self.workspace_url = workspace_url
        self.index = IncidentMemory()
        self._written: dict[str, float] = {}  # id -> created_at indexed (a re-import renews it)
        self._since = 0.0
        self._rated: set[tuple[str, str]] = set()  # decisions with votes: only theirs are read per alert
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _follow(self) -> None:
        while True:
            try:
                await self.refresh()
            except StoreUnavailable as exc:
                log.warning("similar incidents: store unavailable (%s); trying again", exc)
            except Exception:  # a bug here must not stop the memory from following the store
                log.exception("similar incidents: refresh failed; trying again")
            await asyncio.sleep(REFRESH_SECONDS)

    async def refresh(self) -> int:
        """Index what the store gained since the last refresh; the number of incidents (re)indexed."""
        since = max(0.0, self._since - OVERLAP_SECONDS)
        past = await self.store.past_incidents(since)
        decisions = await self.store.decisions_since(since)
        self._rated = await self.store.rated_decisions()
        items: list[tuple[str, str, PastIncident | DecisionRecord]] = []
        for p in past:
            key = f"import:{p.id}"
            if self._written.get(key) != p.created_at:
                items.append((key, p.incident_text, p))
                self._written[key] = p.created_at
        for d in decisions:
            key = decision_key(d.channel, d.alert_ts)
            if key not in self._written:
                items.append((key, d.incident_text, d))
                self._written[key] = d.created_at
        stamps = [p.created_at for p in past] + [d.created_at for d in decisions]
        self._since = max([self._since, *stamps])
        if items:  # in a thread: a first build of 100,000 incidents takes seconds
            await asyncio.to_thread(self.index.add_many, items)
        return len(items)

    async def similar(self, text: str, channel: str, alert_ts: str, k: int = 3) -> list[Similar]:
        """Up to ``k`` past incidents like ``text``, most similar first (never the alert itself)."""
        out = []
        for hit in self.index.search(text, k=k, exclude=[decision_key(channel, alert_ts)]):
            past = hit.payload
            if isinstance(past, PastIncident):
                action = past.actions[0] if past.actions else None
                out.append(
                    Similar(_title(past.title), past.link, past.severity, past.category, action, hit.score)
                )
                continue
            link = thread_link(self.workspace_url(), past.channel, past.alert_ts)
            votes = []
            if (past.channel, past.reply_ts) in self._rated:  # else no read: a storm stays cheap
                # a locked or distant store must not hold the reply back
                with contextlib.suppress(StoreUnavailable, TimeoutError):
                    votes = await asyncio.wait_for(
                        self.store.votes(past.channel, past.reply_ts), VOTES_TIMEOUT
                    )
            if votes:
                final = final_labels(past.severity, past.category, votes)
                severity, category, confirmed = final.severity, final.category, True
                action = final.actions[0] if final.actions else None
            else:  # nobody rated it (or the store cannot say now): the bot's own call, marked as such
                severity, category, action, confirmed = past.severity, past.category, None, False
            out.append(
                Similar(_title(past.incident_text), link, severity, category, action, hit.score, confirmed)
            )
        return out


# -- the integration point for bot/listeners/messages.py ------------------------------------------------
async def similar_for(services: Services, text: str, channel: str, alert_ts: str) -> list[Similar]:
    """What the decision on the alert at ``channel``/``alert_ts`` shows as similar past incidents (nothing
    when the bot runs without a memory)."""
    if services.memory is None:
        return []
    return await services.memory.similar(text, channel, alert_ts)
