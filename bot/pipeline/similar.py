"""Similar past incidents for each decision: the workspace's own history (imported with ``oncall history
import``, and every decision the bot made), searched by text, shown with the labels people settled on.

The index is built from the store in the background at start (alerts are answered meanwhile, with what is
indexed so far) and then follows the store every few seconds: new decisions and imports, by this replica
or any other sharing the store. A decision's labels are read from the store when it is shown, so a
correction made a second ago counts.

The search is a convenience and the reply is not: it runs on a thread of its own and a decision waits for
it at most SEARCH_BUDGET; while the event loop is behind (an alert storm, a starved CPU) it is not run at
all, so the acks and replies it would delay get the loop back. Either way the decision says it was not
looked up, and /metrics counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.store import DecisionRecord, PastIncident, Store, StoreUnavailable
from engine.labels import final_labels
from engine.memory import IncidentMemory

log = logging.getLogger(__name__)
REFRESH_SECONDS = 2.0
OVERLAP_SECONDS = 10.0  # re-read this far back: another replica's clock may be a little behind
TITLE_MAX = 200
VOTES_TIMEOUT = 0.5  # seconds to read a past decision's labels before showing its own, unconfirmed
SEARCH_BUDGET = 0.25  # seconds a decision waits for its similar incidents
LAG_EVERY = 0.05  # how often the event loop's lag is sampled
BUSY_LAG = 0.05  # a sample this late means the loop is behind ...
BUSY_SAMPLES = 3  # ... and this many in a row that it is overloaded (one slow callback is not)
BUSY_HOLD = 2.0  # searches stay off this long after the last late sample, so they do not flap
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


class NotSearched(Exception):
    """The similar incidents were not looked up for this decision; ``reason``: "busy" or "slow"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LoopLag:
    """Whether the event loop is overloaded: a sleep of LAG_EVERY that wakes BUSY_LAG late, BUSY_SAMPLES
    times in a row, means callbacks wait that long for their turn (acks included)."""

    def __init__(self) -> None:
        self.lag = 0.0  # the last sample, seconds
        self._late = 0
        self._busy_until = 0.0

    @property
    def busy(self) -> bool:
        return asyncio.get_running_loop().time() < self._busy_until

    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_EVERY)
            now = loop.time()
            self.lag = now - start - LAG_EVERY
            self._late = self._late + 1 if self.lag > BUSY_LAG else 0
            if self._late >= BUSY_SAMPLES:
                self._busy_until = now + BUSY_HOLD


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
        self.loop_lag = LoopLag()
        # One thread: searches queue there, and one that waited past its budget is dropped unstarted.
        self._searcher = ThreadPoolExecutor(1, thread_name_prefix="similar")
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self.loop_lag.watch())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._searcher.shutdown(wait=False, cancel_futures=True)

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
        """Up to ``k`` past incidents like ``text``, most similar first (never the alert itself). Raises
        NotSearched while the event loop is overloaded, or when the search takes over SEARCH_BUDGET."""
        if self.loop_lag.busy:
            raise NotSearched("busy")
        search = asyncio.wrap_future(
            self._searcher.submit(self.index.search, text, k, [decision_key(channel, alert_ts)])
        )
        try:  # on time-out an unstarted search is cancelled; a started one ends unread
            hits = await asyncio.wait_for(search, SEARCH_BUDGET)
        except TimeoutError:
            raise NotSearched("slow") from None
        out = []
        for hit in hits:
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
