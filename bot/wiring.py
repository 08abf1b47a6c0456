"""Everything `oncall serve` shares, built once and in order by ``wire``: each object gets what it uses when
it is made, and nothing is finished later."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from slack_sdk.web.async_client import AsyncWebClient

from bot.ops.metrics import Metrics
from bot.ops.readiness import Readiness
from bot.pipeline.answer import Answerer
from bot.pipeline.group_thread import GroupThreads
from bot.pipeline.grouping import Grouper
from bot.pipeline.journal import Journal
from bot.pipeline.outbox import Outbox
from bot.pipeline.runbooks import Runbooks
from bot.pipeline.similar import SimilarIncidents
from bot.settings import Settings, watches
from bot.slack.identity import SlackIdentity
from bot.slack.listeners.commands import ModelControls
from bot.slack.lookups import Admins, ChannelNames
from bot.slack.posting import ChannelPacer
from bot.store import Store
from bot.store.write_behind import WriteBehind
from engine.decision import AIDecisionEngine


@dataclass(frozen=True, slots=True)
class Components:
    settings: Settings
    engine: AIDecisionEngine
    store: Store
    writes: WriteBehind  # the store's writes that wait while it is unavailable
    metrics: Metrics
    pacer: ChannelPacer
    readiness: Readiness
    runbooks: Runbooks
    admins: Admins
    controls: ModelControls
    grouper: Grouper
    similar: SimilarIncidents
    groups: GroupThreads
    outbox: Outbox


def wire(
    settings: Settings,
    engine: AIDecisionEngine,
    store: Store,
    runbooks: Runbooks,
    identity: SlackIdentity,
    poster: AsyncWebClient,
    replica: str,
    journal: Journal,
) -> Components:
    """``poster``: the client that posts the answers (it leaves ambiguous retries to the outbox);
    ``replica``: who owns this process's outbox entries."""
    writes, metrics, pacer, readiness = WriteBehind(), Metrics(), ChannelPacer(), Readiness()
    grouper = Grouper(settings.grouping)
    similar = SimilarIncidents(store, workspace_url=lambda: identity.url)
    groups = GroupThreads(grouper, store, writes, metrics, pacer, runbooks, similar.workspace_url)
    answerer = Answerer(
        poster,
        partial(watches, settings),
        engine,
        store,
        writes,
        metrics,
        pacer,
        runbooks,
        readiness,
        ChannelNames(),
        groups,
        similar,
    )
    return Components(
        settings=settings,
        engine=engine,
        store=store,
        writes=writes,
        metrics=metrics,
        pacer=pacer,
        readiness=readiness,
        runbooks=runbooks,
        admins=Admins(settings.admins),
        controls=ModelControls(engine.ml, store),
        grouper=grouper,
        similar=similar,
        groups=groups,
        outbox=Outbox(store, writes, replica, answerer.answer, journal),
    )
