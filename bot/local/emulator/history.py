"""The emulated channels kept across restarts: in local mode `oncall serve` saves the workspace's channels,
messages, threads and reactions to a JSON file beside the store (ONCALL_DATA_DIR), so after a restart the
playground shows what it showed before, as Slack would, and the decisions the store kept still have their
messages. Ephemeral messages are not kept (Slack does not keep them either).

Saves follow changes within about a second, off the event loop, and never take more than a twentieth of
the time (a big workspace saves less often); each one is atomic (a temporary file, fsynced, then renamed
over the old one), so a crash leaves the previous save or the new one, never half of one. A file that
cannot be read is moved aside, and the reason is kept for the page to show."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bot.local.emulator.state import Workspace

log = logging.getLogger(__name__)

FILE_NAME = "emulator-history.json"
FORMAT = 1
DELAY = 0.5  # seconds from a change to its save, at least
BUDGET = 0.05  # the share of the time saving may take: a save of t seconds waits t / BUDGET before the next


class History:
    def __init__(self, workspace: Workspace, path: Path) -> None:
        self.workspace = workspace
        self.path = path
        self.restored = 0  # messages put back at start
        self.found = False  # a saved history was there to restore
        self.reset_reason: str | None = None  # why the channels start empty although a file was there
        self._writing = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._wait = DELAY

    # --- at start ---------------------------------------------------------------------------------

    def load(self) -> None:
        """Puts the saved channels back (before anything happens in the workspace). A file that cannot be
        read, or that another version wrote, is renamed aside: the channels start empty and
        `reset_reason` says why."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            self.reset_reason = f"{self.path} could not be read ({exc.strerror or exc})"
            log.warning("the emulated channels start empty: %s", self.reset_reason)
            return
        self.found = True
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"not a format-{FORMAT} history")
            self.restored = self.workspace.restore(data["workspace"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = self.path.with_name(f"{self.path.stem}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}.json")
            with contextlib.suppress(OSError):
                self.path.replace(aside)
            self.reset_reason = (
                f"{self.path.name} could not be restored ({exc}); it was moved to {aside.name}"
            )
            log.warning("the emulated channels start empty: %s", self.reset_reason)
            return
        log.info("restored %d emulated messages from %s", self.restored, self.path)

    def start(self) -> None:
        """Saves every change from now on (call on the event loop)."""
        self._loop = asyncio.get_running_loop()
        self.workspace.watchers.append(self._changed)

    # --- saving -------------------------------------------------------------------------------------

    def _changed(self, channel: str) -> None:  # from whatever thread changed the workspace
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: close() saved already
                loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._save_soon())

    async def _save_soon(self) -> None:
        while self._dirty:
            await asyncio.sleep(self._wait)
            self._dirty = False
            try:
                await asyncio.to_thread(self.save)
            except OSError as exc:  # a full disk: the bot goes on; the next change tries again
                log.warning("the emulated channels were not saved to %s: %s", self.path, exc)

    def save(self) -> None:
        """Writes the workspace now, atomically."""
        with self._writing:
            started = time.perf_counter()
            data = {"format": FORMAT, "saved_at": time.time(), "workspace": self.workspace.snapshot()}
            text = json.dumps(data, separators=(",", ":"), default=str)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            with contextlib.suppress(OSError):  # the rename itself, durable (not on every filesystem)
                directory = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
            self._wait = max(DELAY, (time.perf_counter() - started) / BUDGET)

    async def close(self) -> None:
        """Stops following changes and saves what is not saved yet."""
        with contextlib.suppress(ValueError):
            self.workspace.watchers.remove(self._changed)
        self._loop = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._dirty = True
        if self._dirty:
            self._dirty = False
            try:
                await asyncio.to_thread(self.save)
            except OSError as exc:
                log.warning("the emulated channels were not saved to %s: %s", self.path, exc)

    def describe(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "found": self.found,
            "restored": self.restored,
            "reset_reason": self.reset_reason,
        }
