"""/oncall-predict and /oncall-models. Each acks at once (Slack waits 3 seconds, no more); the work runs
after the ack and answers through `respond`."""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.ops.metrics import Metrics
from bot.ops.readiness import Readiness
from bot.pipeline.runbooks import Runbooks
from bot.slack.blocks import cut, decision_blocks, escape, text_blocks
from bot.slack.lookups import Admins
from bot.store import Store, StoreUnavailable
from engine.decision import AIDecisionEngine
from engine.incident import IncidentCreate
from engine.ml_service import MLService
from engine.quality import headline, summary_lines
from engine.registry import RegistryError

log = logging.getLogger(__name__)
COMMANDS = ("/oncall-predict", "/oncall-models")
MAX_PREDICT_CHARS = 4000  # the model reads no more than this
PREDICT_USAGE = (
    "*Usage:* `/oncall-predict ALERT TEXT` — the severity, category and actions the bot would post, "
    "shown only to you. Example: `/oncall-predict checkout 5xx at 35% since the 14:05 deploy`"
)
MODELS_USAGE = (
    "*Usage:* `/oncall-models [status]` — the serving version, its models and ratings, and any trial\n"
    "`/oncall-models history` — the kept versions\n"
    "`/oncall-models reload` — load the active version from disk (admins)\n"
    "`/oncall-models rollback` — back to the previous version (admins)\n"
    "`/oncall-models shadow VERSION` — VERSION predicts on every alert, unseen (admins)\n"
    "`/oncall-models canary VERSION 10%` — VERSION answers that share of the alerts (admins)\n"
    "`/oncall-models promote VERSION` — make it active and end the trial (admins)\n"
    "`/oncall-models end` — end the trial (admins)"
)
ADMIN_ONLY = ("reload", "rollback", "shadow", "canary", "promote", "end")
SUBCOMMANDS = ("status", "history", *ADMIN_ONLY, "help")


def register(
    app: AsyncApp,
    engine: AIDecisionEngine,
    runbooks: Runbooks,
    readiness: Readiness,
    admins: Admins,
    controls: ModelControls,
    metrics: Metrics,
) -> None:
    async def predict(command: dict[str, Any], respond: AsyncRespond) -> None:
        text = str(command.get("text") or "").strip()
        metrics.commands.inc(command="/oncall-predict", sub="predict" if text else "help")
        if not text:
            await respond(response_type="ephemeral", text=PREDICT_USAGE, blocks=text_blocks(PREDICT_USAGE))
            return
        await readiness.wait()
        decision = engine.analyze(IncidentCreate(title=text[:MAX_PREDICT_CHARS]))
        fallback, blocks = decision_blocks(decision, runbooks)
        await respond(response_type="ephemeral", text=fallback, blocks=blocks)

    async def models(command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        words = str(command.get("text") or "").split()
        sub = words[0].lower() if words else "status"
        known = sub in SUBCOMMANDS and sub != "help"
        metrics.commands.inc(command="/oncall-models", sub=sub if known else "help")
        user = str(command.get("user_id") or "")
        if sub == "status":
            text = await controls.status_text()
        elif sub == "history":
            text = controls.history()
        elif sub in ADMIN_ONLY and not await admins.includes(client, user):
            text = f"Sorry, only on-call admins can {sub} models. Ask one of them, or see `/oncall-models`."
        elif sub == "reload":
            text = await controls.reload_active()
        elif sub == "rollback":
            text = await controls.rollback()
        elif sub in ("shadow", "canary", "promote", "end"):
            text = await controls.trial_command(sub, words[1:], user)
        else:
            text = MODELS_USAGE
        await respond(response_type="ephemeral", text=text, blocks=text_blocks(text))

    async def oncall_predict(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await never_silent(respond, command, predict(command, respond))

    async def oncall_models(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        unknown = unknown_subcommand(str(command.get("text") or ""))
        if unknown is not None:  # answered in the ack itself: at once, nothing to wait for
            metrics.commands.inc(command="/oncall-models", sub="unknown")
            await ack(response_type="ephemeral", text=unknown, blocks=text_blocks(unknown))
            return
        await ack()
        await never_silent(respond, command, models(command, respond, client))

    for command, handler in zip(COMMANDS, (oncall_predict, oncall_models), strict=True):
        app.command(command)(handler)


async def never_silent(respond: AsyncRespond, command: dict[str, Any], work: Awaitable[None]) -> None:
    """Run a command's work; whatever it raises (a kept version's metadata.json that no report foresaw, a
    bug), the person who asked gets the reason, not silence."""
    try:
        await work
    except Exception as exc:
        asked = f"{command.get('command')} {command.get('text') or ''}".strip()
        log.error("%r failed: %s: %s", asked, type(exc).__name__, exc, exc_info=True)
        text = f":x: `{escape(asked)}` failed: {escape(f'{type(exc).__name__}: {exc}')}"
        await respond(response_type="ephemeral", text=text, blocks=text_blocks(text))


def unknown_subcommand(text: str) -> str | None:
    """For ``/oncall-models TEXT`` whose first word is no subcommand (a typo: ``stauts``): the usage, led by
    the closest subcommand when one is close. None when the subcommand is known (or absent: status)."""
    words = text.split()
    if not words or words[0].lower() in SUBCOMMANDS:
        return None
    asked = words[0].lower()
    close = difflib.get_close_matches(asked, SUBCOMMANDS, n=1, cutoff=0.6)
    lead = f":grey_question: `{_code(words[0], 40)}` is not an `/oncall-models` subcommand."
    if close:
        lead += f" Did you mean `/oncall-models {_code(' '.join([close[0], *words[1:]]), 200)}`?"
    return f"{lead}\n{MODELS_USAGE}"


def _code(text: str, limit: int) -> str:
    """What someone typed, shown in inline code: escaped, cut, and no backtick to end the code early."""
    return escape(cut(text, limit)).replace("`", "'")


class ModelControls:
    """What /oncall-models, the App Home and the playground do with the models: one implementation."""

    def __init__(self, ml: MLService, store: Store) -> None:
        self.ml = ml
        self.store = store

    async def status_text(self) -> str:
        ml = self.ml
        health = ml.health()
        meta = ml.models.metadata
        versions = meta.get("versions") or {}
        lines = [
            f"*Serving:* `{escape(str(health['serving_version']))}` (active: "
            f"`{escape(str(health['active_version']))}`, status {health['status']})",
            f"trained {escape(str(meta.get('trained_at', 'unknown')))} · scikit-learn "
            f"{escape(str(versions.get('scikit-learn', 'unknown')))}",
        ]
        for name, info in health["models"].items():
            lines.append(f"• {name}: {'loaded' if info['loaded'] else 'not loaded'}")
        # Real labeled rows first; numbers measured on synthetic rows say so.
        lines.append("*Held-out quality, recorded at training:*")
        lines += [f"• {escape(line)}" for line in summary_lines(meta)]
        if health.get("last_error"):
            lines.append(f":warning: {escape(str(health['last_error']))}")
        try:
            lines += await self._ratings_and_trial(str(health["serving_version"]))
        except StoreUnavailable as exc:
            lines.append(f":warning: ratings and trial numbers unavailable: {escape(str(exc))}")
        return "\n".join(lines)

    async def _ratings_and_trial(self, serving: str) -> list[str]:
        counts = await self.store.rating_counts(serving)
        lines = [
            f"*Ratings for this version:* {counts['decisions']} decisions, {counts['confirm']} :+1:, "
            f"{counts['reject']} :-1:, {counts['action']} actions confirmed, "
            f"{counts['corrected']} corrections"
        ]
        trial = self.ml.trial
        if trial is not None:
            version = str(trial["version"])
            stats = await self.store.trial_stats(version)
            votes = await self.store.rating_counts(version)
            share = f" answering {trial['share']:.0%}" if trial["mode"] == "canary" else ""
            since = escape(str(trial["started_at"]))
            lines += [
                f"*Trial:* `{escape(version)}` in {trial['mode']}{share} since {since}",
                f"• {stats['alerts']} alerts, {stats['answered']} answered; agrees with the active version "
                f"on severity {stats['severity_agreement']:.0%}, category "
                f"{stats['category_agreement']:.0%}, top action {stats['action_agreement']:.0%}; "
                f"latency p50 {stats['latency_p50_ms']:.2f} ms",
                f"• its answers' ratings: {votes['confirm']} :+1:, {votes['reject']} :-1:, "
                f"{votes['action']} actions confirmed, {votes['corrected']} corrections",
            ]
        return lines

    def history(self) -> str:
        registry = self.ml.registry
        try:
            active = registry.active_id()
            versions = registry.list_versions()
        except RegistryError as exc:
            return f":x: Cannot read the model registry: {escape(str(exc))}"
        if not versions:
            return "No model versions are stored yet (the built-in model trains on first start)."
        lines = ["*Kept versions* (newest first):"]
        for v in reversed(versions):
            mark = " ← active" if v.id == active else ""
            quality = escape(headline(v.metadata))  # real rows first
            lines.append(f"• `{escape(v.id)}` trained {escape(str(v.trained_at))}: {quality}{mark}")
        return "\n".join(lines)

    async def reload_active(self) -> str:
        """Loads the active version from disk; the answer says from which version to which, or why not."""
        result = await self.ml.reload_models()
        if result.ok:
            return f":white_check_mark: Reloaded: `{result.old_version}` → `{result.new_version}`."
        return f":x: Reload failed: {escape(str(result.error))}"

    async def trial_command(self, sub: str, args: list[str], user: str) -> str:
        """Start a shadow or canary trial, end it, or promote a version (which ends it)."""
        ml = self.ml
        registry = ml.registry
        try:
            if sub == "end":
                await asyncio.to_thread(registry.end_trial)
                await ml.sync_trial()
                return ":stop_button: Trial ended; the active version answers every alert."
            if not args:
                return MODELS_USAGE
            version = args[0]
            if sub == "promote":
                return await self.promote(version, user, via="slack")
            share = 0.0
            if sub == "canary":
                raw = args[1].rstrip("%") if len(args) > 1 else "10"
                share = float(raw) / 100
            trial = await asyncio.to_thread(registry.start_trial, version, sub, share)
        except (RegistryError, StoreUnavailable, ValueError) as exc:
            return f":x: {escape(str(exc))}"
        await ml.sync_trial()
        if ml.candidate is None:
            return f":x: `{escape(version)}` does not load; no trial is running."
        what = (
            f"answers {trial['share']:.0%} of the alerts"
            if sub == "canary"
            else "predicts on every alert, unseen"
        )
        return f":test_tube: `{escape(version)}` {what}. `/oncall-models status` shows how it compares."

    async def promote(self, version: str, user: str, via: str, forced: bool = False) -> str:
        """Makes ``version`` active (recording who did it, where, whether past a gate that refused it, and its
        trial's numbers), ends any trial, and loads it. Raises RegistryError, StoreUnavailable."""
        ml = self.ml
        stats = await self.store.trial_stats(version)
        await asyncio.to_thread(
            ml.registry.record_promotion,
            version,
            {"at": time.time(), "via": via, "by": user, "forced": forced, "trial": stats},
        )
        await asyncio.to_thread(ml.registry.promote, version)
        await asyncio.to_thread(ml.registry.end_trial)
        result = await ml.reload_models()
        await ml.sync_trial()
        if not result.ok:
            return f":x: {escape(version)} is active on disk but does not load: {escape(str(result.error))}"
        return f":rocket: Promoted: `{result.old_version}` → `{result.new_version}`; the trial is over."

    async def rollback(self) -> str:
        """The active pointer back one version, then loaded."""
        ml = self.ml
        try:
            version = await asyncio.to_thread(ml.registry.rollback)
        except RegistryError as exc:
            return f":x: Rollback refused: {escape(str(exc))}"
        result = await ml.reload_models()
        if result.ok:
            return f":rewind: Rolled back: `{result.old_version}` → `{result.new_version}`."
        error = escape(str(result.error))
        return f":x: Rolled the pointer back to `{version.id}` but it does not load: {error}"
